"""A small TOML emitter for generated configurations (LDIF import).

It writes only what stowpair.toml uses: tables and arrays of tables with comments,
strings, booleans, integers, floats, lists of strings and inline tables of those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Scalar = str | bool | int | float
Value = Scalar | list[str] | dict[str, Scalar]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}  # fmt: skip


def toml_string(text: str) -> str:
    """A TOML basic string; control characters are escaped."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_string(v) for v in value) + "]"
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


@dataclass
class Table:
    """``[a.b]`` (or ``[[a]]`` when ``array``) with leading comments and key lines.

    ``items`` entries are (key, value, trailing comment or "").
    An empty ``header`` is the root table (no header line).
    """

    header: tuple[str, ...] = ()
    array: bool = False
    comments: list[str] = field(default_factory=list)
    items: list[tuple[str, Value, str]] = field(default_factory=list)

    def add(self, key: str, value: Value, comment: str = "") -> None:
        self.items.append((key, value, comment))

    def render(self) -> str:
        lines = [f"# {' '.join(c.split())}" if c.strip() else "#" for c in self.comments]
        if self.header:
            name = ".".join(toml_key(k) for k in self.header)
            lines.append(f"[[{name}]]" if self.array else f"[{name}]")
        for key, value, comment in self.items:
            line = f"{toml_key(key)} = {toml_value(value)}"
            lines.append(f"{line}  # {' '.join(comment.split())}" if comment else line)
        return "\n".join(lines) + "\n"


def render(tables: list[Table]) -> str:
    """The document: tables separated by blank lines."""
    return "\n".join(t.render() for t in tables if t.items or t.comments or t.header)
