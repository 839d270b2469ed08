"""[keycloak-clients.ID] and [ingest]: what loads, and one exact line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text('base_dir = "."\n' + text)
    return load_config(path)


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [line.split(": ", 1)[1] for line in caught.value.errors]


def test_keycloak_form(tmp_path: Path) -> None:
    """When url and realm are given, the token URL is Keycloak's and the ID the client ID."""
    config = load(
        tmp_path,
        """
[keycloak-clients.curl]
url = "https://kc:8843/"
realm = "dcm4che"
client-secret = "env:KC_SECRET"
refresh-skew = "PT10S"
""",
    )
    client = config.keycloak_clients["curl"]  # type: ignore[attr-defined]
    assert client.token_url == "https://kc:8843/realms/dcm4che/protocol/openid-connect/token"
    assert (client.client_id, client.grant_type, client.refresh_skew) == (
        "curl",
        "client_credentials",
        10.0,
    )
    assert str(client.client_secret) == "env:KC_SECRET"


def test_token_url_form_with_password_grant(tmp_path: Path) -> None:
    """When token-url is given, any RFC 6749 server is used, here with the password grant."""
    config = load(
        tmp_path,
        """
[keycloak-clients.entra]
token-url = "https://login.example/tenant/oauth2/v2.0/token"
client-id = "8c0f-guid"
grant-type = "password"
uid = "exporter"
user-password = "env:PW"
scope = "api://pacs/.default"
client-auth = "client_secret_post"
""",
    )
    client = config.keycloak_clients["entra"]  # type: ignore[attr-defined]
    assert (client.client_id, client.uid, client.scope, client.client_secret) == (
        "8c0f-guid",
        "exporter",
        "api://pacs/.default",
        None,
    )


ERRORS = [
    ("url-without-realm", 'url = "https://kc"\nclient-secret = "x"',
     ['keycloak client "k": url (dcmURI) needs realm (dcmKeycloakRealm)']),
    ("both-forms", 'url = "https://k"\nrealm = "r"\ntoken-url = "https://k/t"\nclient-secret = "x"',
     ['keycloak client "k": give either token-url or url and realm, not both']),
    ("no-endpoint", 'client-secret = "x"',
     ['keycloak client "k": needs url and realm (Keycloak), or token-url (any OAuth 2.0 server)']),
    ("no-secret", 'token-url = "https://kc/t"',
     ['keycloak client "k": grant-type client_credentials needs client-secret']),
    ("password-without-uid", 'token-url = "https://kc/t"\ngrant-type = "password"',
     ['keycloak client "k": grant-type password needs uid and user-password']),
    ("bad-grant", 'token-url = "https://kc/t"\nclient-secret = "x"\ngrant-type = "implicit"',
     ['keycloak client "k": grant-type "implicit" is not one of client_credentials, password']),
    ("userinfo-url", 'token-url = "https://u:p@kc/t"\nclient-secret = "x"',
     ['keycloak client "k": token-url must not hold user:password@']),
    ("missing-secret-file", 'token-url = "https://kc/t"\nclient-secret = "file:nope"',
     ['keycloak client "k": client-secret: secret file "{d}/nope" does not exist']),
    ("bad-flag", 'token-url = "https://kc/t"\nclient-secret = "x"\nallow-any-hostname = "yes"',
     ['keycloak client "k": allow-any-hostname must be true or false, not "yes"']),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_keycloak_errors(tmp_path: Path, body: str, expected: list[str]) -> None:
    """When a keycloak client is wrong, one line says what and how to fix it."""
    found = errors(tmp_path, "[keycloak-clients.k]\n" + body + "\n")
    assert found == [e.format(d=tmp_path) for e in expected]


def test_secret_not_in_errors(tmp_path: Path) -> None:
    """When a keycloak client with a literal secret is wrong, the secret is in no message."""
    found = errors(tmp_path, '[keycloak-clients.k]\nclient-secret = "Very-Secret-1"\nurl = "x"\n')
    assert found and not any("Very-Secret-1" in line for line in found)


def test_webapp_reference(tmp_path: Path) -> None:
    """When a web app names an undefined keycloak client, the error names the fix."""
    found = errors(tmp_path, '[webapps.a]\nurl = "http://h:1/rs"\nkeycloak-client = "kc"\n')
    assert found == [
        'webapp "a": keycloak-client "kc" is not defined (defined: none); add [keycloak-clients.kc]'
    ]


def test_ingest(tmp_path: Path) -> None:
    """When [ingest] names an issuer, JWKS URL, audience and scopes, they are kept."""
    config = load(
        tmp_path,
        """
[ingest]
oauth-issuer = "http://idp/realms/r"
jwks = "http://idp/realms/r/certs"
audience = "stowpair"
required-scope = ["stow", "write"]
leeway = 5
""",
    )
    auth = config.ingest_auth  # type: ignore[attr-defined]
    assert (auth.issuer, auth.jwks, auth.audience, auth.required_scopes, auth.leeway) == (
        "http://idp/realms/r",
        "http://idp/realms/r/certs",
        "stowpair",
        ("stow", "write"),
        5.0,
    )


def test_ingest_needs_keys(tmp_path: Path) -> None:
    """When [ingest] has neither issuer nor jwks, the error says what is needed."""
    assert errors(tmp_path, '[ingest]\naudience = "x"\n') == [
        "ingest: needs oauth-issuer or jwks (the token signing keys)"
    ]
