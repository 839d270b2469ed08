"""The JSON-lines log: shape, readability, secrets."""

import ast
import io
import json
import re
from pathlib import Path

import pytest
from twisted.logger import Logger, LogLevel, LogPublisher, eventsFromJSONLogFile

from stowpair.config.secret import Secret
from stowpair.logs import EVENTS, JSONLogFile, JSONLogService, json_line

ROOT = Path(__file__).resolve().parent.parent


def _emit(**fields: object) -> dict:
    publisher = LogPublisher()
    out = io.StringIO()
    events: list[str] = []
    publisher.addObserver(lambda e: events.append(json_line(e)))
    Logger(namespace="stowpair.test", observer=publisher).info("sent {count} to {webapp}", **fields)
    out.write("".join(events))
    return json.loads(events[0])


def test_line_has_standard_fields() -> None:
    """When an event is written, it carries event, level, time, namespace and its fields."""
    line = _emit(count=3, webapp="stowrsd", event="export.done")
    assert line["event"] == "export.done"
    assert line["level"] == "info"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", line["time"])
    assert line["log_namespace"] == "stowpair.test"
    assert (line["count"], line["webapp"]) == (3, "stowrsd")
    assert line["text"] == "sent 3 to stowrsd"


def test_secret_never_written() -> None:
    """When a Secret reaches an event field, only its mask is written."""
    secret = Secret("s3cr3t-value")
    publisher = LogPublisher()
    lines: list[str] = []
    publisher.addObserver(lambda e: lines.append(json_line(e)))
    Logger(namespace="t", observer=publisher).info(
        "auth {token}", token=secret, nested={"a": [secret]}, event="t"
    )
    assert "s3cr3t-value" not in lines[0]
    assert "********" in lines[0]


def test_file_reads_back_with_twisted(tmp_path: Path) -> None:
    """When the service writes events, eventsFromJSONLogFile reads them back."""
    publisher = LogPublisher()
    service = JSONLogService(tmp_path / "log" / "x.json", publisher=publisher)
    service.startService()
    log = Logger(namespace="stowpair.test", observer=publisher)
    log.info("one {n}", n=1, event="a")
    log.warn("two {n}", n=2, event="b")
    service.stopService()
    with (tmp_path / "log" / "x.json").open() as f:
        events = list(eventsFromJSONLogFile(f))
    assert [e["event"] for e in events] == ["a", "b"]
    assert events[1]["log_level"] is LogLevel.warn
    for raw in (tmp_path / "log" / "x.json").read_text().splitlines():
        json.loads(raw)  # one JSON object per line, as jq expects


def test_every_event_documented() -> None:
    """When an event name is registered, docs/logging.md documents it."""
    import importlib
    import pkgutil

    import stowpair

    for module in pkgutil.walk_packages(stowpair.__path__, "stowpair."):
        importlib.import_module(module.name)  # each registers its events

    doc = (ROOT / "docs" / "logging.md").read_text()
    missing = [name for name in EVENTS if f"`{name}`" not in doc]
    assert not missing, f"undocumented log events: {missing}"


def _load_all_modules() -> None:
    import importlib
    import pkgutil

    import stowpair

    for module in pkgutil.walk_packages(stowpair.__path__, "stowpair."):
        importlib.import_module(module.name)  # each registers its events


def _strings_in_code() -> tuple[set[str], set[str]]:
    """(every string constant in stowpair's code except dict keys — the catalogue's own
    entries are keys —, every string passed as ``event=``)."""
    used: set[str] = set()
    named: set[str] = set()
    for path in (ROOT / "stowpair").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in keys:
                    used.add(node.value)
            if isinstance(node, ast.keyword) and node.arg == "event":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    named.add(node.value.value)
    return used, named


def test_every_catalogued_event_is_emitted() -> None:
    """When an event name is in the catalogue, some code emits it (not only registers it)."""
    _load_all_modules()
    used, _ = _strings_in_code()
    never = sorted(name for name in EVENTS if name not in used)
    assert not never, f"catalogued but never emitted: {never}"


def test_every_emitted_event_is_catalogued() -> None:
    """When code logs with ``event="name"``, the name is in the catalogue."""
    _load_all_modules()
    _, named = _strings_in_code()
    unknown = sorted(named - set(EVENTS))
    assert not unknown, f"emitted but not catalogued: {unknown}"


class _NoRepr:
    def __repr__(self) -> str:
        raise ValueError("repr refused")

    def __str__(self) -> str:
        raise ValueError("str refused")


HOSTILE_FIELDS = {
    "broken-repr": {"x": _NoRepr()},
    "bytes": {"x": b"\xff\x99\x00GET"},
    "surrogates": {"x": "a\udcffb"},
    "nested": {"x": {"k": [_NoRepr(), b"\x80"], 1: object()}},
    "control": {"x": "line\nbreak\x1b[31m"},
    "huge-int": {"x": 10**400},
}


@pytest.mark.parametrize("fields", list(HOSTILE_FIELDS.values()), ids=list(HOSTILE_FIELDS))
@pytest.mark.parametrize("fmt", ["value {x}", "value {x!r}", "no field {missing}", "{x:.3f}"])
def test_hostile_event_is_written(fields: dict[str, object], fmt: str) -> None:
    """When an event holds values that cannot be formatted or encoded, the JSON line is
    still written (values escaped), parses, and reads back with its event name."""
    publisher = LogPublisher()
    lines: list[str] = []
    publisher.addObserver(lambda e: lines.append(json_line(e)))
    Logger(namespace="t", observer=publisher).info(fmt, event="t.hostile", **fields)
    assert len(lines) == 1 and lines[0].endswith("\n") and lines[0].count("\n") == 1
    assert json.loads(lines[0])["event"] == "t.hostile"
    (event,) = list(eventsFromJSONLogFile(io.StringIO(lines[0])))
    assert event["event"] == "t.hostile"


def test_json_observer_never_disabled(tmp_path: Path) -> None:
    """When hostile events pass through the JSON file observer, Twisted never disables
    it and every later event reaches the file."""
    publisher = LogPublisher()
    seen: list[dict] = []
    publisher.addObserver(seen.append)
    log_file = JSONLogFile(tmp_path / "x.json", publisher)
    log_file.open()
    log = Logger(namespace="t", observer=publisher)
    for name, fields in HOSTILE_FIELDS.items():
        log.info("{x} {x!r}", event=f"t.{name}", **fields)
    log.info("after", event="t.after")
    log_file.close()
    assert not [e for e in seen if "Temporarily disabling" in str(e.get("log_format"))]
    names = [json.loads(line)["event"] for line in (tmp_path / "x.json").read_text().splitlines()]
    assert names == [f"t.{n}" for n in HOSTILE_FIELDS] + ["t.after"]
