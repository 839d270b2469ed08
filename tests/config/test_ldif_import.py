"""dcm4chee LDIF → TOML → load_config round trips, and what the importer reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.config.ldif_import import PLACEHOLDER_URL, import_ldif
from stowpair.config.loader import load_config
from stowpair.config.model import Config

DATA = Path(__file__).parent / "data"
SEED = DATA / "exporter-example.ldif"
WEBAPPS = DATA / "webapps-example.ldif"
ARC = "dicomDeviceName=dcm4chee-arc,cn=Devices,cn=DICOM Configuration,dc=dcm4che,dc=org"


def _round_trip(tmp_path: Path, *paths: Path) -> tuple[Config, list[str], str]:
    text, warnings = import_ldif(list(paths))
    out = tmp_path / "imported.toml"
    out.write_text(text, encoding="utf-8")
    return load_config(out), warnings, text


def _ldif(tmp_path: Path, text: str, name: str = "x.ldif") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_seed_imports_with_placeholder_webapp(tmp_path: Path) -> None:
    """When the seed is imported alone, its exporter loads and DCM4CHEE is a marked placeholder."""
    config, warnings, text = _round_trip(tmp_path, SEED)
    exporter = config.exporters["StowExporter"]
    assert (exporter.uri, exporter.queue_name, exporter.ae_title, exporter.description) == (
        "stow:DCM4CHEE",
        "Export1",
        "DCM4CHEE1",
        "Export objects using STOW-RS service",
    )
    assert exporter.schedules == ()  # the seed's dcmSchedule lines are comments
    assert config.device.name == "dcm4chee-arc" and config.device.ae_titles == ("DCM4CHEE1",)
    assert config.webapps["DCM4CHEE"].url == PLACEHOLDER_URL
    assert "# placeholder: web app DCM4CHEE is not in the imported LDIF;" in text
    assert any('web app "DCM4CHEE" is used by an exporter but not defined' in w for w in warnings)
    queue = config.queues["Export1"]  # not in the LDIF: dcm4chee default-config values
    assert (queue.max_retries, queue.retry_delay, queue.retry_delay_multiplier) == (10, 30, 200)
    assert (queue.max_retry_delay, queue.purge_completed_delay) == (600, 86400)


def test_seed_uncommented_schedules(tmp_path: Path) -> None:
    """When the seed's dcmSchedule lines are uncommented, they import as two schedules."""
    text = SEED.read_text().replace("#dcmSchedule:", "dcmSchedule:")
    config, _, _ = _round_trip(tmp_path, _ldif(tmp_path, text))
    schedules = config.exporters["StowExporter"].schedules
    assert [str(s) for s in schedules] == ["hour=18-6 dayOfWeek=*", "hour=* dayOfWeek=0,6"]


def test_webapps_example(tmp_path: Path) -> None:
    """When the web app example is imported, URLs, TLS, timeouts and properties carry over."""
    config, warnings, _ = _round_trip(tmp_path, WEBAPPS)
    assert config.webapps["stowrsd"].studies_url == "http://localhost:18080/stowrs/studies"
    dest = config.webapps["DCM4CHEE"]
    assert dest.url == "https://pacs.example.org:8443/dcm4chee-arc/aets/DCM4CHEE/rs"
    assert dest.service_classes == ("STOW_RS", "QIDO_RS")
    props = dest.properties
    assert (props.chunked, props.concurrency, props.allow_any_hostname) == (True, 5, True)
    assert props.transfer_syntax == ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1")
    assert (props.connect_timeout, props.response_timeout) == (5.0, 60.0)
    assert props.basic_auth is not None and props.basic_auth.reveal() == "admin:secret"
    assert any("basic-auth is written in clear" in w and "env:NAME" in w for w in warnings)


def test_seed_and_webapps_together(tmp_path: Path) -> None:
    """When both files are imported together, the exporter resolves to the real DCM4CHEE."""
    config, warnings, _ = _round_trip(tmp_path, SEED, WEBAPPS)
    assert config.webapps["DCM4CHEE"].url.startswith("https://pacs.example.org:8443/")
    assert not any("placeholder" in w for w in warnings)


