"""The guard around every resource, on a real loopback socket: defined answers for
methods and targets, and a genuine fault answered 500 and logged once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.logger import globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair.config.model import ClientTimeouts
from stowpair.receiver.service import streaming_site
from stowpair.web.errors import allowed_methods, request_line_problem, uri_problem
from tests.badinput.rawhttp import RawResponse, send_raw


class _Boom(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        raise RuntimeError("a bug")


class _PostOnly(Resource):
    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        return b"posted\n"


class _GetOnly(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"got\n"


@pytest.fixture
def port() -> Iterator[int]:
    root = Resource()
    root.putChild(b"boom", _Boom())
    root.putChild(b"post", _PostOnly())
    root.putChild(b"get", _GetOnly())
    root.putChild(b"empty", Resource())
    listening = reactor.listenTCP(
        0, streaming_site(root, ClientTimeouts(), "json", reactor), interface="127.0.0.1"
    )
    yield listening.getHost().port  # type: ignore[attr-defined]
    pytest_twisted.blockon(Deferred.fromCoroutine(_stop(listening)))


async def _stop(listening: Any) -> None:
    await listening.stopListening()


async def _get(port: int, method: str, path: str) -> RawResponse:
    data = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    return await send_raw(reactor, port, data, "web-guard", count=False)


@pytest_twisted.ensureDeferred
async def test_fault_is_500_json_logged_once(port: int) -> None:
    """When a resource raises, the answer is a JSON 500 without the traceback, and the
    traceback is logged once as ``http.error``."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        r = await _get(port, "GET", "/boom")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert r.status == 500 and r.content_type == "application/json"
    assert "Traceback" not in r.body.decode() and "a bug" not in r.body.decode()
    failures = [e for e in events if "log_failure" in e]
    assert [e.get("event") for e in failures] == ["http.error"]


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("HEAD", "/post", 405, "POST"),
        ("GET", "/post", 405, "POST"),
        ("PUT", "/get", 405, "GET, HEAD"),
        ("HEAD", "/get", 200, None),
        ("GET", "/empty", 404, None),
    ],
    ids=["head-on-post-only", "get-on-post-only", "put", "head-on-get", "no-render"],
)
@pytest_twisted.ensureDeferred
async def test_methods_answered(
    port: int, method: str, path: str, status: int, allow: str | None
) -> None:
    """When a plain resource gets a method it does not render (HEAD where there is no
    GET included), the answer is a JSON 405 with Allow, never a 500."""
    r = await _get(port, method, path)
    assert r.status == status, r.body
    if allow is not None:
        assert r.header(b"allow") == [allow.encode()]
        assert r.content_type == "application/json"
    if method != "HEAD" and status >= 400:
        assert json.loads(r.body)["errorMessage"]


def test_allowed_methods_of_plain_resources() -> None:
    """When a resource renders only POST, HEAD is not among its methods."""
    assert allowed_methods(_PostOnly()) == {b"POST"}
    assert allowed_methods(_GetOnly()) == {b"GET", b"HEAD"}


@pytest.mark.parametrize(
    "uri",
    [b"/a%ff", b"/a?x=%C3%28", b"/a?%80=1", b"/\x99", b"/a b", b"/a\x7f"],
    ids=["pct-path", "pct-query", "pct-key", "raw", "space", "del"],
)
def test_undecodable_targets(uri: bytes) -> None:
    """When a target is not UTF-8 once percent-decoded, or holds raw bytes, it is named."""
    assert uri_problem(uri) is not None


def test_decodable_target() -> None:
    """When the target is percent-encoded UTF-8, it passes."""
    assert uri_problem(b"/a%C3%A9/b?x=%E2%82%AC&y=a+b") is None
    assert request_line_problem(b"GET /a%C3%A9 HTTP/1.1") is None
