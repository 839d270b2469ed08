"""Structured logging: the JSON-lines observer and the catalogue of event names.

Every event we emit carries an ``event`` field (a name from :data:`EVENTS`, listed
with its fields in ``docs/logging.md``). The file holds one JSON object per line,
readable by ``jq`` and by ``twisted.logger.eventsFromJSONLogFile``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from twisted.application.service import Service
from twisted.logger import (
    FileLogObserver,
    LogEvent,
    LogLevel,
    LogPublisher,
    eventAsJSON,
    formatEvent,
    globalLogPublisher,
)
from twisted.python.failure import Failure
from twisted.python.reflect import safe_repr

from stowpair.config.secret import Secret

#: event name -> its fields (besides the standard ones); docs/logging.md mirrors this.
EVENTS: dict[str, tuple[str, ...]] = {
    "startup": ("tap", "summary"),
    "shutdown": ("tap",),
    "startup.failed": ("tap", "error"),
    "listening": ("role", "host", "port", "url"),
    "config.loaded": ("source", "webapps", "exporters", "queues", "rules"),
    "log.unwritable": ("original_event",),
}


def register_events(events: Mapping[str, tuple[str, ...]]) -> None:
    """Subsystems add their events here so docs and tests see one catalogue."""
    EVENTS.update(events)


_NOT_DATA = ("log_source", "log_logger", "log_observer", "log_trace")
#: eventAsJSON writes these so that eventsFromJSONLogFile restores them as objects.
_KEPT = ("log_level", "log_failure")


def _scrub(value: Any, safe: bool = False, depth: int = 0) -> Any:
    """Secrets masked; with ``safe``, anything JSON cannot hold becomes its escaped repr."""
    if isinstance(value, Secret):
        return str(value)
    if depth > 20:
        return safe_repr(value) if safe else value
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else safe_repr(k)): _scrub(v, safe, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, safe, depth + 1) for v in value]
    if not safe or value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return safe_repr(value)


def json_line(event: LogEvent) -> str:
    """One event as one JSON line, with ``event``, ``level``, ``time`` and ``text``.

    Never raises: an event whose values cannot be written as they are (a ``repr`` that
    fails, undecodable bytes, odd objects) is written with those values as escaped
    text; if even that fails, a ``log.unwritable`` line takes its place. An observer that
    raised would make Twisted skip it for the event and log "Temporarily disabling
    observer" instead.
    """
    try:
        return _json_line(event, safe=False)
    except Exception:
        pass
    try:
        return _json_line(event, safe=True)
    except Exception as e:
        return _unwritable(event, e)


def _json_line(event: LogEvent, safe: bool) -> str:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in _KEPT and (value in LogLevel.iterconstants() or isinstance(value, Failure)):
            out[key] = value
        elif key not in _NOT_DATA:
            out[key] = _scrub(value, safe)
    level = event.get("log_level")
    out.setdefault("event", event.get("log_namespace", "log"))
    out["level"] = getattr(level, "name", "info")
    out["time"] = _time(event)
    try:
        out["text"] = formatEvent(event) if not safe else _safe_text(event)
    except Exception:  # a broken format string must not lose the event
        out["text"] = str(event.get("log_format", ""))
    if safe:
        # The values are text now: the format string is kept only as its result.
        out["log_format"] = out["text"].replace("{", "{{").replace("}", "}}")
        out.pop("log_flattened", None)
    return eventAsJSON(out) + "\n"


def _safe_text(event: LogEvent) -> str:
    """The message with every field as escaped text (the event could not be formatted)."""
    fields = {k: safe_repr(v) if not isinstance(v, str) else v for k, v in event.items()}
    text = event.get("log_format")
    try:
        return str(text or "").format_map(fields)
    except Exception:
        return text if isinstance(text, str) else safe_repr(text)


def _time(event: LogEvent) -> str:
    when = event.get("log_time", 0)
    if not isinstance(when, int | float):
        when = 0
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


def _unwritable(event: LogEvent, error: Exception) -> str:
    namespace, name, when = event.get("log_namespace"), event.get("event"), event.get("log_time")
    text = f"A log event could not be written: {safe_repr(error)}"
    line = {
        "event": "log.unwritable",
        "level": "error",
        "time": _time(event),
        "text": text,
        "original_event": name if isinstance(name, str) else None,
        "log_namespace": namespace if isinstance(namespace, str) else __name__,
        "log_time": when if isinstance(when, int | float) else 0.0,
    }
    try:
        return eventAsJSON({**line, "log_level": LogLevel.error, "log_format": "{text}"}) + "\n"
    except Exception:
        return json.dumps(line) + "\n"


def json_file_observer(out: IO[Any]) -> FileLogObserver:
    return FileLogObserver(out, json_line)


class JSONLogFile:
    """The JSON-lines file and its observer on ``publisher``; ``open`` and ``close``."""

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

    def open(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._opener(self.path)
        self._observer = json_file_observer(self._file)
        self._publisher.addObserver(self._observer)

    def close(self) -> None:
        if self._observer is not None:
            self._publisher.removeObserver(self._observer)
            self._observer = None
        if self._file is not None:
            self._file.close()
            self._file = None


class JSONLogService(Service):
    """The JSON-lines file observer while the service runs (tests and tools; a twistd
    tap uses :class:`stowpair.process.ProcessService`, which keeps it to the end)."""

    def __init__(
        self,
        path: Path,
        publisher: LogPublisher = globalLogPublisher,
        opener: Callable[[Path], IO[Any]] | None = None,
    ) -> None:
        self.path = path
        self.file = JSONLogFile(path, publisher, opener)

    def startService(self) -> None:
        self.file.open()
        super().startService()

    def stopService(self) -> None:
        super().stopService()
        self.file.close()


def escape_console() -> None:
    """Make stdout and stderr escape what their encoding cannot hold (a file name with
    undecodable bytes, say) instead of raising in the console log observer."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
