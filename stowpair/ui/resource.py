"""``/ui/``: the console's files, and ``/`` sending browsers there.

The console is plain HTML, CSS and JavaScript modules shipped in the package
(``stowpair/ui/static``), read once when the service starts; it needs no build step
and nothing from the network. Every file is answered with a strict Content Security
Policy (scripts, styles and requests to this origin only, no framing) and an ETag, so a
reload sends nothing but ``304 Not Modified`` when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import PurePosixPath

from twisted.web.resource import Resource
from twisted.web.server import Request

STATIC = "static"
CONSOLE_PATH = b"/ui/"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
#: Same-origin everything; no inline script or style, no frames, no form posts.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_files() -> dict[str, bytes]:
    """Every console file by its path under ``/ui/`` (``index.html``, ``js/app.js``)."""
    root = resources.files("stowpair.ui") / STATIC
    found: dict[str, bytes] = {}
    pending = [(root, PurePosixPath())]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((entry, prefix / entry.name))
            elif PurePosixPath(entry.name).suffix in TYPES:
                found[str(prefix / entry.name)] = entry.read_bytes()
    return found


class ConsoleResource(Resource):
    """``GET /ui/[file]``: ``/ui`` redirects to ``/ui/``, which is ``index.html``."""

    isLeaf = True
    #: The listener's authentication guard reads this: ``[rest.auth] console``.
    access = "console"

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self.files = load_files() if files is None else files
        self.etags = {name: _etag(body) for name, body in self.files.items()}

    def render_GET(self, request: Request) -> bytes:
        segments = [s.decode("utf-8", "replace") for s in request.postpath or []]
        if not segments:  # /ui: module imports resolve against /ui/
            return _redirect(request, CONSOLE_PATH)
        name = "/".join(segments) or "index.html"
        body = self.files.get(name)
        if body is None:
            return _not_found(request)
        for header, value in SECURITY_HEADERS.items():
            request.setHeader(header, value)
        request.setHeader("ETag", self.etags[name])
        if request.getHeader("If-None-Match") == self.etags[name]:
            request.setResponseCode(304)
            return b""
        request.setHeader("Content-Type", TYPES[PurePosixPath(name).suffix])
        return body


class ConsoleRedirect(Resource):
    """``GET /``: the console (``302`` to ``/ui/``)."""

    isLeaf = True
    access = "console"

    def render_GET(self, request: Request) -> bytes:
        if any(request.postpath or []):
            return _not_found(request)
        return _redirect(request, CONSOLE_PATH)


def _redirect(request: Request, location: bytes) -> bytes:
    request.setResponseCode(302)
    request.setHeader("Location", location)
    request.setHeader("Content-Type", "text/plain; charset=utf-8")
    return b"The console is at " + location + b"\n"


def _not_found(request: Request) -> bytes:
    path = (request.path or b"").decode("utf-8", "replace")[:200]
    request.setResponseCode(404)
    request.setHeader("Content-Type", "application/json")
    message = f"No such resource: {path}; the console is at /ui/"
    return json.dumps({"errorMessage": message}).encode() + b"\n"


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
