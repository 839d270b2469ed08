"""Effective configuration values as people read them, secrets masked: shared by
``stowpair config check`` and the REST API's ``GET /dcm4chee-arc/ctrl/config``."""

from __future__ import annotations

from dataclasses import fields

from stowpair.config.model import (
    WEBAPP_PROPERTIES,
    BearerAuth,
    Config,
    KeycloakClient,
    WebApplication,
    WebAppProperties,
)
from stowpair.exporter.client import idle_timeout_of


def value_text(value: object) -> str:
    """A configuration value as ``config check`` prints it."""
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ",".join(value) or "*"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)  # a Secret shows its reference or ********


def effective_properties(props: WebAppProperties) -> dict[str, str]:
    """Every Web Application property's effective value by its dcm4chee name, dcm4chee's
    seven then our additions, with what an unset one means; secrets masked (``Secret``
    shows ``********`` or its ``env:``/``file:`` reference)."""
    values = {f.name.replace("_", "-"): getattr(props, f.name) for f in fields(props)}
    shown = {name: value_text(value) for name, value in values.items()}
    if not props.transfer_syntax:
        shown["transfer-syntax"] = "* (as stored)"
    if props.connect_timeout is None or props.connect_timeout <= 0:
        shown["connect-timeout"] = "none (Twisted's 30 s per attempt)"
    idle = idle_timeout_of(WebApplication("", "", properties=props))
    if idle is None:
        shown["response-timeout"] = "none"
    elif props.response_timeout == WebAppProperties().response_timeout:
        shown["response-timeout"] = f"{idle:g} (default)"
    if props.ca_file is None:
        shown["ca-file"] = "- (system CAs)"
    if props.max_request_bytes is None:
        shown["max-request-bytes"] = "- (no cap)"
    return {name: shown[name] for name in WEBAPP_PROPERTIES}


def keycloak_text(client: KeycloakClient) -> str:
    """A Keycloak client in one line; secrets as ``********`` or their reference."""
    who = f"client-id {client.client_id}"
    if client.client_secret is not None:
        who += f", client-secret {client.client_secret}"
    if client.grant_type == "password":
        who += f", uid {client.uid}, user-password {client.user_password}"
    extra = [
        f"{k} {v}"
        for k, v in (
            ("scope", client.scope),
            ("audience", client.audience),
            ("resource", client.resource),
        )
        if v
    ]
    tls = [
        k
        for k, v in (
            ("allow-any-hostname", client.allow_any_hostname),
            ("disable-trust-manager", client.disable_trust_manager),
        )
        if v
    ]
    return (
        f"OAuth 2.0 {client.grant_type} at {client.token_url} ({who}, {client.client_auth}"
        + "".join(f", {e}" for e in extra + tls)
        + ")"
    )


def auth_text(app: WebApplication, config: Config) -> str:
    """The Authorization a web app's requests carry (dcm4chee's precedence: Keycloak
    client, then bearer-token, then basic-auth); secrets masked."""
    props = app.properties
    if app.keycloak_client:
        client = config.keycloak_clients.get(app.keycloak_client)
        if client is None:
            return f"Bearer token from keycloak client {app.keycloak_client}: NOT DEFINED"
        text = f"Bearer token from keycloak client {client.name}: {keycloak_text(client)}"
        ignored = [
            n
            for n, v in (("bearer-token", props.bearer_token), ("basic-auth", props.basic_auth))
            if v
        ]
        if ignored:
            text += f"; {' and '.join(ignored)} ignored (keycloak-client takes precedence)"
        return text
    if props.bearer_token is not None:
        return f"Bearer token {props.bearer_token}"
    if props.basic_auth is not None:
        return f"HTTP Basic {props.basic_auth}"
    return "none"


def ingest_text(auth: BearerAuth | None) -> str:
    if auth is None:
        return "open (no [ingest] table: no Bearer token required)"
    checks = [
        f"issuer {auth.issuer}" if auth.issuer else "",
        f"keys {auth.jwks}" if auth.jwks else "keys from the issuer's discovery",
        f"audience {auth.audience}" if auth.audience else "audience not checked",
        f"scope {' '.join(auth.required_scopes)}" if auth.required_scopes else "",
    ]
    return "Bearer JWT access token required (" + ", ".join(c for c in checks if c) + ")"


def rest_auth_text(config: Config) -> str:
    """``[rest.auth]`` in a few words: kind, users (names and hash schemes), open paths."""
    auth = config.rest_auth
    if auth is None:
        return "no authentication" + (" (insecure = true)" if config.rest_insecure else "")
    if auth.kind == "basic":
        users = ", ".join(f"{name} ({value.split('$')[1]})" for name, value in auth.users.items())
        what = f"Basic auth, users {users}"
    else:
        b = auth.bearer
        what = f"Bearer JWT ({(b.issuer or b.jwks) if b else '?'})"
    opened = [p for p in ("health", "metrics", "console") if getattr(auth, p) == "open"]
    shown = {"health": "/health", "metrics": "/metrics", "console": "/ui/"}
    return what + (f"; open: {', '.join(shown[p] for p in opened)}" if opened else "")
