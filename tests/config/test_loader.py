"""TOML loading and validation: values, defaults, paths, and the exact error lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config
from stowpair.config.model import Condition, WebAppProperties
from stowpair.config.secret import MASK

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
[webapps.W]
url = "http://127.0.0.1:18080/stowrs"

[exporters.E]
uri = "stow:W"
queue = "Q"

[queues.Q]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stowpair.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return [line.replace(str(path), "F") for line in raised.value.errors]


def test_shipped_config_loads() -> None:
    """When conf/stowpair.toml is loaded, it is valid and its var/ paths are the project's."""
    config = load_config(ROOT / "conf" / "stowpair.toml")
    assert config.base_dir == ROOT
    assert config.emulator.directory == ROOT / "var" / "stowrsd"
    assert config.archive.storage == ROOT / "var" / "archive"
    assert config.json_log == ROOT / "var" / "log" / "stowpair.json"
    assert config.webapps["stowrsd"].studies_url == "http://127.0.0.1:18080/stowrs/studies"
    exporter = config.exporters["StowExporter"]
    assert (exporter.uri, exporter.queue_name, exporter.ae_title) == (
        "stow:stowrsd",
        "Export1",
        "STOWPAIR",
    )
    queue = config.queues["Export1"]
    assert (queue.max_retries, queue.retry_delay, queue.retry_delay_multiplier) == (10, 30, 200)
    assert queue.max_retry_delay == 600
    assert [(r.entity, r.exporter_ids, r.conditions) for r in config.rules] == [
        ("Study", ("StowExporter",), ())
    ]
    assert config.demo_on_empty is True
    assert (config.rest.host, config.rest.port) == ("127.0.0.1", 8080)
    assert (config.emulator.listener.port, config.emulator.path) == (18080, "/stowrs")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    """When the file is empty, every default applies and paths resolve next to it."""
    config = load_config(_write(tmp_path, ""))
    assert config.device.ae_titles == ("STOWPAIR",)
    assert config.archive.database == tmp_path / "var" / "stowpair.sqlite"
    assert config.exporters == {} and config.rules == ()


def test_base_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    """When base_dir is set, relative paths resolve against it, from the file's folder."""
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "x.toml"
    path.write_text('base_dir = ".."\n[archive]\nstorage = "data"\n', encoding="utf-8")
    assert load_config(path).archive.storage == tmp_path / "data"


def test_json_log_dash_disables(tmp_path: Path) -> None:
    """When logging.json_file is "-", the JSON log is off."""
    assert load_config(_write(tmp_path, '[logging]\njson_file = "-"\n')).json_log is None


def test_properties_parsed(tmp_path: Path) -> None:
    """When every property is given, each is parsed to its typed value."""
    (tmp_path / "ca.pem").write_text("x")
    text = BASE.replace(
        "\n\n[exporters",
        """
[webapps.W.properties]
chunked = "TRUE"
concurrency = 4
transfer-syntax = "JPEGLosslessSV1, 1.2.840.10008.1.2.1,*"
bearer-token = "env:TOKEN"
basic-auth = "user:pw"
allow-any-hostname = true
disable-trust-manager = "false"
connect-timeout = "PT5S"
response-timeout = 0
ca-file = "ca.pem"
max-instances-per-request = "10"
max-request-bytes = 1000

[exporters""",
    )
    props = load_config(_write(tmp_path, text)).webapps["W"].properties
    secret_free = WebAppProperties(
        chunked=True,
        concurrency=4,
        transfer_syntax=("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1", "*"),
        bearer_token=props.bearer_token,
        basic_auth=props.basic_auth,
        allow_any_hostname=True,
        connect_timeout=5.0,
        response_timeout=None,  # written 0: no timeout (absent: the 300 s default)
        ca_file=tmp_path / "ca.pem",
        max_instances_per_request=10,
        max_request_bytes=1000,
    )
    assert props == secret_free
    assert props.basic_auth is not None and props.basic_auth.reveal() == "user:pw"
    assert str(props.basic_auth) == MASK
    assert props.bearer_token is not None and str(props.bearer_token) == "env:TOKEN"


def test_host_port_tls_url(tmp_path: Path) -> None:
    """When host/port/tls/service_path are given, the URL is built as dcm4che does."""
    text = BASE.replace(
        'url = "http://127.0.0.1:18080/stowrs"',
        'host = "pacs"\nport = 8443\ntls = true\nservice_path = "dcm4chee-arc/aets/A/rs"',
    )
    app = load_config(_write(tmp_path, text)).webapps["W"]
    assert app.studies_url == "https://pacs:8443/dcm4chee-arc/aets/A/rs/studies"