FULL = f"""\
version: 1

dn: {ARC}
objectClass: dicomDevice
dicomDeviceName: dcm4chee-arc

dn: dicomAETitle=ARC1,{ARC}
objectClass: dicomNetworkAE
dicomAETitle: ARC1

dn: cn=dicom,{ARC}
objectClass: dicomNetworkConnection
cn: dicom
dicomHostname: 0:0:0:0:0:0:0:1
dicomPort: 8080

dn: dcmWebAppName=Local,{ARC}
objectClass: dcmWebApp
dcmWebAppName: Local
dcmWebServicePath: stow
dcmWebServiceClass: STOW_RS
dicomInstalled: FALSE
dicomNetworkConnectionReference: CN=DICOM , dicomDeviceName=DCM4CHEE-ARC,cn=Devices,
 cn=DICOM  Configuration,dc=dcm4che,dc=org
dcmProperty: bearer-token=env:TOKEN
dcmProperty: X-Custom=1
dcmKeycloakClientID: kc

dn: dcmWebAppName=Wado,{ARC}
objectClass: dcmWebApp
dcmWebAppName: Wado
dcmWebServiceClass: WADO_RS
dcmWebServicePath: /wado

dn: dcmExporterID=E1,{ARC}
objectClass: dcmExporter
dcmExporterID: E1
dcmURI: stowrs:Local
dcmQueueName: Q1
dicomAETitle: ARC1
dcmProperty: anything=goes

dn: dcmExporterID=Dicom,{ARC}
objectClass: dcmExporter
dcmExporterID: Dicom
dcmURI: dicom:STORESCP
dcmQueueName: Q1

dn: dcmQueueName=Q1,{ARC}
objectClass: dcmQueue
dcmQueueName: Q1
dcmMaxTasksParallel: 3
dcmRetryDelay: PT2M
dcmRetryOnWarning: TRUE
dcmSchedule: hour=20-6
dcmPurgeQueueMessageFailedDelay: P7D
dcmMaxRetries: many

dn: cn=CT to E1,dicomAETitle=ARC1,{ARC}
objectClass: dcmExportRule
cn: CT to E1
dcmEntity: Series
dcmExporterID: E1
dcmProperty: Modality=CT|MR
dcmProperty: SendingApplicationEntityTitle!=ARC1
dcmDuration: PT1M
dcmSchedule: hour=7-19 dayOfWeek=1-5
dcmExportReoccurredInstances: REPLACE

dn: cn=Devices,cn=DICOM Configuration,dc=dcm4che,dc=org
objectClass: dicomDevicesRoot
cn: Devices
"""


@pytest.fixture
def full(tmp_path: Path) -> tuple[Config, list[str], str]:
    return _round_trip(tmp_path, _ldif(tmp_path, FULL))


def test_full_webapp(full: tuple[Config, list[str], str]) -> None:
    """When a web app references a connection by a DN in other case and spacing, it resolves."""
    app = full[0].webapps["Local"]
    assert app.url == "http://[0:0:0:0:0:0:0:1]:8080/stow"
    assert app.installed is False
    assert app.properties.bearer_token is not None
    assert str(app.properties.bearer_token) == "env:TOKEN"


def test_full_skips_non_stow(full: tuple[Config, list[str], str]) -> None:
    """When web apps are not STOW-RS, they are skipped with a warning each."""
    config, warnings, _ = full
    assert set(config.exporters) == {"E1", "Dicom"} and set(config.webapps) == {"Local"}
    assert any('webapp "Wado": no STOW_RS service class' in w for w in warnings)
    assert any("dcmProperty 'X-Custom=1' is not used for STOW-RS; skipped" in w for w in warnings)
    assert any('keycloak client "kc" is used by a web app but not defined' in w for w in warnings)
    assert config.webapps["Local"].keycloak_client == "kc"
    assert str(config.keycloak_clients["kc"].client_secret) == "env:KEYCLOAK_KC_SECRET"


def test_full_unknown_class(full: tuple[Config, list[str], str]) -> None:
    """When an entry has only unknown object classes, one line reports it with its location."""
    lines = [w for w in full[1] if "object class" in w]
    assert len(lines) == 1
    assert lines[0].endswith(
        "dn cn=Devices,cn=DICOM Configuration,dc=dcm4che,dc=org: "
        "object class dicomDevicesRoot is not imported; skipped"
    )


