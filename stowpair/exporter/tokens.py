"""One :class:`~stowpair.auth.tokens.TokenSource` per ``[keycloak-clients.ID]``, shared
by every web app and export that uses it.

The token endpoint is reached over treq with the same TLS policy as STOW-RS
destinations (:class:`~stowpair.exporter.tls.StowTLSPolicy`), fed the client's
``allow-any-hostname``, ``disable-trust-manager`` and ``ca-file``. A reload keeps the
sources (and their cached tokens) of clients whose settings did not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from treq.client import HTTPClient
from twisted.internet.defer import Deferred, DeferredList
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent

from stowpair.auth.oauth import TokenEndpoint, TokenRequest
from stowpair.auth.tokens import TokenSource
from stowpair.config.model import KeycloakClient, WebApplication, WebAppProperties
from stowpair.exporter.errors import describe
from stowpair.exporter.tls import StowTLSPolicy


def token_endpoint_webapp(client: KeycloakClient) -> WebApplication:
    """The token endpoint seen as a web app, for the TLS policy and agent factories."""
    props = WebAppProperties(
        allow_any_hostname=client.allow_any_hostname,
        disable_trust_manager=client.disable_trust_manager,
        ca_file=client.ca_file,
    )
    return WebApplication(
        name=f"keycloak-client {client.name}", url=client.token_url, properties=props
    )


def token_request(client: KeycloakClient) -> TokenRequest:
    return TokenRequest(
        token_url=client.token_url,
        client_id=client.client_id,
        grant_type=client.grant_type,
        client_secret=client.client_secret.reveal if client.client_secret else None,
        username=client.uid,
        password=client.user_password.reveal if client.user_password else None,
        scope=client.scope,
        audience=client.audience,
        resource=client.resource,
        client_auth=client.client_auth,
    )


class TokenSources:
    """Token sources by keycloak client ID, built on first use."""

    def __init__(
        self,
        reactor: Any,
        clients: Mapping[str, KeycloakClient],
        agent_factory: Callable[[WebApplication], IAgent] | None = None,
    ) -> None:
        self._reactor = reactor
        self._clients = dict(clients)
        self._agent_factory = agent_factory
        self._sources: dict[str, tuple[KeycloakClient, TokenSource]] = {}
        self._pools: dict[str, HTTPConnectionPool] = {}

    def get(self, name: str) -> TokenSource:
        """The source of client ``name``; KeyError when it is not configured; TLSConfigError
        when its ca-file cannot be used."""
        client = self._clients[name]
        known = self._sources.get(name)
        if known is not None and known[0] == client:
            return known[1]
        source = self._build(client)
        self._sources[name] = (client, source)
        return source

    def _build(self, client: KeycloakClient) -> TokenSource:
        webapp = token_endpoint_webapp(client)
        if self._agent_factory is not None:
            agent = self._agent_factory(webapp)
        else:
            pool = HTTPConnectionPool(self._reactor, persistent=True)
            self._pools[client.name] = pool
            agent = Agent(
                self._reactor,
                contextFactory=StowTLSPolicy(webapp),
                pool=pool,
                connectTimeout=client.timeout,
            )
        endpoint = TokenEndpoint(
            token_request(client),
            HTTPClient(agent),
            self._reactor,
            timeout=client.timeout,
            explain=lambda e, url: describe(e, url)[0],
        )
        return TokenSource(
            endpoint.fetch,
            self._reactor,
            skew=client.refresh_skew,
            name=client.name,
            token_url=client.token_url,
            grant_type=client.grant_type,
        )

    def reconfigure(self, clients: Mapping[str, KeycloakClient]) -> None:
        """New settings: sources of changed or removed clients are dropped."""
        self._clients = dict(clients)
        for name, (client, _) in list(self._sources.items()):
            if self._clients.get(name) != client:
                del self._sources[name]
                pool = self._pools.pop(name, None)
                if pool is not None:
                    pool.closeCachedConnections()

    def close(self) -> Deferred[Any]:
        pools, self._pools = list(self._pools.values()), {}
        return DeferredList([p.closeCachedConnections() for p in pools])
