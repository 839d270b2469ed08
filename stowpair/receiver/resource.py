"""The STOW-RS ``Resource``: ``POST {path}/studies[/{StudyInstanceUID}]`` (PS3.18 §10.5).

Mounted as a leaf (``isLeaf``); with :class:`~stowpair.receiver.request.StreamingRequest`
as the Site's request factory the body is parsed while it arrives, otherwise (plain
twisted.web requests, e.g. in ``treq.testing``) the buffered body is parsed the same way.

Decided before the body is read (``start_upload``): 404 unknown path, 405 other
methods, 401 credentials, 406 Accept, 415 media type, 400 boundary or study UID, 413
declared size, injected whole-request statuses. Then each part is stored and the
Store Instances Response tells per instance what happened (see docs/conformance.md).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from stowpair.dicom.response import (
    JSON_MEDIA_TYPE,
    FailedInstance,
    ReferencedInstance,
    StoreResponse,
)
from stowpair.dicom.uids import InvalidUID, validate_uid
from stowpair.logs import register_events
from stowpair.receiver.access import refusal
from stowpair.receiver.http_util import (
    SUPPORTED_RESPONSE_TYPES,
    cors_headers,
    negotiate,
    stow_status,
)
from stowpair.receiver.mpr_parser import MAX_BOUNDARY, ContentTypeError, parse_content_type
from stowpair.receiver.recent import ReceivedRequest, RecentRequests, count_reasons
from stowpair.receiver.request import EarlyResponse, StreamingRequest
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import BlockingRunner, RequestContext, StorageBackend
from stowpair.receiver.transaction import StowTransaction, TransactionResult
from stowpair.web.crosssite import cross_site_problem
from stowpair.web.errors import error_response, uri_problem

register_events(
    {
        "receiver.request": (
            "method",
            "path",
            "peer",
            "status",
            "bytes",
            "parts",
            "stored",
            "failed",
            "elapsed",
            "error",
            "endpoint",
        ),
        "receiver.instance.failed": (
            "peer",
            "path",
            "part",
            "sop_class_uid",
            "sop_instance_uid",
            "reason",
            "message",
            "endpoint",
        ),
        "receiver.store.error": ("part",),
        "receiver.error": (),
        "receiver.instance.stored": (
            "peer",
            "part",
            "study_uid",
            "series_uid",
            "sop_instance_uid",
            "size",
            "replaced",
            "endpoint",
        ),
    }
)
ALLOW = "POST, OPTIONS"
_CHUNK = 64 * 1024
_ids = itertools.count(1)


@dataclass
class _Upload:
    """The body sink of one accepted POST (see StreamingRequest)."""

    resource: StowResource
    request: Request
    transaction: StowTransaction
    started: float
    limit: int | None
    #: The body passed ``limit``: the rest is dropped, a 413 lists what was stored.
    over_limit: bool = False
    #: twisted.web renders the request (the body ended, or it was buffered first), so
    #: the 413 goes out as a normal response rather than an early one.
    rendering: bool = False
    #: The client's connection was lost: nothing can be answered any more.
    lost: bool = False

    def __post_init__(self) -> None:
        self.request.notifyFinish().addErrback(self._connection_gone)

    def _connection_gone(self, reason: Failure) -> None:
        self.lost = True

    def feed(self, data: bytes) -> None:
        if self.over_limit:
            return
        room = None if self.limit is None else self.limit - self.transaction.result.bytes
        if room is None or len(data) <= room:
            self.transaction.feed(data)
            return
        # PS3.18 §8.5: 413. Parts that ended within the limit are stored; the answer
        # waits for them and lists them, so no stored instance is hidden from the client.
        self.transaction.feed(data[:room])
        self.over_limit = True
        self.transaction.stop_at_limit(self.limit or 0)
        d = self.transaction.finish()
        d.addCallback(self._answer_over_limit)
        d.addErrback(
            lambda f: self.resource.log.failure("answering failed", f, event="receiver.error")
        )

    def _answer_over_limit(self, result: TransactionResult) -> None:
        if self.rendering or not isinstance(self.request, StreamingRequest):
            self.resource.respond(result, self.request, self)
            return
        early = self.resource.early_store_response(result, self.request)
        self.request.answer_early(early, self.resource.clock)
        self.resource.log_request(self.request, self.started, early.code, result)

    def connection_lost(self) -> None:
        self.transaction.abort()


class StowResource(Resource):
    """A strict STOW-RS origin server over a :class:`StorageBackend`."""

    isLeaf = True
    log = Logger()
    #: Refusals are one line of text/plain, as dcm4che's stowrsd answers.
    error_style = "text"

    def __init__(
        self,
        settings: ReceiverSettings,
        storage: StorageBackend,
        clock: IReactorTime,
        run_blocking: BlockingRunner,
        rng: random.Random | None = None,
        source: str = "",
    ) -> None:
        super().__init__()
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.run_blocking = run_blocking
        self.rng = rng or random.Random(settings.faults.seed)
        self.source = source
        #: The last requests answered (the console's emulator page).
        self.recent = RecentRequests()

    # -- routing -------------------------------------------------------------

    def _route(self, request: Request) -> tuple[bool, str | None]:
        """(matched, study UID from the path) for ``{path}/studies[/{uid}]``."""
        prefix = list(self.settings.path_segments)
        post = list(request.postpath or [])
        if post and post[-1] == b"":
            post = post[:-1]  # tolerate a trailing slash
        if post[: len(prefix)] != prefix or post[len(prefix) : len(prefix) + 1] != [b"studies"]:
            return False, None
        rest = post[len(prefix) + 1 :]
        if len(rest) > 1:
            return False, None
        return True, rest[0].decode("latin-1") if rest else None

    @property
    def authenticates_itself(self) -> bool:
        """Whether credentials are checked here (Bearer validation, token or Basic), so
        a guard in front of it lets requests through (``[ingest]``)."""
        s = self.settings
        return any(x is not None for x in (s.bearer_validator, s.bearer_token, s.basic_auth))

    def start_upload(self, request: Request, length: int | None) -> _Upload | EarlyResponse | None:
        """Decide before the body is read; see the module docstring."""
        bad_uri = uri_problem(request.uri)
        if bad_uri is not None:
            return self._early(request, 400, bad_uri)
        matched, study = self._route(request)
        method = request.method
        if method != b"POST":
            if length == 0 or (length is None and method in (b"GET", b"HEAD", b"OPTIONS")):
                return None  # answered by render() without a body
            code = 405 if matched else 404
            return self._early(request, code, "use POST with a multipart/related body")
        if not matched:
            return self._early(
                request, 404, f"no such resource; POST to {self._base_path(request)}/studies"
            )
        problem = self._precheck(request, length, study)
        if problem is not None:
            return problem
        started = self.clock.seconds()
        ctx = RequestContext(f"r{next(_ids)}", started, _peer(request), study, self.source)
        boundary = request.stow_boundary  # type: ignore[attr-defined]
        pause = getattr(request, "pause_body", lambda: None)
        resume = getattr(request, "resume_body", lambda: None)
        transaction = StowTransaction(
            ctx, boundary, self.storage, self.settings, self.run_blocking, self.rng, pause, resume
        )
        return _Upload(self, request, transaction, started, self.settings.max_request_size)

    def _precheck(
        self, request: Request, length: int | None, study: str | None
    ) -> EarlyResponse | None:
        s = self.settings
        if s.refuse_cross_site:
            forbidden = cross_site_problem(request)
            if forbidden is not None:
                return self._early(request, 403, forbidden)
        refused = refusal(_header(request, b"authorization"), s)
        if refused is not None:
            return self._early(request, refused.status, refused.reason, list(refused.headers))
        accept = [v.decode("latin-1") for v in request.requestHeaders.getRawHeaders(b"accept", [])]
        media = negotiate(accept)
        if media is None:
            return self._early(
                request,
                406,
                f"cannot answer {', '.join(accept)!r}; supported: {SUPPORTED_RESPONSE_TYPES}",
            )
        request.stow_media = media  # type: ignore[attr-defined]
        problem = self._content_type_problem(request)
        if problem is not None:
            return problem
        if study is not None:
            try:
                validate_uid(study, "the Study Instance UID in the URL")
            except InvalidUID as e:
                return self._early(request, 400, str(e))
        limit = s.max_request_size
        if limit is not None and length is not None and length > limit:
            return self.too_large(limit)
        faults = s.faults
        if faults.status is not None and self.rng.random() < faults.status_rate:
            extra = [("Retry-After", str(faults.retry_after))] if faults.status == 503 else []
            return self._early(
                request, faults.status, f"injected status {faults.status} (--status)", extra
            )
        return None

    def _content_type_problem(self, request: Request) -> EarlyResponse | None:
        supported = 'supported: multipart/related; type="application/dicom"; boundary=...'
        value = _header(request, b"content-type")
        if not value:
            return self._early(request, 415, f"Content-Type is missing; {supported}")
        try:
            media, params = parse_content_type(value)
        except ContentTypeError as e:
            return self._early(request, 415, f"{e}; {supported}")
        part_type = params.get("type", "application/dicom").lower()
        if media != "multipart/related" or part_type != "application/dicom":
            return self._early(
                request, 415, f"Content-Type {value!r} is not supported; {supported}"
            )
        boundary = params.get("boundary", "")
        if not 1 <= len(boundary) <= MAX_BOUNDARY:
            return self._early(
                request, 400, f"Content-Type {value!r} has no valid boundary parameter"
            )
        request.stow_boundary = boundary  # type: ignore[attr-defined]
        return None

    def too_large(self, limit: int) -> EarlyResponse:
        option = self.settings.max_request_size_option
        return EarlyResponse(
            413,
            f"request body larger than {limit} bytes ({option}); nothing was read or"
            " stored\n".encode(),
        )

    def _early(
        self,
        request: Request,
        code: int,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> EarlyResponse:
        self.log_request(request, self.clock.seconds(), code, error=message)
        cors = self._cors(request)
        allow = [("Allow", ALLOW)] if code == 405 else []
        return EarlyResponse(
            code, (message + "\n").encode(), headers=tuple((headers or []) + allow + cors)
        )

    # -- rendering -------------------------------------------------------------

    def render(self, request: Request) -> bytes | int:
        matched, _ = self._route(request)
        if not matched:
            request.setResponseCode(404)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return b"no such resource\n"
        if request.method == b"OPTIONS":
            request.setResponseCode(204)
            preflight = cors_headers(
                _header(request, b"origin"),
                _header(request, b"access-control-request-method"),
                _header(request, b"access-control-request-headers"),
            )
            for name, value in [] if self.settings.refuse_cross_site else preflight:
                request.setHeader(name, value)
            request.setHeader("Allow", ALLOW)
            return b""
        if request.method != b"POST":
            request.setResponseCode(405)
            request.setHeader("Allow", ALLOW)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return b"use POST with a multipart/related body\n"
        return self.render_POST(request)

    def render_POST(self, request: Request) -> int | bytes:
        upload = getattr(request, "upload", None)
        if not isinstance(upload, _Upload):  # a plain request: the body was buffered
            decision = self.start_upload(request, None)
            if isinstance(decision, EarlyResponse):
                return _render_early(request, decision)
            assert isinstance(decision, _Upload)
            upload = decision
            upload.rendering = True
            content = request.content
            while not upload.over_limit and content is not None and (chunk := content.read(_CHUNK)):
                upload.feed(chunk)
        upload.rendering = True
        if upload.over_limit:
            return NOT_DONE_YET  # the 413 is written once the stored parts settle
        d = upload.transaction.finish()
        d.addCallback(self.respond, request, upload)
        d.addErrback(self._answer_failed, request)
        return NOT_DONE_YET

    def _answer_failed(self, failure: Failure, request: Request) -> None:
        """A bug while answering: logged once with its traceback, answered 500 (text)."""
        self.log.failure(
            "Answering POST {path} from {peer} failed",
            failure,
            path=(request.path or b"").decode("latin-1"),
            peer=_peer(request),
            event="receiver.error",
        )
        if request.finished or request.startedWriting or request.channel is None:
            return
        answer = error_response(500, "internal error while answering; see the service log", "text")
        request.write(_render_early(request, answer))
        request.finish()

    def early_store_response(self, result: TransactionResult, request: Request) -> EarlyResponse:
        """The Store Instances Response as an answer sent before the body ended (413)."""
        media, body = self._encoded(result, request)
        headers = tuple(self._warnings(result) + self._cors(request))
        self._log_outcome(result, request)
        return EarlyResponse(stow_status(result), body, media, headers)

    def _encoded(self, result: TransactionResult, request: Request) -> tuple[str, bytes]:
        response = self._build(result, request)
        media = getattr(request, "stow_media", JSON_MEDIA_TYPE)
        return media, response.to_json() if media == JSON_MEDIA_TYPE else response.to_xml()

    def respond(
        self, result: TransactionResult, request: Request, upload: _Upload
    ) -> Deferred[None] | None:
        if result.unavailable is not None:
            self._unavailable(result, request, upload)
            return None
        code = stow_status(result)
        media, body = self._encoded(result, request)
        self._log_outcome(result, request)

        def write(_: object = None) -> None:
            if upload.lost:
                return
            request.setResponseCode(code)
            request.setHeader("Content-Type", media)
            request.setHeader("Content-Length", str(len(body)))
            for name, value in self._warnings(result) + self._cors(request):
                request.responseHeaders.addRawHeader(name, value)
            request.write(body)
            request.finish()
            self.log_request(request, upload.started, code, result)

        delay = self.settings.faults.delay
        if delay > 0:
            return deferLater(self.clock, delay, write)
        write()
        return None

    def _unavailable(self, result: TransactionResult, request: Request, upload: _Upload) -> None:
        """503 with Retry-After: the archive could not index; sending the same request
        again later stores what is missing (what was stored is acknowledged again)."""
        problem = result.unavailable
        assert problem is not None
        message = f"the archive cannot store instances now: {problem.message}"
        body = f"{message}; send the request again in {problem.retry_after}s\n".encode()
        if upload.lost:
            return
        request.setResponseCode(503)
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        request.setHeader("Content-Length", str(len(body)))
        request.setHeader("Retry-After", str(problem.retry_after))
        for name, value in self._cors(request):
            request.responseHeaders.addRawHeader(name, value)
        request.write(body)
        request.finish()
        self.log_request(request, upload.started, 503, result, error=message)

    def _log_outcome(self, result: TransactionResult, request: Request) -> None:
        self._log_stored(result, request)
        for failure in result.failed:
            self.log.debug(
                "Refused part {part} ({sop_instance_uid}) from {peer}: {reason:04X} {message}",
                peer=_peer(request),
                path=request.path,
                part=failure.part_number,
                sop_class_uid=failure.sop_class_uid,
                sop_instance_uid=failure.sop_instance_uid,
                reason=failure.failure_reason,
                message=failure.message,
                endpoint=self.settings.endpoint,
                event="receiver.instance.failed",
            )

    def _log_stored(self, result: TransactionResult, request: Request) -> None:
        """One event per durably stored part: receipts (and re-sends) can be counted."""
        for number, r in result.stored:
            self.log.debug(
                "Stored part {part} ({sop_instance_uid}, {size} bytes{again}) from {peer}",
                peer=_peer(request),
                part=number,
                study_uid=r.study_uid,
                series_uid=r.series_uid,
                sop_instance_uid=r.sop_instance_uid,
                size=r.size,
                replaced=r.replaced,
                again=", replacing the stored copy" if r.replaced else "",
                endpoint=self.settings.endpoint,
                event="receiver.instance.stored",
            )

    def _build(self, result: TransactionResult, request: Request) -> StoreResponse:
        base = self._base_url(request)
        referenced = tuple(
            ReferencedInstance(
                r.sop_class_uid,
                r.sop_instance_uid,
                f"{base}/studies/{r.study_uid}/series/{r.series_uid}/instances/{r.sop_instance_uid}",
                r.warning_reason,
            )
            for _, r in result.stored
        )
        failed = tuple(
            FailedInstance(f.sop_class_uid, f.sop_instance_uid, f.failure_reason)
            for f in result.failed
            if f.sop_class_uid and f.sop_instance_uid
        )
        other = [
            f.failure_reason for f in result.failed if not (f.sop_class_uid and f.sop_instance_uid)
        ]
        if result.syntax_error is not None:
            other.append(0xC000)
        if result.limit_error is not None:
            other.append(0xA700)  # Table I.2-2: refused, out of resources
        # The study named in the URL, else (POST /studies) the first stored one's.
        _, path_study = self._route(request)
        study = path_study or (result.stored[0][1].study_uid if result.stored else None)
        url = f"{base}/studies/{study}" if study else None
        return StoreResponse(url, referenced, failed, tuple(other))

    def _warnings(self, result: TransactionResult) -> list[tuple[str, str]]:
        """``Warning: 299 <server> "<text>"`` per problem (PS3.18 §10.5.3.2), at most 20."""
        problems = [result.limit_error, result.syntax_error]
        texts = [t for t in problems if t] + [
            f"{f.failure_reason:04X} {f.message}" for f in result.failed
        ]
        name = self.settings.server_name
        return [("Warning", f'299 {name} "{_quote(t)}"') for t in texts[:20]]

    def _cors(self, request: Request) -> list[tuple[str, str]]:
        if self.settings.refuse_cross_site:
            return []  # no page of another origin may read or preflight here
        origin = _header(request, b"origin")
        return [("Access-Control-Allow-Origin", origin)] if origin else []

    def _base_path(self, request: Request) -> str:
        segments = [s.decode("latin-1") for s in (request.prepath or [])] + [
            s.decode() for s in self.settings.path_segments
        ]
        return "/" + "/".join(s for s in segments if s)

    def _base_url(self, request: Request) -> str:
        scheme = "https" if request.isSecure() else "http"
        host = _header(request, b"host")
        if not host:
            addr: Any = request.getHost()
            host = f"{addr.host}:{addr.port}"
        return f"{scheme}://{host}{self._base_path(request)}"

    def log_request(
        self,
        request: Request,
        started: float,
        status: int,
        result: TransactionResult | None = None,
        error: str | None = None,
    ) -> None:
        r = result or TransactionResult()
        elapsed = self.clock.seconds() - started
        self.recent.add(
            ReceivedRequest(
                time=started,
                method=(request.method or b"").decode("latin-1"),
                path=(request.path or b"").decode("latin-1")[:300],
                peer=_peer(request),
                status=status,
                parts=r.parts,
                stored=len(r.stored),
                failed=len(r.failed),
                bytes=r.bytes,
                elapsed=elapsed,
                error=(error or r.syntax_error or r.limit_error),
                failure_reasons=count_reasons([f.failure_reason for f in r.failed]),
            )
        )
        self.log.info(
            "{method} {path} from {peer}: {status}, {parts} parts, {stored} stored,"
            " {failed} failed, {bytes} bytes in {elapsed:.3f}s",
            method=(request.method or b"").decode("latin-1"),
            path=(request.path or b"").decode("latin-1"),
            peer=_peer(request),
            status=status,
            bytes=r.bytes,
            parts=r.parts,
            stored=len(r.stored),
            failed=len(r.failed),
            elapsed=elapsed,
            error=error or r.syntax_error,
            endpoint=self.settings.endpoint,
            event="receiver.request",
        )


def _render_early(request: Request, early: EarlyResponse) -> bytes:
    request.setResponseCode(early.code)
    request.setHeader("Content-Type", early.content_type)
    for name, value in early.headers:
        request.responseHeaders.addRawHeader(name, value)
    return early.body


def _header(request: Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _peer(request: Request) -> str:
    addr: Any = request.getClientAddress()
    host, port = getattr(addr, "host", None), getattr(addr, "port", None)
    return f"{host}:{port}" if host is not None else str(addr)


def _quote(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")[:300]
    )
