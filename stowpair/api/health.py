"""``GET /health``: liveness of the listener."""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair import __version__
from stowpair.web.errors import error_response, write_error


class HealthResource(Resource):
    isLeaf = True
    #: The listener's authentication guard reads this: ``[rest.auth] health``.
    access = "health"

    def render_GET(self, request: Request) -> bytes:
        if any(request.postpath or []):  # /health/anything is not /health
            path = (request.path or b"").decode("utf-8", "replace")[:200]
            return write_error(request, error_response(404, f"No such resource: {path}"))
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps({"status": "ok", "version": __version__}).encode() + b"\n"
