"""``[keycloak-clients.ID]`` (dcm4chee's Keycloak Client, ``dcmKeycloakClient``) and the
``[ingest]`` table (Bearer-token validation of the archive's STOW-RS ingest endpoint).

Keycloak client keys and the dcm4che attributes they mirror:

==========================  ====================================================
``url``                     ``dcmURI``: the Keycloak server's base URL
``realm``                   ``dcmKeycloakRealm``
``client-id``               ``dcmKeycloakClientID`` (default: the table's ID)
``grant-type``              ``dcmKeycloakGrantType``: client_credentials | password
``client-secret``           ``dcmKeycloakClientSecret`` (literal, env:NAME, file:PATH)
``uid``, ``user-password``  ``uid``, ``userPassword`` (password grant)
``allow-any-hostname``      ``dcmTLSAllowAnyHostname``
``disable-trust-manager``   ``dcmTLSDisableTrustManager``
==========================  ====================================================

plus ``token-url`` (any RFC 6749 token endpoint, instead of url + realm), ``scope``,
``audience``, ``resource``, ``client-auth``, ``ca-file``, ``refresh-skew``, ``timeout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from stowpair.config.checks import Checker, Section, known, show
from stowpair.config.durations import parse_duration
from stowpair.config.model import BearerAuth, KeycloakClient
from stowpair.config.secret import Secret
from stowpair.config.webapps import _ENV_NAME, _is_file

KEYCLOAK_KEYS = (
    "url",
    "realm",
    "token-url",
    "client-id",
    "grant-type",
    "client-secret",
    "uid",
    "user-password",
    "scope",
    "audience",
    "resource",
    "client-auth",
    "allow-any-hostname",
    "disable-trust-manager",
    "ca-file",
    "refresh-skew",
    "timeout",
)
GRANT_TYPES = ("client_credentials", "password")
CLIENT_AUTH = ("client_secret_basic", "client_secret_post")
INGEST_KEYS = ("oauth-issuer", "jwks", "audience", "required-scope", "leeway")


def keycloak_token_url(url: str, realm: str) -> str:
    """Keycloak's token endpoint (Keycloak 17+; older servers need ``/auth`` in ``url``)."""
    return f"{url.rstrip('/')}/realms/{quote(realm, safe='')}/protocol/openid-connect/token"


def _http_url(section: Section, key: str) -> str | None:
    if not section.has(key):
        return None
    url = section.string(key, "")
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError:
        ok = False
    if ok and (parts.username or parts.password):
        section.error(key, f"{key} must not hold user:password@")  # never echo it
        return None
    if not ok:
        section.error(key, f"{key} must be http://HOST[:PORT]/PATH or https://..., not {show(url)}")
        return None
    return url


def read_secret(section: Section, key: str) -> Secret | None:
    if not section.has(key):
        return None
    value = section.data[key]
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        section.error(key, f"{key} must be a non-empty string (or env:NAME, file:PATH)")
        return None
    text, base = value.strip(), section.checker.base_dir
    if text.startswith("env:") and not _ENV_NAME.fullmatch(text[4:]):
        section.error(key, f'{key}: env:NAME needs a variable name, not "{text}"')
        return None
    if text.startswith("file:") and (not text[5:] or not _is_file(base / text[5:])):
        section.error(key, f'{key}: secret file "{base / text[5:]}" does not exist')
        return None
    return Secret(text, base)


def _flag(section: Section, key: str) -> bool:
    """A boolean, also written as in LDAP ("true"/"false")."""
    value = section.data.get(key, False)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        section.error(key, f"{key} must be true or false, not {show(value)}")
        return False
    return value


