"""dcm4che's Keycloak client LDIF entries → ``[keycloak-clients.ID]`` tables.

``dcmKeycloakClient`` (``dcmKeycloakClientID`` names it and is the OAuth 2.0 client ID),
or its successor ``dcmKeycloakServer`` (named by ``dcmKeycloakServerID``, the client ID
in ``dcmKeycloakClientID``). Attributes: ``dcmURI``, ``dcmKeycloakRealm``,
``dcmKeycloakGrantType``, ``dcmKeycloakClientSecret``, ``uid``, ``userPassword``,
``dcmTLSAllowAnyHostname``, ``dcmTLSDisableTrustManager``.
"""

from __future__ import annotations

from stowpair.config.ldif import LdifRecord, rdn_value
from stowpair.config.toml_writer import Table

PLACEHOLDER_KEYCLOAK_URL = "https://keycloak.example:8843"


def keycloak_id(record: LdifRecord) -> str:
    server = record.first("dcmKeycloakServerID") or rdn_value(record.dn, "dcmKeycloakServerID")
    return server or record.first("dcmKeycloakClientID") or ""


def _clear(table: Table, key: str, value: str, label: str, warnings: list[str]) -> None:
    table.add(key, value)
    if not value.startswith(("env:", "file:")):
        warnings.append(
            f"{label}: {key} is written in clear in the output; consider "
            f'{key} = "env:NAME" (or "file:PATH") there'
        )


def keycloak_table(record: LdifRecord, warnings: list[str]) -> Table | None:
    name, label = keycloak_id(record), f'{record.where}: keycloak client "{keycloak_id(record)}"'
    if not name:
        warnings.append(f"{record.where}: keycloak client without an ID; skipped")
        return None
    table = Table(("keycloak-clients", name), comments=[f"{record.where}: {record.dn}"])
    url, realm = record.first("dcmURI"), record.first("dcmKeycloakRealm")
    if not url or not realm:
        warnings.append(f"{label}: needs dcmURI and dcmKeycloakRealm; placeholders written")
        table.comments.append("placeholder url/realm: point them to your Keycloak server")
    table.add("url", url or PLACEHOLDER_KEYCLOAK_URL)
    table.add("realm", realm or "dcm4che")
    client_id = record.first("dcmKeycloakClientID")
    if client_id and client_id != name:
        table.add("client-id", client_id)
    grant = (record.first("dcmKeycloakGrantType") or "client_credentials").lower()
    table.add("grant-type", grant)
    secret = record.first("dcmKeycloakClientSecret")
    if secret:
        _clear(table, "client-secret", secret, label, warnings)
    elif grant == "client_credentials":
        table.add("client-secret", f"env:{_env_name(name)}", "set this variable")
        warnings.append(f"{label}: no dcmKeycloakClientSecret; env:{_env_name(name)} written")
    if record.first("uid"):
        table.add("uid", record.first("uid") or "")
    password = record.first("userPassword")
    if password:
        if password.startswith("{"):
            warnings.append(
                f"{label}: userPassword is hashed ({password.split('}')[0]}}}) and cannot be "
                "sent; set user-password to the clear password (env:NAME or file:PATH)"
            )
        _clear(table, "user-password", password, label, warnings)
    for attribute, key in (
        ("dcmTLSAllowAnyHostname", "allow-any-hostname"),
        ("dcmTLSDisableTrustManager", "disable-trust-manager"),
    ):
        if (record.first(attribute) or "").upper() == "TRUE":
            table.add(key, True)
    return table


def _env_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in name.upper())
    return f"KEYCLOAK_{cleaned}_SECRET"


def placeholder_keycloak(name: str) -> Table:
    comments = [
        f"placeholder: keycloak client {name} is not in the imported LDIF;",
        "set url, realm and the client secret's variable.",
    ]
    table = Table(("keycloak-clients", name), comments=comments)
    table.add("url", PLACEHOLDER_KEYCLOAK_URL)
    table.add("realm", "dcm4che")
    table.add("client-secret", f"env:{_env_name(name)}")
    return table
