"""The REST listener's authentication in one service: the guard around the root, the
policy built from ``[rest.auth]``, the threads that check passwords, and the service's
own Bearer secret for the requests it makes to itself (docs/rest-api.md#authentication).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource

from stowpair.auth.guard import AuthGuard
from stowpair.auth.jwks import make_key_set
from stowpair.auth.jwt_validator import TokenValidator
from stowpair.auth.policy import AccessPolicy
from stowpair.config.model import Config
from stowpair.config.rest_auth import is_loopback
from stowpair.logs import register_events

register_events({"rest.insecure": ("host", "port")})

log = Logger()


class RestAuthentication:
    """Wraps ``root`` in an :class:`AuthGuard` with the policy of ``config``."""

    def __init__(self, root: IResource, config: Config, reactor: Any) -> None:
        self.reactor = reactor
        # Password checks (scrypt) get their own threads: a flood of wrong passwords
        # must not delay archive writes.
        self.pool = ThreadPool(minthreads=0, maxthreads=2, name="stowpair-auth")
        #: Bearer secret of this process for its own requests (the demo study's ingest).
        self.internal_token = secrets.token_urlsafe(32)
        self.guard = AuthGuard(root, self.policy_for(config), reactor)

    @property
    def internal_authorization(self) -> bytes:
        return f"Bearer {self.internal_token}".encode()

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def policy_for(self, config: Config) -> AccessPolicy | None:
        """``[rest.auth]`` as a policy for the guard; None when there is none."""
        auth = config.rest_auth
        if auth is None:
            return None
        validator = None
        if auth.bearer is not None:
            b = auth.bearer
            validator = TokenValidator(
                make_key_set(self.reactor, b.jwks, b.issuer),
                self.reactor,
                issuer=b.issuer,
                audience=b.audience,
                required_scopes=b.required_scopes,
                leeway=b.leeway,
                realm=auth.realm,
            )

        def run_blocking(f: Callable[[], bool]) -> Deferred[bool]:
            return deferToThreadPool(self.reactor, self.pool, f)

        return AccessPolicy(auth, self.reactor, run_blocking, validator, self.internal_token)

    def keys_loaded(self, policy: AccessPolicy | None = None) -> Deferred[None]:
        """Fires once the token signing keys of ``policy`` (default: the guard's) are
        loaded; at once without Bearer validation. Never fails."""
        policy = policy if policy is not None else self.guard.policy
        if policy is None or policy.validator is None:
            return succeed(None)
        return policy.validator.keys.refresh()

    async def prepare(self, config: Config) -> AccessPolicy | None:
        """The policy of a reloaded configuration, its keys loaded, ready to apply."""
        policy = self.policy_for(config)
        await self.keys_loaded(policy)
        return policy


def warn_if_insecure(config: Config) -> None:
    """At start: say so when the REST API listens beyond loopback without authentication
    (``[rest] insecure = true``; without it such a configuration is refused)."""
    rest = config.rest
    if rest.enabled and config.rest_auth is None and not is_loopback(rest.host):
        log.warn(
            "The REST API on {host}:{port} has no authentication (insecure = true):"
            " anyone who can reach it can trigger, cancel and delete exports",
            host=rest.host,
            port=rest.port,
            event="rest.insecure",
        )
