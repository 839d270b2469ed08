"""The JSON-lines log: shape, readability, secrets."""

import io
import json
import re
from pathlib import Path

from twisted.logger import Logger, LogLevel, LogPublisher, eventsFromJSONLogFile

from stowpair.config.secret import Secret
from stowpair.logs import EVENTS, JSONLogService, json_line

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
