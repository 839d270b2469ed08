"""The OAuth 2.0 token request (RFC 6749 §4.4 client credentials, §4.3 password).

One POST of ``application/x-www-form-urlencoded`` parameters to the token endpoint,
the client authenticated with HTTP Basic (``client_secret_basic``, which every server
must support, §2.3.1) or with ``client_id``/``client_secret`` in the body
(``client_secret_post``). The answer is read as RFC 6749 §5.1 (success) or §5.2 (error);
anything else becomes a :class:`~stowpair.auth.tokens.TokenError` that says what came
back, e.g. ``token request to https://kc/realms/r/protocol/openid-connect/token failed:
invalid_client (client authentication failed)``. Secrets are revealed only to build the
request and never appear in a message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from stowpair.auth.tokens import AccessToken, TokenError

GRANT_TYPES = ("client_credentials", "password")
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: A token answer is a few KB; more is not a token endpoint.
MAX_ANSWER_BYTES = 256 * 1024
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class TokenRequest:
    """What to ask for. Secrets are callables, called only when a request is built."""

    token_url: str
    client_id: str
    grant_type: str = "client_credentials"
    client_secret: Callable[[], str] | None = field(default=None, repr=False)
    username: str | None = None
    password: Callable[[], str] | None = field(default=None, repr=False)
    scope: str | None = None
    audience: str | None = None
    resource: str | None = None
    client_auth: str = "client_secret_basic"


def _form_encode(value: str) -> str:
    """RFC 6749 §2.3.1: client ID and secret are form-encoded before Basic encoding."""
    return quote(value, safe="").replace("%20", "+")


def request_parts(request: TokenRequest) -> tuple[dict[str, str], Headers]:
    """The form parameters and headers of the token request (secrets revealed)."""
    form = {"grant_type": request.grant_type}
    headers = Headers({b"Accept": [b"application/json"]})
    secret = request.client_secret() if request.client_secret is not None else None
    if secret is not None and request.client_auth == "client_secret_basic":
        pair = f"{_form_encode(request.client_id)}:{_form_encode(secret)}"
        headers.setRawHeaders(b"Authorization", [b"Basic " + base64.b64encode(pair.encode())])
    else:  # client_secret_post, or a public client (§2.3.1, §3.2.1)
        form["client_id"] = request.client_id
        if secret is not None:
            form["client_secret"] = secret
    if request.grant_type == "password":
        form["username"] = request.username or ""
        form["password"] = request.password() if request.password is not None else ""
    for name in ("scope", "audience", "resource"):
        value = getattr(request, name)
        if value:
            form[name] = value
    return form, headers


def _default_explain(error: BaseException, url: str) -> str:
    return f"{type(error).__name__}: {error}"


class TokenEndpoint:
    """Runs :class:`TokenRequest` s over ``http`` (a treq HTTPClient with the TLS policy).

    ``explain`` turns a transport error into words (the exporter passes its own, which
    digs the TLS or connect error out of Twisted's wrappers). ``timeout`` bounds the
    whole exchange.
    """

    def __init__(
        self,
        request: TokenRequest,
        http: HTTPClient,
        clock: IReactorTime,
        timeout: float = DEFAULT_TIMEOUT,
        explain: Callable[[BaseException, str], str] = _default_explain,
    ) -> None:
        self.request = request
        self._http = http
        self._clock = clock
        self.timeout = timeout
        self._explain = explain

    def fetch(self) -> Deferred[AccessToken]:
        """One token request; fails with TokenError."""
        url = self.request.token_url
        d = Deferred.fromCoroutine(self._exchange())
        timed_out: list[bool] = []

        def expire() -> None:
            timed_out.append(True)
            d.cancel()

        call = self._clock.callLater(self.timeout, expire)

        def done(result: AccessToken | Failure) -> AccessToken | Failure:
            if call.active():
                call.cancel()
            if timed_out and isinstance(result, Failure):
                return Failure(
                    TokenError(
                        f"token request to {url} failed: no answer within {self.timeout:g} s",
                        "timeout",
                    )
                )
            return result

        return d.addBoth(done)

    async def _exchange(self) -> AccessToken:
        url = self.request.token_url
        try:
            form, headers = request_parts(self.request)
        except ValueError as e:  # a secret reference that cannot be read
            raise TokenError(f"token request to {url} not sent: {e}", "secret") from None
        try:
            response: IResponse = await self._http.post(
                url, data=form, headers=headers, allow_redirects=False
            )
            body = await _read(response)
        except (CancelledError, TokenError):
            raise
        except Exception as e:
            raise TokenError(
                f"token request to {url} failed: {self._explain(e, url)}", "transport"
            ) from None
        return parse_answer(url, response.code, _content_type(response), body)


async def _read(response: IResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0

    def collect(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > MAX_ANSWER_BYTES:
            raise TokenError("answer larger than 256 KB", "too-large")
        chunks.append(data)

    await treq.collect(response, collect)
    return b"".join(chunks)


def _content_type(response: IResponse) -> str:
    values = response.headers.getRawHeaders(b"content-type") or [b""]
    return values[0].decode("latin-1").split(";")[0].strip()


def _text(value: Any, limit: int = 200) -> str:
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return text[:limit] + ("..." if len(text) > limit else "")


def parse_answer(url: str, status: int, content_type: str, body: bytes) -> AccessToken:
    """RFC 6749 §5.1 / §5.2 answer → AccessToken, or TokenError saying what came back."""
    prefix = f"token request to {url} failed"
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        kind = content_type or "no Content-Type"
        raise TokenError(
            f"{prefix}: HTTP {status}, the answer is not a JSON object ({kind})", "not-json"
        )
    if status != 200 or "error" in doc:
        error = _text(doc.get("error") or f"HTTP {status}", 60)
        description = doc.get("error_description")
        detail = f" ({_text(description)})" if description else ""
        raise TokenError(f"{prefix}: {error}{detail}", error)
    token = doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError(f"{prefix}: the answer has no access_token", "no-token")
    token_type = doc.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenError(
            f"{prefix}: token_type {_text(token_type, 40)!r} is not Bearer", "token-type"
        )
    expires_in = doc.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():  # some servers send a string
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        expires_in = None
    scope = doc.get("scope") if isinstance(doc.get("scope"), str) else None
    return AccessToken(
        token, float(expires_in) if expires_in is not None else None, "Bearer", scope
    )