def test_rule_conditions(tmp_path: Path) -> None:
    """When a rule has conditions, they parse into attribute, values and negation."""
    text = BASE + (
        '[[rules]]\nname = "R"\nentity = "Series"\nexporters = ["E"]\ndelay = "PT1M"\n'
        'conditions = ["Modality=CT|MR", "SendingApplicationEntityTitle!=X", "00080060=OT"]\n'
    )
    rule = load_config(_write(tmp_path, text)).rules[0]
    assert rule.conditions == (
        Condition("Modality", ("CT", "MR")),
        Condition("SendingApplicationEntityTitle", ("X",), negate=True),
        Condition("00080060", ("OT",)),
    )
    assert (rule.entity, rule.delay) == ("Series", 60.0)


# Each case: (id, TOML text, exact error lines with the file path written as F).
ERROR_CASES = [
    (
        "unknown-top-key",
        'colour = "red"\n',
        [
            'F:1: top level: unknown key "colour" (known: base_dir, demo_on_empty, device, rest, '
            "emulator, archive, database, logging, webapps, exporters, queues, rules, "
            "keycloak-clients, "
            "ingest, dimse, remote_aes)"
        ],
    ),
    (
        "unknown-property",
        BASE.replace(
            "\n\n[exporters", '\n\n[webapps.W.properties]\nconcurency = "2"\n\n[exporters'
        ),
        [
            'F:5: webapp "W": unknown property "concurency" (known: chunked, concurrency, '
            "transfer-syntax, bearer-token, basic-auth, allow-any-hostname, disable-trust-manager, "
            "connect-timeout, response-timeout, ca-file, tls-cert, tls-key, "
            "max-instances-per-request, max-request-bytes)"
        ],
    ),
    (
        "inline-properties",
        BASE.replace('stowrs"\n', 'stowrs"\nproperties = { chunked = "yes", concurrency = 0 }\n'),
        [
            'F:3: webapp "W": property "chunked" must be true or false, not "yes"',
            'F:3: webapp "W": property "concurrency" must be a whole number >= 1, not "0"',
        ],
    ),
    (
        "bad-ts",
        BASE.replace('stowrs"\n', 'stowrs"\nproperties.transfer-syntax = "JPEGLosless"\n'),
        [
            'F:3: webapp "W": property "transfer-syntax": "JPEGLosless" is not a transfer syntax '
            "keyword (e.g. ExplicitVRLittleEndian, JPEGLosslessSV1, JPEG2000Lossless); "
            "or * for as stored"
        ],
    ),
    (
        "basic-auth-no-colon",
        BASE.replace('stowrs"\n', 'stowrs"\nproperties = { basic-auth = "admin" }\n'),
        ['F:3: webapp "W": property "basic-auth" must be user:password (or env:NAME, file:PATH)'],
    ),
    (
        "url-with-studies",
        BASE.replace("/stowrs", "/stowrs/studies"),
        ['F:2: webapp "W": url is the service URL without /studies (it is added per request)'],
    ),
    (
        "url-credentials",
        BASE.replace("http://", "http://u:pw@"),
        ['F:2: webapp "W": url must not hold user:password@; use the basic-auth property'],
    ),
    (
        "url-scheme",
        BASE.replace("http://", "ftp://"),
        [
            'F:2: webapp "W": url must be http://HOST:PORT/PATH or https://..., '
            'not "ftp://127.0.0.1:18080/stowrs"'
        ],
    ),
    (
        "missing-webapp-and-queue",
        BASE.replace('"stow:W"', '"stow:X"').replace('"Q"', '"P"'),
        [
            'F:5: exporter "E": uri "stow:X" names web app "X", which is not defined (defined: W)',
            'F:6: exporter "E": queue "P" is not defined (defined: Q)',
        ],
    ),
    (
        "bad-scheme",
        BASE.replace('"stow:W"', '"wado:W"'),
        [
            'F:5: exporter "E": uri "wado:W" is not stow:<webapp>, stowrs:<webapp> or '
            "dicom:<remote AE title>"
        ],
    ),
    (
        "dicom-unknown-remote-ae",
        BASE.replace('"stow:W"', '"dicom:W"'),
        [
            'F:5: exporter "E": uri "dicom:W" names remote AE "W", which is not defined in '
            "[remote_aes.W] (defined: none)"
        ],
    ),
    (
        "exporter-missing-keys",
        BASE.replace('uri = "stow:W"\nqueue = "Q"\n', ""),
        ['F:4: exporter "E": uri is required', 'F:4: exporter "E": queue is required'],
    ),
    (
        "exporter-ae",
        BASE.replace('queue = "Q"', 'queue = "Q"\nae_title = "OTHER"'),
        ['F:7: exporter "E": ae_title "OTHER" is not one of the device\'s ae_titles (STOWPAIR)'],
    ),
    (
        "bad-schedule",
        BASE.replace('queue = "Q"', 'queue = "Q"\nschedules = ["hour=25"]'),
        ["F:7: exporter \"E\": schedules: schedule 'hour=25': hour value 25 is out of range 0-23"],
    ),
    (
        "queue-values",
        BASE + 'max_tasks_parallel = 0\nretry_delay = "30s"\n'
        'retry_on_warning = "yes"\nretry_delay_multiplier = 50\nmax_retry_delay = "none"\n',
        [
            'F:9: queue "Q": max_tasks_parallel must be a whole number >= 1, not 0',
            'F:12: queue "Q": retry_delay_multiplier must be a whole number >= 100, not 50',
            'F:10: queue "Q": retry_delay must be an ISO-8601 duration '
            '(e.g. PT30S, PT10M, PT1H30M, P1D), not "30s"',
            'F:11: queue "Q": retry_on_warning must be true or false, not "yes"',
        ],
    ),
    (
        "rule-problems",
        BASE + '[[rules]]\nname = "R"\nentity = "Patient"\nexporters = ["Z"]\n'
        'conditions = ["Modaliti=CT", "Modality"]\n',
        [
            'F:11: rule "R": entity "Patient" is not one of Study, Series, Instance',
            'F:13: rule "R": condition "Modaliti=CT": "Modaliti" is not a DICOM keyword, '
            "an 8-digit tag, or one of SendingApplicationEntityTitle, "
            "ReceivingApplicationEntityTitle, SendingHostname, ReceivingHostname",
            'F:13: rule "R": condition "Modality" is not Attribute=value[|value...] or '
            "Attribute!=value",
            'F:12: rule "R": exporter "Z" is not defined (defined: E)',
        ],
    ),
    (
        "second-rule",
        BASE + '[[rules]]\nname = "A"\nexporters = ["E"]\n'
        '[[rules]]\nname = "B"\nexporters = ["E"]\nbogus = 1\n',
        [
            'F:9: rule "A": entity is required (Study, Series or Instance)',
            'F:12: rule "B": entity is required (Study, Series or Instance)',
            'F:15: rule "B": unknown key "bogus" '
            "(known: name, entity, exporters, conditions, delay, schedules)",
        ],
    ),
    (
        "listener-and-emulator",
        '[rest]\nport = 70000\n[emulator]\npath = "stowrs"\nlayout = "flat"\n',
        [
            'F:5: emulator: layout "flat" is not one of uid, unpack, discard',
            'F:4: emulator: path must start with /, e.g. /stowrs, not "stowrs"',
            "F:2: rest: port must be a whole number 0-65535, not 70000",
        ],
    ),
    (
        "device",
        '[device]\nae_titles = ["WAY_TOO_LONG_AE_TITLE"]\ntask_polling_interval = 5\n',
        [
            'F:2: device: AE title "WAY_TOO_LONG_AE_TITLE" must be 1-16 characters, no "\\"',
            "F:3: device: task_polling_interval must be an ISO-8601 duration (e.g. PT30S, PT10M, "
            "PT1H30M, P1D), not 5",
        ],
    ),
    (
        "not-toml",
        "[webapps\n",
        ["F:1: not valid TOML: Expected ']' at the end of a table declaration (column 9)"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])  # fmt: skip
def test_error_lines(tmp_path: Path, text: str, expected: list[str]) -> None:
    """When the configuration is wrong, every problem is one exact line with file and line."""
    assert sorted(_errors(tmp_path, text)) == sorted(expected)


def test_missing_file(tmp_path: Path) -> None:
    """When the file does not exist, the one error names it."""
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "nope.toml")
    assert raised.value.errors == [
        f"{tmp_path / 'nope.toml'}: cannot read the configuration: No such file or directory"
    ]


def test_secret_never_in_errors(tmp_path: Path) -> None:
    """When a config with a literal secret has errors, the secret is not in any message."""
    text = BASE.replace('stowrsd"\n', "").replace(
        'stowrs"\n', 'stowrs"\nproperties = { bearer-token = "s3cr3t", chunked = "maybe" }\n'
    )
    assert not any("s3cr3t" in line for line in _errors(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "limit"), [("", None), ("max_request_bytes = 2000000\n", 2000000)]
)
def test_ingest_size_limit(tmp_path: Path, text: str, limit: int | None) -> None:
    """When archive.max_request_bytes is set, it is the ingest's request size limit;
    without it there is none."""
    assert load_config(_write(tmp_path, "[archive]\n" + text)).archive.max_request_bytes == limit


@pytest.mark.parametrize("value", ["0", '"2G"', "-5", "true"])
def test_ingest_size_limit_must_be_a_positive_count(tmp_path: Path, value: str) -> None:
    """When archive.max_request_bytes is not a whole number >= 1, one line names it."""
    [line] = _errors(tmp_path, f"[archive]\nmax_request_bytes = {value}\n")
    assert "max_request_bytes" in line and "whole number >= 1" in line