def _seconds(section: Section, key: str, default: float) -> float:
    """Seconds as a number or an ISO-8601 duration (PT30S)."""
    if not section.has(key):
        return default
    value = section.data[key]
    try:
        if isinstance(value, str):
            seconds = parse_duration(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise ValueError
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        allowed = "seconds >= 0 or a duration like PT30S"
        section.error(key, f"{key} must be {allowed}, not {show(value)}")
        return default
    return seconds


def _choice(section: Section, key: str, choices: tuple[str, ...]) -> str:
    value = section.string(key, choices[0])
    if value not in choices:
        section.error(key, f"{key} {show(value)} is not one of {known(choices)}")
        return choices[0]
    return value


def _token_url(section: Section) -> tuple[str, str | None, str | None]:
    token_url, url = _http_url(section, "token-url"), _http_url(section, "url")
    realm = section.string("realm", "") if section.has("realm") else None
    if section.has("token-url") and (section.has("url") or section.has("realm")):
        section.error("token-url", "give either token-url or url and realm, not both")
    elif section.has("url") and realm is None:
        section.error("url", "url (dcmURI) needs realm (dcmKeycloakRealm)")
    elif not section.has("token-url") and not section.has("url"):
        section.error(None, "needs url and realm (Keycloak), or token-url (any OAuth 2.0 server)")
    if token_url is None and url is not None and realm:
        token_url = keycloak_token_url(url, realm)
    return token_url or "", url, realm


def read_keycloak_client(checker: Checker, name: str, data: Any) -> KeycloakClient:
    section = checker.section(data, ("keycloak-clients", name), f'keycloak client "{name}"')
    section.allow(KEYCLOAK_KEYS)
    token_url, url, realm = _token_url(section)
    grant = _choice(section, "grant-type", GRANT_TYPES)
    secret, password = read_secret(section, "client-secret"), read_secret(section, "user-password")
    uid = section.string("uid", "") or None
    if grant == "client_credentials" and not section.has("client-secret"):
        section.error(None, "grant-type client_credentials needs client-secret")
    if grant == "password" and (uid is None or not section.has("user-password")):
        section.error(None, "grant-type password needs uid and user-password")
    ca_file = None
    if section.has("ca-file"):
        ca_file = checker.base_dir / section.string("ca-file", "")
        if not _is_file(ca_file):
            section.error("ca-file", f'ca-file "{ca_file}" does not exist')
    optional = {k: section.string(k, "") or None for k in ("scope", "audience", "resource")}
    return KeycloakClient(
        name=name,
        token_url=token_url,
        client_id=section.string("client-id", name),
        grant_type=grant,
        client_secret=secret,
        uid=uid,
        user_password=password,
        url=url,
        realm=realm,
        client_auth=_choice(section, "client-auth", CLIENT_AUTH),
        allow_any_hostname=_flag(section, "allow-any-hostname"),
        disable_trust_manager=_flag(section, "disable-trust-manager"),
        ca_file=ca_file,
        refresh_skew=_seconds(section, "refresh-skew", 30.0),
        timeout=_seconds(section, "timeout", 30.0) or 30.0,
        **optional,
    )


def read_ingest(checker: Checker, data: Any) -> BearerAuth | None:
    """``[ingest]``: None when absent (the ingest endpoint is then open)."""
    section = checker.section(data, ("ingest",), "ingest")
    section.allow(INGEST_KEYS)
    if not section.data:
        return None
    return read_bearer(section)


def read_bearer(section: Section) -> BearerAuth:
    """JWT validation keys of a table (``[ingest]``, ``[rest.auth]`` of type bearer)."""
    checker = section.checker
    issuer = _http_url(section, "oauth-issuer")
    jwks: str | None = None
    if section.has("jwks"):
        text = section.string("jwks", "")
        if text.startswith(("http://", "https://")):
            jwks = _http_url(section, "jwks")
        else:
            path = checker.base_dir / Path(text)
            if not _is_file(path):
                section.error("jwks", f'jwks file "{path}" does not exist (or give a URL)')
            jwks = str(path)
    if not section.has("oauth-issuer") and not section.has("jwks"):
        section.error(None, "needs oauth-issuer or jwks (the token signing keys)")
    scopes = section.data.get("required-scope", [])
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        section.error("required-scope", 'required-scope must be "a b" or ["a", "b"]')
        scopes = []
    return BearerAuth(
        issuer=issuer,
        jwks=jwks,
        audience=section.string("audience", "") or None,
        required_scopes=tuple(scopes),
        leeway=_seconds(section, "leeway", 0.0),
    )
