"""Structured logging: the JSON-lines observer and the catalogue of event names.

Every event we emit carries an ``event`` field (a name from :data:`EVENTS`, listed
with its fields in ``docs/logging.md``). The file holds one JSON object per line,
readable by ``jq`` and by ``twisted.logger.eventsFromJSONLogFile``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from twisted.application.service import Service
from twisted.logger import (
    FileLogObserver,
    LogEvent,
    LogPublisher,
    eventAsJSON,
    formatEvent,
    globalLogPublisher,
)

from stowpair.config.secret import Secret

#: event name -> its fields (besides the standard ones); docs/logging.md mirrors this.
EVENTS: dict[str, tuple[str, ...]] = {
    "startup": ("tap", "summary"),
    "shutdown": ("tap",),
    "listening": ("role", "host", "port", "url"),
    "config.loaded": ("source", "webapps", "exporters", "queues", "rules"),
}


def register_events(events: Mapping[str, tuple[str, ...]]) -> None:
    """Subsystems add their events here so docs and tests see one catalogue."""
    EVENTS.update(events)


def _scrub(value: Any) -> Any:
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def json_line(event: LogEvent) -> str:
    """One event as one JSON line, with ``event``, ``level``, ``time`` and ``text``."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in ("log_source", "log_logger", "log_observer"):
            continue  # objects, not data
        out[key] = _scrub(value)
    level = event.get("log_level")
    out.setdefault("event", event.get("log_namespace", "log"))
    out["level"] = getattr(level, "name", "info")
    out["time"] = datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(
        timespec="milliseconds"
    )
    try:
        out["text"] = formatEvent(event)
    except Exception:  # a broken format string must not lose the event
        out["text"] = str(event.get("log_format", ""))
    return eventAsJSON(out) + "\n"


def json_file_observer(out: IO[Any]) -> FileLogObserver:
    return FileLogObserver(out, json_line)


class JSONLogService(Service):
    """Adds the JSON-lines file observer while the service runs."""

    def __init__(
        self,
        path: Path,
        publisher: LogPublisher = globalLogPublisher,
        opener: Callable[[Path], IO[Any]] | None = None,
    ) -> None:
        self.path = path
        self._publisher = publisher
        self._opener = opener or (lambda p: p.open("a", encoding="utf-8", buffering=1))
        self._file: IO[Any] | None = None
        self._observer: FileLogObserver | None = None

    def startService(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._opener(self.path)
        self._observer = json_file_observer(self._file)
        self._publisher.addObserver(self._observer)
        super().startService()

    def stopService(self) -> None:
        super().stopService()
        if self._observer is not None:
            self._publisher.removeObserver(self._observer)
            self._observer = None
        if self._file is not None:
            self._file.close()
            self._file = None
