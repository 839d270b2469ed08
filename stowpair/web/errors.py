"""One error path for every HTTP listener: the shape of a refusal and the guard that
wraps every resource before it renders.

A refusal is one sentence saying what was wrong and what to do. Its shape depends on
where it is answered (``error_style`` of the resource): ``{"errorMessage": "..."}`` as
``application/json`` for the REST API and ``/health``, as dcm4chee does; one line of
``text/plain`` on the STOW-RS endpoints (stowrsd, the emulator, the archive ingest), as
dcm4che's stowrsd does. See docs/rest-api.md and docs/conformance.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from twisted.web.error import UnsupportedMethod
from twisted.web.http import RESPONSES, datetimeToString
from twisted.web.resource import IResource, Resource
from zope.interface import implementer

from stowpair.web.crosssite import SAFE_METHODS, cross_site_problem, simple_body_problem

ErrorStyle = Literal["json", "text"]
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"

#: An HTTP method is a token (RFC 9110 §9.1, §5.6.2).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")


@dataclass(frozen=True)
class EarlyResponse:
    """A complete answer written straight to the connection (before, or instead of,
    reading the request body)."""

    code: int
    body: bytes = b""
    content_type: str = TEXT_TYPE
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encode(self, head: bool = False) -> bytes:
        """The whole response; for a HEAD request (``head``) the headers only."""
        reason = RESPONSES.get(self.code, b"Unknown").decode("latin-1")
        lines = [
            f"HTTP/1.1 {self.code} {reason}",
            f"Date: {datetimeToString().decode()}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else self.body)


def error_response(
    code: int, message: str, style: ErrorStyle = "json", headers: tuple[tuple[str, str], ...] = ()
) -> EarlyResponse:
    """``message`` as a JSON ``errorMessage`` or as one line of text."""
    if style == "json":
        body = json.dumps({"errorMessage": message}).encode() + b"\n"
        return EarlyResponse(code, body, JSON_TYPE, headers)
    return EarlyResponse(code, (message + "\n").encode(), TEXT_TYPE, headers)


def error_style(resource: Any) -> ErrorStyle:
    """How ``resource`` words its refusals (a class attribute; JSON unless it says text)."""
    style = getattr(resource, "error_style", "json")
    return "text" if style == "text" else "json"


def shown(data: bytes, limit: int = 100) -> str:
    """Bytes from the wire as printable text for a message (escaped, shortened)."""
    text = data[:limit].decode("ascii", "backslashreplace")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text + ("..." if len(data) > limit else "")


def request_line_problem(line: bytes) -> str | None:
    """Why ``line`` is not ``METHOD SP request-target SP HTTP-version`` (RFC 9112 §3),
    or None."""
    parts = line.split(b" ")
    if len(parts) != 3:
        return f"malformed request line '{shown(line)}': expected METHOD /path HTTP/1.1"
    method, target, version = parts
    if _TOKEN.fullmatch(method) is None:
        return f"'{shown(method)}' is not an HTTP method"
    if not target:
        return "the request line has no target: expected METHOD /path HTTP/1.1"
    problem = _raw_bytes_problem(target)
    if problem is not None:
        return problem
    if version not in _VERSIONS:
        return f"'{shown(version)}' is not supported: use HTTP/1.1"
    return None


class HeaderCheck:
    """The header lines of one request, checked as twisted.web checks them (which would
    answer an empty 400), so that the refusal can say what was wrong (RFC 9110 §5,
    RFC 9112 §6)."""

    def __init__(self, request_line: int, max_bytes: int, max_headers: int) -> None:
        self.size = request_line
        self.count = 0
        self.max_bytes = max_bytes
        self.max_headers = max_headers
        self.framed = False  # Content-Length or Transfer-Encoding: chunked seen

    def problem(self, line: bytes) -> tuple[int, str] | None:
        """(status, sentence) when ``line`` (one header line) cannot be accepted."""
        self.size += len(line)
        if self.size > self.max_bytes:
            return 431, f"the request line and headers are longer than {self.max_bytes} bytes"
        if line[:1] in (b" ", b"\t"):
            return None  # obs-fold: twisted.web joins it to the header before
        self.count += 1
        if self.count > self.max_headers:
            return 431, f"more than {self.max_headers} header lines"
        name, colon, value = line.partition(b":")
        if not colon:
            return 400, f"the header line '{shown(line, 60)}' has no colon"
        if _TOKEN.fullmatch(name) is None:
            return 400, f"the header name '{shown(name, 60)}' is not a token (RFC 9110 §5.1)"
        value = value.strip(b" \t")
        if len(value.translate(None, b"\x00\r\n")) != len(value):
            return 400, f"the {shown(name, 60)} header holds a NUL, CR or LF"
        return self._framing(name.lower(), value)

    def _framing(self, name: bytes, value: bytes) -> tuple[int, str] | None:
        if name not in (b"content-length", b"transfer-encoding"):
            return None
        if name == b"transfer-encoding" and value.lower() == b"identity":
            return None
        if self.framed:
            return 400, "the body length is declared twice (Content-Length, Transfer-Encoding)"
        self.framed = True
        if name == b"content-length" and not value.isdigit():
            return 400, f"Content-Length '{shown(value, 40)}' is not a number of bytes"
        if name == b"transfer-encoding" and value.lower() != b"chunked":
            return 400, (
                f"Transfer-Encoding '{shown(value, 40)}' is not supported; send chunked or"
                " a Content-Length"
            )
        return None


def _raw_bytes_problem(target: bytes) -> str | None:
    if any(b <= 0x20 or b >= 0x7F for b in target):
        return (
            f"the request target '{shown(target)}' holds raw bytes outside printable ASCII;"
            " percent-encode them (RFC 3986)"
        )
    return None


def uri_problem(uri: bytes) -> str | None:
    """Why the request target cannot be read as UTF-8 text, or None.

    Paths and query strings are percent-decoded and must then be UTF-8: AE titles, UIDs,
    task IDs and parameter values are text; a byte that is not is refused with 400
    rather than guessed.
    """
    problem = _raw_bytes_problem(uri)
    if problem is not None:
        return problem
    path, _, query = uri.partition(b"?")
    try:
        unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return f"the request path '{shown(path)}' is not UTF-8 once percent-decoded"
    for item in query.split(b"&"):
        try:
            unquote_to_bytes(item.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return f"the query parameter '{shown(item)}' is not UTF-8 once percent-decoded"
    return None


def allowed_methods(resource: Any) -> frozenset[bytes] | None:
    """The methods a plain twisted ``Resource`` renders (``render_X``), or None when the
    resource has its own ``render`` and answers every method itself. HEAD is allowed
    only where GET is (twisted's ``render_HEAD`` calls ``render_GET``)."""
    if getattr(type(resource), "render", None) is not Resource.render:
        return None
    declared = getattr(resource, "allowedMethods", None)
    if declared is not None:
        names = {bytes(m) for m in declared}
    else:
        names = {n[len("render_") :].encode() for n in dir(resource) if n.startswith("render_")}
    if b"GET" not in names:
        names.discard(b"HEAD")
    return frozenset(names)


def allow_header(methods: frozenset[bytes] | tuple[bytes, ...]) -> str:
    return ", ".join(sorted(m.decode("ascii") for m in methods))


def write_error(request: Any, response: EarlyResponse) -> bytes:
    """Set ``response``'s status and headers on ``request``; return the body to render
    (empty for HEAD, with the Content-Length the body would have)."""
    request.setResponseCode(response.code)
    request.setHeader(b"Content-Type", response.content_type.encode())
    for name, value in response.headers:
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    return head_safe(request, response.body)


def head_safe(request: Any, body: Any) -> Any:
    """A HEAD answer carries headers only; twisted.web would log a warning for a body."""
    if request.method == b"HEAD" and isinstance(body, bytes) and body:
        request.setHeader(b"Content-Length", b"%d" % len(body))
        return b""
    return body


@implementer(IResource)
class ResourceGuard:
    """Wraps the resource being rendered so that every method on every route gets a
    defined answer in the resource's error style:

    * 400 for a method that is not a token or a target that is not UTF-8 text;
    * 404 for a resource that renders nothing; 405 with ``Allow`` for a method it does
      not render (HEAD included, where GET is not allowed);
    * 403 for a cross-site request and 415 for a body a browser could send cross-site
      without a preflight, on every state-changing method (docs/rest-api.md). Resources
      that stream uploads (``start_upload``) decide these before the body is read.
    """

    isLeaf = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def getChildWithDefault(self, name: bytes, request: Any) -> IResource:
        child: IResource = self.inner.getChildWithDefault(name, request)
        return child

    def putChild(self, path: bytes, child: IResource) -> None:
        self.inner.putChild(path, child)

    def render(self, request: Any) -> Any:
        refusal = self._refusal(request)
        if refusal is not None:
            return write_error(request, refusal)
        try:
            body = self.inner.render(request)
        except UnsupportedMethod as e:
            allowed: tuple[bytes, ...] = tuple(e.allowedMethods)
            if request.method == b"HEAD" and b"GET" in allowed:
                raise  # twisted.web answers HEAD with the headers of GET
            return write_error(request, self._not_allowed(request, allowed))
        return head_safe(request, body)

    def _refusal(self, request: Any) -> EarlyResponse | None:
        style = error_style(self.inner)
        method: bytes = request.method
        if _TOKEN.fullmatch(method) is None:
            return error_response(400, f"'{shown(method)}' is not an HTTP method", style)
        problem = uri_problem(request.uri)
        if problem is not None:
            return error_response(400, problem, style)
        allowed = allowed_methods(self.inner)
        if allowed is not None and not allowed:
            path = (request.path or b"").decode("utf-8", "replace")[:200]
            return error_response(404, f"No such resource: {path}", style)
        if allowed is not None and method not in allowed:
            return self._not_allowed(request, tuple(allowed))
        if method not in SAFE_METHODS and not hasattr(self.inner, "start_upload"):
            forbidden = cross_site_problem(request)
            if forbidden is not None:
                return error_response(403, forbidden, style)
            unsupported = simple_body_problem(request)
            if unsupported is not None:
                return error_response(415, unsupported, style)
        return None

    def _not_allowed(self, request: Any, allowed: tuple[bytes, ...]) -> EarlyResponse:
        names = frozenset(allowed)
        if b"GET" in names:
            names |= {b"HEAD"}
        allow = allow_header(names)
        message = f"Method {shown(request.method)} not allowed here"
        if allow:
            message += f" (allowed: {allow})"
        headers = (("Allow", allow),) if allow else ()
        return error_response(405, message, error_style(self.inner), headers)
