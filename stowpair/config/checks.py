"""Typed reading of TOML tables that collects every problem instead of stopping at one.

A :class:`Section` wraps one table (``[webapps.DCM4CHEE]``); its getters return the
value, or the default after recording a one-line error naming file, line, entry, key and
what is allowed. The loader raises :class:`~stowpair.config.errors.ConfigError` with all
of them at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stowpair.config.durations import EXAMPLES, parse_duration
from stowpair.config.locate import Locator, TablePath
from stowpair.config.schedule import ScheduleError, ScheduleExpression


def show(value: Any) -> str:
    """A value as it would appear in TOML, for messages."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str | bool | int | float):
        return json.dumps(value)
    return type(value).__name__


def known(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


@dataclass
class Checker:
    """Collects error lines for one configuration file."""

    label: str
    locator: Locator | None = None
    base_dir: Path = Path(".")
    errors: list[str] = field(default_factory=list)

    def error(self, entry: str, message: str, path: TablePath = (), key: str | None = None) -> None:
        line = self.locator.line(path, key) if self.locator and (path or key) else None
        where = f"{self.label}:{line}" if line else self.label
        self.errors.append(f"{where}: {entry}: {message}")

    def section(self, data: Any, path: TablePath, entry: str) -> Section:
        if not isinstance(data, dict):
            self.error(entry, f"must be a table, not {show(data)}", path[:-1], str(path[-1]))
            data = {}
        return Section(self, data, path, entry)


@dataclass
class Section:
    """One TOML table being read; see the module docstring."""

    checker: Checker
    data: dict[str, Any]
    path: TablePath
    entry: str

    def error(self, key: str | None, message: str) -> None:
        self.checker.error(self.entry, message, self.path, key)

    def allow(self, names: Iterable[str]) -> None:
        """Report every key not in ``names``."""
        names = tuple(names)
        for key in self.data:
            if key not in names:
                self.error(key, f'unknown key "{key}" (known: {known(names)})')

    def has(self, key: str) -> bool:
        return key in self.data

    def _bad(self, key: str, what: str) -> None:
        self.error(key, f"{key} must be {what}, not {show(self.data[key])}")

    def string(self, key: str, default: str, required: bool | str = False) -> str:
        """``required`` may be a hint shown in the message, e.g. "(Study, Series...)"."""
        if key not in self.data:
            if required:
                hint = f" {required}" if isinstance(required, str) else ""
                self.error(None, f"{key} is required{hint}")
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            self._bad(key, "a non-empty string (no NUL characters)")
            return default
        return value.strip()

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self._bad(key, "true or false")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self._bad(key, f"a whole number {low}-{high}" if high else f"a whole number >= {low}")
            return default
        if high is not None and value > high:
            self._bad(key, f"a whole number {low}-{high}")
            return default
        return value

    def duration(self, key: str, default: float | None, none_ok: bool = False) -> float | None:
        """An ISO-8601 duration; ``"none"`` means no limit when ``none_ok``."""
        if key not in self.data:
            return default
        value = self.data[key]
        if none_ok and isinstance(value, str) and value.strip().lower() == "none":
            return None
        allowed = f"an ISO-8601 duration ({EXAMPLES}{', or none' if none_ok else ''})"
        if not isinstance(value, str):
            self._bad(key, allowed)
            return default
        try:
            return parse_duration(value)
        except ValueError:
            self._bad(key, allowed)
            return default

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self._bad(key, 'a list of strings, e.g. ["A", "B"]')
            return default
        return tuple(v.strip() for v in value)

    def schedules(self, key: str = "schedules") -> tuple[ScheduleExpression, ...]:
        parsed: list[ScheduleExpression] = []
        for text in self.strings(key):
            try:
                parsed.append(ScheduleExpression.parse(text))
            except ScheduleError as e:
                self.error(key, f"{key}: {e}")
        return tuple(parsed)

    def path_value(self, key: str, default: Path) -> Path:
        """A path; relative ones resolve against the configuration's base folder."""
        text = self.string(key, "")
        return self.checker.base_dir / (Path(text) if text else default)

    def table(self, key: str) -> Section | None:
        if key not in self.data:
            return None
        return self.checker.section(self.data[key], (*self.path, key), self.entry)
