"""A fake RFC 6749 token endpoint for unit tests (opaque tokens ``tok-1``, ``tok-2``...).

It passes the same contract test as the real authorization server
(tests/auth/test_token_contract.py): right client secret → a Bearer token with
``expires_in``; wrong one → 401 ``invalid_client``. It also does the password grant,
and can misbehave on request (``behave(status=..., body=...)``, ``behave(hang=True)``).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from twisted.internet import reactor as _reactor
from twisted.web import server
from twisted.web.resource import Resource

reactor: Any = _reactor


class FakeTokenEndpoint(Resource):
    isLeaf = True

    def __init__(
        self,
        clients: dict[str, str],
        users: dict[str, str] | None = None,
        ttl: int = 5,
    ) -> None:
        super().__init__()
        self.clients, self.users, self.ttl = clients, users or {}, ttl
        self.requests: list[dict[str, str]] = []
        self.issued: list[str] = []
        self.behaviour: dict[str, Any] = {}

    def behave(self, **behaviour: Any) -> None:
        self.behaviour = behaviour

    @property
    def current(self) -> str | None:
        return self.issued[-1] if self.issued else None

    def render_POST(self, request: server.Request) -> Any:
        body = request.content.read().decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        self.requests.append(form)
        if self.behaviour.get("hang"):
            return server.NOT_DONE_YET
        if "status" in self.behaviour:
            request.setResponseCode(self.behaviour["status"])
            request.setHeader("Content-Type", self.behaviour.get("type", "text/html"))
            return bytes(self.behaviour.get("body", b"<html>bad gateway</html>"))
        client_id, secret = self._client(request, form)
        if client_id not in self.clients or self.clients[client_id] != secret:
            request.setResponseCode(401)
            request.setHeader("WWW-Authenticate", 'Basic realm="fake"')
            return _json(
                request,
                {"error": "invalid_client", "error_description": "client authentication failed"},
            )
        grant = form.get("grant_type")
        if grant == "password":
            user, password = form.get("username", ""), form.get("password", "")
            if self.users.get(user) != password or not user:
                request.setResponseCode(400)
                return _json(request, {"error": "invalid_grant"})
        elif grant != "client_credentials":
            request.setResponseCode(400)
            return _json(request, {"error": "unsupported_grant_type"})
        self.issued.append(f"tok-{len(self.issued) + 1}")
        answer = {"access_token": self.issued[-1], "token_type": "Bearer", "expires_in": self.ttl}
        return _json(request, answer)

    def _client(self, request: server.Request, form: dict[str, str]) -> tuple[str, str]:
        header = (request.getHeader("authorization") or "").split(" ", 1)
        if header[0].lower() == "basic" and len(header) == 2:
            pair = base64.b64decode(header[1]).decode()
            client_id, _, secret = pair.partition(":")
            return unquote_plus(client_id), unquote_plus(secret)
        return form.get("client_id", ""), form.get("client_secret", "")


def _json(request: server.Request, doc: dict[str, Any]) -> bytes:
    request.setHeader("Content-Type", "application/json")
    request.setHeader("Cache-Control", "no-store")
    return json.dumps(doc).encode()


class Listening:
    """A Resource on a loopback port 0 (stop with ``stop()``)."""

    def __init__(self, resource: Resource, path: str = "/token") -> None:
        self.port = reactor.listenTCP(0, server.Site(resource), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}{path}"

    def stop(self) -> Any:
        return self.port.stopListening()
