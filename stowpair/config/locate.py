"""Line numbers for configuration errors.

``tomllib`` keeps no positions, so this scans the text for table headers
(``[webapps.DCM4CHEE]``, ``[[rules]]``) and ``key =`` lines. It is a best effort used
only to enrich messages: when nothing is found the message simply has no line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TablePath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _header_keys(inner: str) -> tuple[str, ...] | None:
    """Split ``a."b c".d`` into its keys; None when it does not parse."""
    keys: list[str] = []
    rest = inner.strip()
    while rest:
        if rest[0] in "\"'":
            end = rest.find(rest[0], 1)
            if end < 0:
                return None
            keys.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            match = _BARE.match(rest)
            if match is None:
                return None
            keys.append(match.group(0))
            rest = rest[match.end() :].lstrip()
        if rest.startswith("."):
            rest = rest[1:].lstrip()
        elif rest:
            return None
    return tuple(keys)


@dataclass(frozen=True)
class _Header:
    line: int  # 1-based
    keys: tuple[str, ...]
    array: bool


class Locator:
    """Finds the line of a table header or of a key inside a table."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[_Header] = []
        for number, raw in enumerate(self.lines, start=1):
            line = raw.strip()
            if not line.startswith("["):
                continue
            array = line.startswith("[[")
            close = line.find("]]" if array else "]")
            keys = _header_keys(line[2 if array else 1 : close]) if close > 0 else None
            if keys is not None:
                self.headers.append(_Header(number, keys, array))

    def _resolve(self, path: TablePath) -> tuple[str, ...] | None:
        """Map ``("rules", 2, "x")`` onto concrete header keys; index kept separately."""
        return tuple(str(p) for p in path if not isinstance(p, int))

    def _table_range(self, path: TablePath) -> tuple[int, int] | None:
        """(first line after the header, line of the next header) of ``path``'s table."""
        if not path:  # the root table: from the top to the first header
            return 1, self.headers[0].line if self.headers else len(self.lines) + 1
        keys = self._resolve(path)
        index = next((p for p in path if isinstance(p, int)), None)
        seen = -1
        for position, header in enumerate(self.headers):
            if header.keys != keys:
                continue
            seen += 1
            if index is not None and header.array and seen != index:
                continue
            end = (
                self.headers[position + 1].line
                if position + 1 < len(self.headers)
                else len(self.lines) + 1
            )
            return header.line, end
        return None

    def line(self, path: TablePath, key: str | None = None) -> int | None:
        """The line of ``key`` in table ``path`` (or of the header), or None."""
        span = self._table_range(path)
        if key is not None:
            pattern = re.compile(
                rf"(^|[\s{{,.]){re.escape(key)}\s*=|[\"']{re.escape(key)}[\"']\s*="
            )
            ranges = [span] if span else []
            if len(path) > 1:  # `properties = { ... }` written inside the parent table
                parent = self._table_range(path[:-1])
                if parent:
                    ranges.append(parent)
            for start, end in ranges:
                for number in range(start, end):
                    if pattern.search(self.lines[number - 1].split("#", 1)[0]):
                        return number
        return span[0] if span else None
