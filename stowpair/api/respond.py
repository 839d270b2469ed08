"""Asynchronous JSON answers for twisted.web resources, with errors for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from stowpair.api.params import ApiError

log = Logger()


@dataclass(frozen=True)
class Answer:
    code: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(code: int, value: Any) -> Answer:
    return Answer(code, json.dumps(value).encode() + b"\n")


def error_answer(code: int, message: str, **extra: Any) -> Answer:
    return json_answer(code, {"errorMessage": message, **extra})


def write(request: Request, answer: Answer) -> bytes:
    """Set status and headers; return the body (for synchronous renders)."""
    request.setResponseCode(answer.code)
    if answer.body:
        request.setHeader(b"Content-Type", answer.content_type.encode())
    for name, value in answer.headers.items():
        request.setHeader(name.encode(), value.encode())
    return answer.body


def render_async(
    request: Request,
    handler: Callable[[Request], Coroutine[Any, Any, Answer]],
    log_request: bool = True,
) -> int:
    """Run ``handler`` and write its Answer; ApiError -> its code, other errors -> 500.

    A request that may change something (not GET or HEAD) gets one INFO line
    (``api.request``) unless ``log_request`` is False because the handler logs its own
    success;
    reads show only in the DEBUG access log, so a watching client does not fill the
    console."""
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))
    d = Deferred.fromCoroutine(handler(request))
    d.addErrback(_error_answer, request)

    def finish(answer: Answer) -> None:
        if gone:
            return
        body = write(request, answer)
        if body:
            request.write(body)
        request.finish()
        if (log_request or answer.code >= 400) and request.method not in (b"GET", b"HEAD"):
            _log_request(request, answer.code)

    d.addCallback(finish)
    d.addErrback(lambda f: log.failure("Could not write the answer", f, event="api.error"))
    return NOT_DONE_YET


def _log_request(request: Request, status: int) -> None:
    address: Any = request.getClientAddress()
    log.info(
        "{method} {uri} from {peer}: {status}",
        method=request.method.decode("ascii", "replace"),
        uri=request.uri.decode("utf-8", "replace")[:500],
        peer=getattr(address, "host", "-"),
        status=status,
        event="api.request",
    )


def _error_answer(failure: Failure, request: Request) -> Answer:
    if failure.check(ApiError):
        error: ApiError = failure.value  # type: ignore[assignment]
        return error_answer(error.code, error.message)
    log.failure(
        "{method} {uri} failed: {error}",
        failure,
        method=request.method.decode("ascii", "replace"),
        uri=request.uri.decode("utf-8", "replace"),
        error=str(failure.value),
        event="api.error",
    )
    return error_answer(500, f"Internal error: {failure.value}; see the stowpair log")


class ErrorResource(Resource):
    """A JSON ``{"errorMessage": ...}`` answer to any method."""

    isLeaf = True

    def __init__(self, code: int, message: str) -> None:
        super().__init__()
        self.answer = error_answer(code, message)

    def render(self, request: Request) -> bytes:
        return write(request, self.answer)
