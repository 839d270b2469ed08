"""dcm4chee LDIF → stowpair TOML (``stowpair config import-ldif``).

Object classes read: dcmExporter, dcmWebApp, dicomNetworkConnection /
dcmNetworkConnection, dicomDevice / dcmDevice, dicomNetworkAE, dcmQueue, dcmExportRule,
dcmKeycloakClient (and its successor dcmKeycloakServer) → ``[keycloak-clients.ID]``, with
a web app's ``dcmKeycloakClientID`` → ``keycloak-client``.
A web app's URL comes from its first installed ``dicomNetworkConnectionReference``
(https when the connection has a ``dicomTLSCipherSuite``, as dcm4che's
``WebApplication.getServiceURL``); ``dcmTCPConnectTimeout``/``dcmResponseTimeout`` (ms)
become the ``connect-timeout``/``response-timeout`` properties (seconds). A ``dicom:AET``
exporter's destination becomes ``[remote_aes.AET]`` from the ``dicomNetworkAE`` with that
``dicomAETitle`` and its first installed DICOM (not HTTP) connection: host, port, and TLS
when the connection has a cipher suite. Anything that cannot be imported is reported as
a warning, one line each, and skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stowpair.config.ldif import (
    LdifError,
    LdifRecord,
    normalize_dn,
    parent_dn,
    parse_ldif,
    rdn_value,
)
from stowpair.config.ldif_keycloak import keycloak_id, keycloak_table, placeholder_keycloak
from stowpair.config.ldif_queues import default_queue, queue_table, rule_table
from stowpair.config.model import SECRET_PROPERTIES, WEBAPP_PROPERTIES
from stowpair.config.toml_writer import Table, render

PLACEHOLDER_URL = "http://127.0.0.1:18080/stowrs"
_KINDS = (  # checked in this order: a record may carry several object classes
    ("exporter", ("dcmexporter",)),
    ("webapp", ("dcmwebapp",)),
    ("queue", ("dcmqueue",)),
    ("rule", ("dcmexportrule",)),
    ("keycloak", ("dcmkeycloakclient", "dcmkeycloakserver")),
    ("connection", ("dicomnetworkconnection", "dcmnetworkconnection")),
    ("ae", ("dicomnetworkae",)),
    ("device", ("dicomdevice", "dcmdevice")),
)


def _kind(record: LdifRecord) -> str | None:
    classes = {c.lower() for c in record.object_classes}
    return next((kind for kind, names in _KINDS if classes & set(names)), None)


def _installed(record: LdifRecord) -> bool:
    return (record.first("dicomInstalled") or "TRUE").upper() != "FALSE"


@dataclass(frozen=True)
class _Connection:
    host: str | None
    port: str | None
    tls: bool
    connect_ms: str | None
    response_ms: str | None
    installed: bool
    protocol: str = "DICOM"


class _Importer:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.by_kind: dict[str, list[LdifRecord]] = {kind: [] for kind, _ in _KINDS}
        self.connections: dict[str, _Connection] = {}
        self.devices: dict[str, LdifRecord] = {}

    def add(self, records: list[LdifRecord]) -> None:
        for record in records:
            kind = _kind(record)
            if kind is None:
                classes = ", ".join(record.object_classes) or "none"
                self.warnings.append(
                    f"{record.where}: dn {record.dn}: object class {classes} "
                    "is not imported; skipped"
                )
                continue
            self.by_kind[kind].append(record)
            if kind == "device":
                self.devices[normalize_dn(record.dn)] = record
            if kind == "connection":
                self.connections[normalize_dn(record.dn)] = _Connection(
                    host=record.first("dicomHostname"),
                    port=record.first("dicomPort"),
                    tls=bool(record.values("dicomTLSCipherSuite")),
                    connect_ms=record.first("dcmTCPConnectTimeout"),
                    response_ms=record.first("dcmResponseTimeout"),
                    installed=_installed(record),
                    protocol=(record.first("dcmProtocol") or "DICOM").upper(),
                )

    def warn(self, record: LdifRecord, label: str, message: str) -> None:
        self.warnings.append(f"{record.where}: {label}: {message}")

    def _connection(
        self, record: LdifRecord, label: str, dicom: bool = False
    ) -> _Connection | None:
        refs = record.values("dicomNetworkConnectionReference")
        found = [self.connections.get(normalize_dn(ref)) for ref in refs]
        if dicom:  # a remote AE: its DICOM connections, not the device's HTTP ones
            found = [c for c in found if c is None or c.protocol != "HTTP"]
        usable = [c for c in found if c is not None and c.installed] or [
            c for c in found if c is not None
        ]
        if not refs:
            self.warn(record, label, "no dicomNetworkConnectionReference; placeholder URL used")
        elif not usable:
            self.warn(
                record, label, f"connection {refs[0]} is not in the LDIF; placeholder URL used"
            )
        elif not usable[0].installed:
            self.warn(record, label, "no installed connection; the first one is used")
        return usable[0] if usable else None

    def _timeouts(self, conn: _Connection, record: LdifRecord, label: str) -> dict[str, str]:
        props: dict[str, str] = {}
        for name, millis in (
            ("connect-timeout", conn.connect_ms),
            ("response-timeout", conn.response_ms),
        ):
            if millis is None:
                continue
            if not millis.isdigit():
                self.warn(record, label, f"{name} {millis!r} is not milliseconds; skipped")
            elif int(millis):  # 0 means no timeout, as an absent value
                props[name] = f"{int(millis) / 1000:g}"
        return props

    def _properties(self, record: LdifRecord, label: str, props: dict[str, str]) -> None:
        for text in record.values("dcmProperty"):
            name, sep, value = text.partition("=")
            name = name.strip()
            if not sep or name not in WEBAPP_PROPERTIES:
                self.warn(record, label, f"dcmProperty {text!r} is not used for STOW-RS; skipped")
                continue
            props[name] = value.strip()
            if name in SECRET_PROPERTIES and not value.startswith(("env:", "file:")):
                self.warn(
                    record,
                    label,
                    f"{name} is written in clear in the output; consider "
                    f'{name} = "env:NAME" (or "file:PATH") there',
                )

    def webapp(self, record: LdifRecord, name: str) -> list[Table]:
        label = f'webapp "{name}"'
        table = Table(("webapps", name), comments=[f"{record.where}: {record.dn}"])
        path = record.first("dcmWebServicePath") or "/"
        path = path if path.startswith("/") else "/" + path
        conn = self._connection(record, label)
        props: dict[str, str] = {}
        if conn is None or not conn.host or not (conn.port or "").isdigit():
            if conn is not None:
                self.warn(
                    record,
                    label,
                    "connection without dicomHostname/dicomPort; placeholder URL used",
                )
            table.comments.append("placeholder URL: point it to your destination")
            url = PLACEHOLDER_URL
        else:
            host = f"[{conn.host}]" if ":" in conn.host else conn.host
            url = f"{'https' if conn.tls else 'http'}://{host}:{conn.port}{path.rstrip('/')}"
            props.update(self._timeouts(conn, record, label))
        table.add("url", url)
        table.add("service_classes", record.values("dcmWebServiceClass") or ["STOW_RS"])
        if record.first("dicomDescription"):
            table.add("description", record.first("dicomDescription") or "")
        device = self.devices.get(parent_dn(record.dn))
        if not _installed(record) or (device is not None and not _installed(device)):
            table.add("installed", False)  # dcm4che: the web app and its device
        if record.first("dcmKeycloakClientID"):
            table.add("keycloak-client", record.first("dcmKeycloakClientID") or "")
        self._properties(record, label, props)
        tables = [table]
        if props:
            tables.append(
                Table(("webapps", name, "properties"), items=[(k, v, "") for k, v in props.items()])
            )
        return tables

    def exporter(self, record: LdifRecord) -> Table | None:
        exporter_id = record.first("dcmExporterID") or rdn_value(record.dn, "dcmExporterID") or ""
        label = f'exporter "{exporter_id}"'
        uri, queue = record.first("dcmURI"), record.first("dcmQueueName")
        if not exporter_id or not uri or not queue:
            self.warn(record, label, "needs dcmExporterID, dcmURI and dcmQueueName; skipped")
            return None
        if uri.partition(":")[0] not in ("stow", "stowrs", "dicom"):
            self.warn(
                record,
                label,
                f"dcmURI {uri} is not a STOW-RS (stow:<webapp>) or DICOM (dicom:<AE title>) "
                "exporter; skipped",
            )
            return None
        table = Table(("exporters", exporter_id), comments=[f"{record.where}: {record.dn}"])
        table.add("uri", uri)
        table.add("queue", queue)
        if record.first("dicomAETitle"):
            table.add("ae_title", record.first("dicomAETitle") or "")
        else:
            self.warn(record, label, "no dicomAETitle; the device's first AE title will be used")
        if record.first("dicomDescription"):
            table.add("description", record.first("dicomDescription") or "")
        if record.values("dcmSchedule"):
            table.add("schedules", record.values("dcmSchedule"))
        props: dict[str, str | bool | int | float] = {}
        for text in record.values("dcmProperty"):
            name, _, value = text.partition("=")
            props[name.strip()] = value.strip()
        if props:
            table.add("properties", props)
        if record.first("dcmExportPriority") is not None:
            self.warn(
                record,
                label,
                f"dcmExportPriority {record.first('dcmExportPriority')!r} is not imported:"
                " dcm4chee ignores it since 5.24 (it was a JMS priority); tasks run in"
                " scheduled-time order",
            )
        return table


def _device_table(importer: _Importer, exporters: list[Table]) -> Table | None:
    holders = importer.by_kind["exporter"] + importer.by_kind["rule"]
    names = [n for n in (rdn_value(r.dn, "dicomDeviceName") for r in holders) if n]
    if not names:
        return None
    device = names[0]
    if len(set(names)) > 1:
        importer.warnings.append(
            f"exporters and rules belong to several devices "
            f"({', '.join(sorted(set(names)))}); device {device} is used"
        )
    titles = [
        title
        for r in importer.by_kind["ae"]
        if rdn_value(r.dn, "dicomDeviceName") == device and (title := r.first("dicomAETitle"))
    ]
    titles += [str(v) for t in exporters for k, v, _ in t.items if k == "ae_title"]
    table = Table(("device",), comments=["The archive device holding the exporters."])
    table.add("name", device)
    if titles:
        table.add("ae_titles", list(dict.fromkeys(titles)))
    return table


def _destinations(exporters: list[Table], schemes: tuple[str, ...]) -> list[str]:
    uris = [str(v) for t in exporters for k, v, _ in t.items if k == "uri"]
    return [u.partition(":")[2] for u in uris if u.partition(":")[0] in schemes]


def _remote_ae_tables(importer: _Importer, exporters: list[Table]) -> list[Table]:
    """``[remote_aes.AET]`` for every ``dicom:AET`` exporter destination."""
    tables = []
    for title in dict.fromkeys(_destinations(exporters, ("dicom",))):
        label = f'remote AE "{title}"'
        records = [r for r in importer.by_kind["ae"] if r.first("dicomAETitle") == title]
        record = records[0] if records else None
        conn = importer._connection(record, label, dicom=True) if record else None
        table = Table(("remote_aes", title))
        if record is not None:
            table.comments.append(f"{record.where}: {record.dn}")
        if conn is None or not conn.host or not (conn.port or "").isdigit():
            importer.warnings.append(
                f'remote AE "{title}" is used by a dicom: exporter but its host and port are '
                "not in the LDIF; a placeholder [remote_aes."
                f'{title}] with host "127.0.0.1", port 11112 was written: point it to your '
                "destination"
            )
            table.comments.append("placeholder: point host and port to your destination")
            table.add("host", "127.0.0.1")
            table.add("port", 11112)
        else:
            table.add("host", conn.host)
            table.add("port", int(conn.port or 0))
            if conn.tls:
                table.add("tls", True)
                table.comments.append("TLS: add ca_file (and tls_cert/tls_key) as needed")
            if conn.connect_ms and conn.connect_ms.isdigit() and int(conn.connect_ms):
                table.add("connect_timeout", f"PT{int(conn.connect_ms) / 1000:g}S")
        if record is not None and record.first("dicomDescription"):
            table.add("description", record.first("dicomDescription") or "")
        device = importer.devices.get(parent_dn(record.dn)) if record else None
        if record is not None and (
            not _installed(record) or (device is not None and not _installed(device))
        ):
            table.add("installed", False)
        tables.append(table)
    return tables


def _webapp_tables(importer: _Importer, exporters: list[Table]) -> list[Table]:
    wanted = _destinations(exporters, ("stow", "stowrs"))
    tables: list[Table] = []
    defined: set[str] = set()
    for record in importer.by_kind["webapp"]:
        name = record.first("dcmWebAppName") or rdn_value(record.dn, "dcmWebAppName") or ""
        if name in defined:
            importer.warn(record, f'webapp "{name}"', "defined twice; the first one is kept")
        elif "STOW_RS" in record.values("dcmWebServiceClass") or name in wanted:
            tables += importer.webapp(record, name)
            defined.add(name)
        else:
            importer.warn(
                record,
                f'webapp "{name}"',
                "no STOW_RS service class and no exporter uses it; skipped",
            )
    for name in dict.fromkeys(wanted):
        if name not in defined:
            importer.warnings.append(
                f'web app "{name}" is used by an exporter but not defined in the LDIF; '
                f"a placeholder [webapps.{name}] with url {PLACEHOLDER_URL} was written: "
                "point it to your destination"
            )
            comments = [
                f"placeholder: web app {name} is not in the imported LDIF;",
                "point url to your destination (this is the built-in emulator).",
            ]
            placeholder = Table(("webapps", name), comments=comments)
            placeholder.add("url", PLACEHOLDER_URL)
            placeholder.add("service_classes", ["STOW_RS"])
            tables.append(placeholder)
    return tables


def _keycloak_tables(importer: _Importer, webapps: list[Table]) -> list[Table]:
    """The keycloak clients of the LDIF, and a placeholder for each one a web app names
    that the LDIF does not define."""
    tables: dict[str, Table] = {}
    for record in importer.by_kind["keycloak"]:
        table = keycloak_table(record, importer.warnings)
        if table is not None and keycloak_id(record) not in tables:
            tables[keycloak_id(record)] = table
    wanted = [str(v) for t in webapps for k, v, _ in t.items if k == "keycloak-client"]
    for name in dict.fromkeys(wanted):
        if name not in tables:
            tables[name] = placeholder_keycloak(name)
            importer.warnings.append(
                f'keycloak client "{name}" is used by a web app but not defined in the LDIF; '
                f"a placeholder [keycloak-clients.{name}] was written: set its url, realm "
                "and client-secret"
            )
    return list(tables.values())


def convert(records: list[LdifRecord], sources: Sequence[str]) -> tuple[str, list[str]]:
    """TOML text equivalent to ``records`` and the warnings to show the user."""
    importer = _Importer()
    importer.add(records)
    exporters = [t for t in map(importer.exporter, importer.by_kind["exporter"]) if t]
    head = Table(
        comments=[
            f"Imported by `stowpair config import-ldif` from {', '.join(sources)}.",
            "Review it, then validate it: stowpair config check FILE",
        ]
    )
    tables = [head]
    device = _device_table(importer, exporters)
    tables += [device] if device else []
    webapps = _webapp_tables(importer, exporters)
    tables += webapps
    tables += _keycloak_tables(importer, webapps)
    tables += _remote_ae_tables(importer, exporters)
    tables += exporters
    queues: dict[str, Table] = {}
    for record in importer.by_kind["queue"]:
        table = queue_table(record, importer.warnings)
        if table is not None:
            queues[table.header[1]] = table
    for name in dict.fromkeys(str(v) for t in exporters for k, v, _ in t.items if k == "queue"):
        if name not in queues:
            queues[name] = default_queue(name)
            importer.warnings.append(
                f'queue "{name}" is used by an exporter but not defined in the LDIF; '
                "written with dcm4chee's default-config values (10 retries, PT30S, 200%, PT10M)"
            )
    tables += queues.values()
    tables += [t for t in (rule_table(r, importer.warnings) for r in importer.by_kind["rule"]) if t]
    return render(tables), importer.warnings


def import_ldif(paths: Sequence[Path]) -> tuple[str, list[str]]:
    """Read LDIF files and convert them; raises LdifError for unreadable or malformed input."""
    records: list[LdifRecord] = []
    warnings: list[str] = []
    for path in paths:
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as e:
            raise LdifError(f"{path}: cannot read: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise LdifError(f"{path}: not UTF-8 text (byte {e.start})") from None
        found, skipped = parse_ldif(text, str(path))
        records += found
        warnings += skipped
    text, more = convert(records, [str(p) for p in paths])
    return text, warnings + more
