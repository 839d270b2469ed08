"""``GET /health``: liveness of the REST listener."""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair import __version__


class HealthResource(Resource):
    isLeaf = True
    #: The listener's authentication guard reads this: ``[rest.auth] health``.
    access = "health"

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps({"status": "ok", "version": __version__}).encode() + b"\n"