def test_full_queue_uses_class_defaults(full: tuple[Config, list[str], str]) -> None:
    """When queue attributes are absent or bad, dcm4chee's class defaults are written."""
    config, warnings, text = full
    queue = config.queues["Q1"]
    assert (queue.max_tasks_parallel, queue.retry_delay, queue.retry_on_warning) == (3, 120, True)
    assert (queue.max_retries, queue.retry_delay_multiplier, queue.max_retry_delay) == (
        0,
        100,
        None,
    )
    assert (queue.purge_failed_delay, queue.purge_completed_delay) == (7 * 86400, None)
    assert [str(s) for s in queue.schedules] == ["hour=20-6"]
    assert "dcmMaxRetryDelay absent: dcm4chee default" in text
    assert any("dcmMaxRetries 'many' is not a valid int" in w for w in warnings)


def test_full_rule_and_device(full: tuple[Config, list[str], str]) -> None:
    """When a rule is imported, its entity, conditions, delay and schedules carry over."""
    config, warnings, _ = full
    rule = config.rules[0]
    assert (rule.name, rule.entity, rule.exporter_ids, rule.delay) == (
        "CT to E1", "Series", ("E1",), 60.0,
    )  # fmt: skip
    assert [(c.attribute, c.values, c.negate) for c in rule.conditions] == [
        ("Modality", ("CT", "MR"), False),
        ("SendingApplicationEntityTitle", ("ARC1",), True),
    ]
    assert [str(s) for s in rule.schedules] == ["hour=7-19 dayOfWeek=1-5"]
    assert config.device.ae_titles == ("ARC1",)
    assert config.exporters["E1"].properties == (("anything", "goes"),)
    assert any("dcmExportReoccurredInstances is not supported" in w for w in warnings)


def test_missing_connection_gives_placeholder(tmp_path: Path) -> None:
    """When a web app's connection is not in the LDIF, a marked placeholder URL is written."""
    text = (
        "dn: dcmWebAppName=W,dicomDeviceName=d\nobjectClass: dcmWebApp\ndcmWebAppName: W\n"
        "dcmWebServiceClass: STOW_RS\ndicomNetworkConnectionReference: cn=gone,dicomDeviceName=d\n"
    )
    config, warnings, _ = _round_trip(tmp_path, _ldif(tmp_path, text))
    assert config.webapps["W"].url == PLACEHOLDER_URL
    assert any("connection cn=gone,dicomDeviceName=d is not in the LDIF" in w for w in warnings)


KEYCLOAK = f"""\
dn: dcmKeycloakClientID=stow-client,{ARC}
objectClass: dcmKeycloakClient
dcmKeycloakClientID: stow-client
dcmURI: https://keycloak.hospital.org:8843
dcmKeycloakRealm: dcm4che
dcmKeycloakGrantType: client_credentials
dcmKeycloakClientSecret: kc-Very-Secret
dcmTLSAllowAnyHostname: TRUE

dn: dcmKeycloakClientID=user-client,{ARC}
objectClass: dcmKeycloakClient
dcmKeycloakClientID: user-client
dcmURI: https://keycloak.hospital.org:8843
dcmKeycloakRealm: dcm4che
dcmKeycloakGrantType: password
uid: exporter
userPassword: user-Very-Secret

dn: dcmWebAppName=Cloud,{ARC}
objectClass: dcmWebApp
dcmWebAppName: Cloud
dcmWebServiceClass: STOW_RS
dcmWebServicePath: /rs
dicomNetworkConnectionReference: cn=dicom,{ARC}
dcmKeycloakClientID: stow-client
dcmProperty: bearer-token=ignored-token

dn: cn=dicom,{ARC}
objectClass: dicomNetworkConnection
dicomHostname: cloud.example.org
dicomPort: 443
dicomTLSCipherSuite: TLS_AES_128_GCM_SHA256

dn: dcmExporterID=Cloud,{ARC}
objectClass: dcmExporter
dcmExporterID: Cloud
dcmURI: stow:Cloud
dcmQueueName: Export1
dicomAETitle: ARC1
"""


