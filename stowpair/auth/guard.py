"""The authentication guard of the REST listener: a wrapper of the root resource.

:class:`AuthGuard` routes each request through the resource tree it wraps, then asks the
:class:`~stowpair.auth.policy.AccessPolicy` about the resource found. Every route under
the root is covered without the guard knowing it: the REST API, the console under
``/ui/``, server-sent events, ``/health`` and ``/metrics`` (unless configured open), and
paths that do not exist (401, not 404: nothing is learnt without credentials). Resources
say what they are with attributes: ``access = "health"`` or ``"metrics"``;
``authenticates_itself`` (the archive's ingest with ``[ingest]`` token validation).

When a check takes time (a password hash), a :class:`_Pending` resource stands in: an
upload's body is held back (the socket is not read) until the credentials are known,
then given to the real resource; a refusal is answered before any body is read.
Cross-site refusal of state-changing requests stays with the listener's error path, so
credentials a browser sends on its own (a cached Basic login) never bypass it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource, Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from stowpair.auth.policy import AccessPolicy, Refusal
from stowpair.web.errors import EarlyResponse, ErrorStyle, error_response, error_style, write_error


def refusal_response(refusal: Refusal, style: ErrorStyle) -> EarlyResponse:
    """The refusal as the target would word it: JSON ``errorMessage`` or one text line
    (the listener's error path, :mod:`stowpair.web.errors`)."""
    return error_response(refusal.status, refusal.message, style, refusal.headers)


@implementer(IResource)
class AuthGuard:
    """Wraps the listener's root; ``policy`` None lets everything through (no
    ``[rest.auth]``). ``set_policy`` applies a reloaded configuration."""

    isLeaf = False

    def __init__(self, inner: IResource, policy: AccessPolicy | None, clock: IReactorTime) -> None:
        self.inner = inner
        self.policy = policy
        self.clock = clock

    def set_policy(self, policy: AccessPolicy | None) -> None:
        self.policy = policy

    def putChild(self, path: bytes, child: IResource) -> None:
        self.inner.putChild(path, child)

    def getChildWithDefault(self, name: bytes, request: Any) -> IResource:
        target: IResource = getChildForRequest(
            self.inner.getChildWithDefault(name, request), request
        )
        if self.policy is None:
            return target
        verdict = self.policy.decide(request, target)
        if verdict is None:
            return target
        if isinstance(verdict, Refusal):
            return _Refused(verdict, error_style(target))
        return _Pending(target, verdict, error_style(target), self.clock)

    def render(self, request: Any) -> Any:
        return self.inner.render(request)


class _Refused(Resource):
    """401 / 403 / 503 before any body is read."""

    isLeaf = True

    def __init__(self, refusal: Refusal, style: ErrorStyle) -> None:
        super().__init__()
        self.response = refusal_response(refusal, style)
        self.error_style = style

    def start_upload(self, request: Any, length: int | None) -> EarlyResponse:
        return self.response

    def render(self, request: Any) -> bytes:
        return write_error(request, self.response)


class _Pending(Resource):
    """The target, once the credentials are known; until then its body waits."""

    isLeaf = True
    log = Logger()

    def __init__(
        self,
        target: IResource,
        verdict: Deferred[Refusal | None],
        style: ErrorStyle,
        clock: IReactorTime,
    ) -> None:
        super().__init__()
        self.target = target
        self.verdict = verdict
        self.error_style = style
        self.clock = clock

    def start_upload(self, request: Any, length: int | None) -> _HeldBody:
        return _HeldBody(request, self.target, length, self.verdict, self.error_style, self.clock)

    def render(self, request: Any) -> Any:
        held = getattr(request, "held_for_auth", None)
        waiting = held.done if isinstance(held, _HeldBody) else self.verdict
        waiting.addCallback(self._decided, request, held is not None)
        waiting.addErrback(request.processingFailed)
        return NOT_DONE_YET

    def _decided(self, refusal: Refusal | None, request: Any, held: bool) -> None:
        if request.finished or request.channel is None:
            return
        if refusal is not None:
            if held:  # answered early already; the connection closes
                request.channel.transport.loseConnection()
                return
            body = write_error(request, refusal_response(refusal, self.error_style))
            if body:
                request.write(body)
            request.finish()
            return
        try:
            request.render(self.target)
        except Exception:
            request.processingFailed(Failure())


class _HeldBody:
    """A request body held back while the credentials are checked (a BodySink)."""

    log = Logger()

    def __init__(
        self,
        request: Any,
        target: IResource,
        length: int | None,
        verdict: Deferred[Refusal | None],
        style: ErrorStyle,
        clock: IReactorTime,
    ) -> None:
        self.request, self.target, self.length = request, target, length
        self.style, self.clock = style, clock
        self.chunks: list[bytes] = []
        self.lost = False
        self.done: Deferred[Refusal | None] = Deferred()
        request.held_for_auth = self
        request.pause_body()
        verdict.addBoth(self._decided)

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)  # bytes already on their way when reading stopped

    def connection_lost(self) -> None:
        self.lost = True

    def _decided(self, result: Refusal | Failure | None) -> None:
        refusal = result if isinstance(result, Refusal) else None
        if isinstance(result, Failure):
            self.log.failure("Deciding on credentials failed", result, event="rest.auth.error")
            refusal = Refusal(500, "the credentials could not be checked; see the log", "error")
        try:
            if not self.lost:
                self._route(refusal)
        except Exception:
            self.log.failure("Routing a held request failed", event="rest.auth.error")
            refusal = Refusal(500, "internal error; see the service log", "error")
            self.request.answer_early(refusal_response(refusal, self.style), self.clock)
        finally:
            self.done.callback(refusal)

    def _route(self, refusal: Refusal | None) -> None:
        request = self.request
        if refusal is not None:
            request.answer_early(refusal_response(refusal, self.style), self.clock)
            request.resume_body()  # the rest of the body is read and dropped
            return
        start = getattr(self.target, "start_upload", None)
        decision = start(request, self.length) if start is not None else None
        if isinstance(decision, EarlyResponse):
            request.answer_early(decision, self.clock)
            request.resume_body()
            return
        if decision is None:
            http.Request.gotLength(request, self.length)  # twisted.web's own buffering
        request.upload = decision
        chunks, self.chunks = self.chunks, []
        for chunk in chunks:
            request.handleContentChunk(chunk)
        request.resume_body()
