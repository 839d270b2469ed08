"""Signing keys for JWT validation: a JWKS file, or a JWKS URL fetched with treq.

:class:`FileKeySet` reads an RFC 7517 JWK Set once (at start, where blocking is fine).
:class:`RemoteKeySet` fetches ``jwks_uri`` — given, or found in the issuer's discovery
document (``{issuer}/.well-known/openid-configuration``, OpenID Connect Discovery §4) —
without blocking the reactor, keeps the keys, and fetches them again when a token names
a key it does not know (key rotation), at most once per ``min_interval`` seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import treq
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from stowpair.logs import register_events

register_events(
    {
        "auth.jwks.loaded": ("source", "keys", "kids"),
        "auth.jwks.failed": ("source", "error"),
    }
)

MAX_JWKS_BYTES = 1024 * 1024
DISCOVERY = "/.well-known/openid-configuration"


class JWKSError(ValueError):
    """A key set cannot be read or holds no usable key; the message says where."""


class KeySet(Protocol):
    """What the validator needs from a key source."""

    #: Why there are no keys (None once keys are loaded).
    problem: str | None

    def candidates(self, kid: str | None) -> list[PyJWK]:
        """Keys that may have signed a token naming ``kid`` (all keys when None)."""

    def refresh(self) -> Deferred[None]:
        """Fetch the keys again if allowed now; never fails."""


def parse_jwks(data: bytes, source: str) -> PyJWKSet:
    """An RFC 7517 JWK Set (or a single JWK) → PyJWKSet; JWKSError when unusable."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise JWKSError(f'{source}: not JSON; expected a JWK Set {{"keys": [...]}}') from None
    if isinstance(doc, dict) and "keys" not in doc and "kty" in doc:
        doc = {"keys": [doc]}
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JWKSError(f'{source}: not a JWK Set; expected {{"keys": [...]}}')
    public = [k for k in doc["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    try:
        return PyJWKSet.from_dict({"keys": public})
    except PyJWKSetError as e:
        raise JWKSError(f"{source}: no usable signing key ({e})") from None


def _select(keys: PyJWKSet, kid: str | None) -> list[PyJWK]:
    return [k for k in keys.keys if kid is None or k.key_id == kid]


class FileKeySet:
    """Keys from a JWKS file, read once."""

    def __init__(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise JWKSError(f"cannot read the JWKS file {path}: {e.strerror}") from None
        self.keys = parse_jwks(data, str(path))
        self.problem: str | None = None

    def candidates(self, kid: str | None) -> list[PyJWK]:
        return _select(self.keys, kid)

    def refresh(self) -> Deferred[None]:
        return _done()


class RemoteKeySet:
    """Keys from a JWKS URL (or the issuer's discovery document), cached."""

    log = Logger()

    def __init__(
        self,
        http: HTTPClient,
        clock: IReactorTime,
        jwks_url: str | None = None,
        issuer: str | None = None,
        min_interval: float = 10.0,
        timeout: float = 10.0,
    ) -> None:
        if jwks_url is None and issuer is None:
            raise ValueError("RemoteKeySet needs a JWKS URL or an issuer")
        self._http, self._clock = http, clock
        self.jwks_url, self.issuer = jwks_url, issuer
        self.min_interval, self.timeout = min_interval, timeout
        self.keys: PyJWKSet | None = None
        self.problem: str | None = "signing keys not loaded yet"
        self._last_attempt: float | None = None
        self._waiting: list[Deferred[None]] | None = None
        #: Fetches made (for tests and reports).
        self.fetches = 0

    @property
    def source(self) -> str:
        return self.jwks_url or f"{self.issuer}{DISCOVERY}"

    def candidates(self, kid: str | None) -> list[PyJWK]:
        return _select(self.keys, kid) if self.keys is not None else []

    def refresh(self) -> Deferred[None]:
        """Fetch now unless a fetch ran less than ``min_interval`` s ago; joins one in
        flight. Never fails: a failure is logged and kept in :attr:`problem`."""
        d: Deferred[None] = Deferred()
        if self._waiting is not None:
            self._waiting.append(d)
            return d
        now = self._clock.seconds()
        if self._last_attempt is not None and now - self._last_attempt < self.min_interval:
            d.callback(None)
            return d
        self._last_attempt = now
        self._waiting = [d]
        self.fetches += 1
        fetch = Deferred.fromCoroutine(self._fetch())
        call = self._clock.callLater(self.timeout, fetch.cancel)
        fetch.addBoth(self._fetched, call)
        return d

    def _fetched(self, result: PyJWKSet | Failure, call: Any) -> None:
        if call.active():
            call.cancel()
        if isinstance(result, Failure):
            error = result.value
            if isinstance(error, CancelledError):
                text = f"no answer within {self.timeout:g} s"
            elif isinstance(error, JWKSError):
                text = str(error)
            else:
                text = f"{type(error).__name__}: {error}"
            # Keys loaded earlier stay in use: a passing outage must not refuse tokens.
            self.problem = None if self.keys is not None else f"signing keys unavailable: {text}"
            self.log.warn(
                "Cannot load signing keys from {source}: {error}",
                event="auth.jwks.failed",
                source=self.source,
                error=text,
            )
        else:
            self.keys, self.problem = result, None
            kids = [k.key_id for k in result.keys]
            self.log.info(
                "Loaded {keys} signing keys from {source}",
                event="auth.jwks.loaded",
                source=self.source,
                keys=len(kids),
                kids=kids,
            )
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.callback(None)

    async def _fetch(self) -> PyJWKSet:
        url = self.jwks_url
        if url is None:
            discovery = await self._get_json(f"{(self.issuer or '').rstrip('/')}{DISCOVERY}")
            found = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
            if not isinstance(found, str) or not found.startswith(("http://", "https://")):
                raise JWKSError(f"{self.source}: the discovery document has no jwks_uri")
            self.jwks_url = url = found
        return parse_jwks(json.dumps(await self._get_json(url)).encode(), url)

    async def _get_json(self, url: str) -> Any:
        response = await self._http.get(url, headers=Headers({b"Accept": [b"application/json"]}))
        chunks: list[bytes] = []

        def collect(data: bytes) -> None:
            if sum(map(len, chunks)) + len(data) > MAX_JWKS_BYTES:
                raise JWKSError(f"{url}: answer larger than 1 MB")
            chunks.append(data)

        await treq.collect(response, collect)
        if response.code != 200:
            raise JWKSError(f"{url} answered HTTP {response.code}")
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError):
            raise JWKSError(f"{url}: the answer is not JSON") from None


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def make_key_set(reactor: Any, jwks: str | None, issuer: str | None) -> KeySet:
    """A FileKeySet for a path (read now; JWKSError), else a RemoteKeySet for the JWKS URL
    or the issuer's discovery document (fetched by ``refresh()``)."""
    if jwks is not None and not is_url(jwks):
        return FileKeySet(Path(jwks))
    return RemoteKeySet(HTTPClient(Agent(reactor)), reactor, jwks_url=jwks, issuer=issuer)


def _done() -> Deferred[None]:
    d: Deferred[None] = Deferred()
    d.callback(None)
    return d