def test_keycloak_clients_round_trip_through_config_check(tmp_path: Path) -> None:
    """When Keycloak clients are imported, config check shows the effective auth, masked."""
    from stowpair.config.commands import summary_lines

    config, warnings, _ = _round_trip(tmp_path, _ldif(tmp_path, KEYCLOAK))
    client = config.keycloak_clients["stow-client"]
    assert client.token_url == (
        "https://keycloak.hospital.org:8843/realms/dcm4che/protocol/openid-connect/token"
    )
    assert (client.grant_type, client.allow_any_hostname) == ("client_credentials", True)
    assert client.client_secret is not None and client.client_secret.reveal() == "kc-Very-Secret"
    user = config.keycloak_clients["user-client"]
    assert (user.grant_type, user.uid) == ("password", "exporter")
    assert config.webapps["Cloud"].keycloak_client == "stow-client"
    assert any("client-secret is written in clear" in w for w in warnings)
    summary = "\n".join(summary_lines(config))
    assert (
        "auth: Bearer token from keycloak client stow-client: OAuth 2.0 client_credentials at "
        "https://keycloak.hospital.org:8843/realms/dcm4che/protocol/openid-connect/token "
        "(client-id stow-client, client-secret ********, client_secret_basic, "
        "allow-any-hostname); bearer-token ignored (keycloak-client takes precedence)"
    ) in summary
    for secret in ("kc-Very-Secret", "user-Very-Secret", "ignored-token"):
        assert secret not in summary


def test_dicom_exporter_without_its_ae_gets_placeholder(
    full: tuple[Config, list[str], str],
) -> None:
    """When a dicom: exporter's AE is not in the LDIF, a marked placeholder remote AE is
    written and reported."""
    config, warnings, text = full
    assert config.exporters["Dicom"].uri == "dicom:STORESCP"
    remote = config.remote_aes["STORESCP"]
    assert (remote.host, remote.port, remote.tls) == ("127.0.0.1", 11112, False)
    assert any('remote AE "STORESCP" is used by a dicom: exporter' in w for w in warnings)
    assert "placeholder: point host and port" in text


PACS = "dicomDeviceName=pacs,cn=Devices,cn=DICOM Configuration,dc=dcm4che,dc=org"
DICOM_EXPORT = f"""\
dn: {ARC}
objectClass: dicomDevice
dicomDeviceName: dcm4chee-arc

dn: dcmExporterID=ToPACS,{ARC}
objectClass: dcmExporter
dcmExporterID: ToPACS
dcmURI: dicom:PACS
dcmQueueName: Export2
dicomAETitle: ARC1

dn: {PACS}
objectClass: dicomDevice
dicomDeviceName: pacs

dn: cn=http,{PACS}
objectClass: dicomNetworkConnection
objectClass: dcmNetworkConnection
dicomHostname: web.example.org
dicomPort: 8080
dcmProtocol: HTTP

dn: cn=dicom-tls,{PACS}
objectClass: dicomNetworkConnection
dicomHostname: pacs.example.org
dicomPort: 2762
dicomTLSCipherSuite: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
dcmTCPConnectTimeout: 5000

dn: dicomAETitle=PACS,{PACS}
objectClass: dicomNetworkAE
dicomAETitle: PACS
dicomDescription: The hospital PACS
dicomNetworkConnectionReference: cn=http,{PACS}
dicomNetworkConnectionReference: cn=dicom-tls,{PACS}
"""


def test_dicom_exporter_maps_remote_ae_and_connection(tmp_path: Path) -> None:
    """When a dicom: exporter's AE and its DICOM connection are in the LDIF, the remote AE
    gets their host, port, TLS and connect timeout (HTTP connections are not used)."""
    config, warnings, _ = _round_trip(tmp_path, _ldif(tmp_path, DICOM_EXPORT))
    exporter = config.exporters["ToPACS"]
    assert (exporter.uri, exporter.queue_name, exporter.ae_title) == (
        "dicom:PACS",
        "Export2",
        "ARC1",
    )
    remote = config.remote_aes["PACS"]
    assert (remote.host, remote.port, remote.tls) == ("pacs.example.org", 2762, True)
    assert (remote.connect_timeout, remote.description) == (5.0, "The hospital PACS")
    assert not [w for w in warnings if "remote AE" in w]
