"""An LDIF reader (RFC 2849, content records) for dcm4chee configuration exports.

Handles folded lines (a continuation starts with one space), ``attr:: base64``,
comments (``#`` lines; a continuation after a comment continues the comment, as RFC
2849 says), ``version: 1``, ``changetype: add`` and multi-valued attributes. Attribute
names are case-insensitive and kept lower-cased; options (``cn;lang-en``) are dropped.
Other change types (modify, delete, moddn) are reported and skipped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from stowpair.config.errors import ConfigError


class LdifError(ConfigError):
    """The LDIF text is malformed; the message names file and line."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


@dataclass
class LdifRecord:
    """One entry: its DN, attributes (lower-cased names → values) and where it started."""

    dn: str
    where: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def values(self, name: str) -> list[str]:
        return self.attributes.get(name.lower(), [])

    def first(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None

    @property
    def object_classes(self) -> list[str]:
        return self.values("objectClass")


def normalize_dn(dn: str) -> str:
    """Case-insensitive, whitespace-normalised DN: ``cn=a, dc=B`` equals ``cn=A,dc=b``."""
    rdns: list[str] = []
    current: list[str] = []
    escaped = False
    for char in dn:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ",":
            rdns.append("".join(current))
            current = []
        else:
            current.append(char)
    rdns.append("".join(current))
    normalized = []
    for rdn in rdns:
        name, _, value = rdn.partition("=")
        normalized.append(f"{name.strip().lower()}={' '.join(value.split()).lower()}")
    return ",".join(normalized)


def parent_dn(dn: str) -> str:
    """The normalised DN of the entry above ``dn``."""
    return normalize_dn(dn).partition(",")[2]


def rdn_value(dn: str, attribute: str) -> str | None:
    """The value of the first ``attribute=...`` component of ``dn``, as written."""
    for rdn in dn.split(","):
        name, _, value = rdn.partition("=")
        if name.strip().lower() == attribute.lower():
            return value.strip()
    return None


def _logical_lines(text: str, source: str) -> list[tuple[int, str]]:
    """Unfold continuation lines; blank lines become ``""`` separators; comments dropped."""
    lines: list[tuple[int, str]] = []
    in_comment = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith(" ") and raw.strip():
            if in_comment:
                continue
            if not lines or lines[-1][1] == "":
                raise LdifError(
                    f"{source}:{number}: a continuation line (leading space) "
                    "must follow an attribute line"
                )
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
            continue
        in_comment = raw.startswith("#")
        if in_comment:
            continue
        lines.append((number, "" if not raw.strip() else raw))
    return lines


def _attribute(line: str, where: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not name.strip() or " " in name.strip():
        raise LdifError(f"{where}: expected 'attribute: value', got {line[:60]!r}")
    name = name.strip().split(";", 1)[0].lower()
    if value.startswith(":"):
        try:
            return name, base64.b64decode(value[1:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise LdifError(f"{where}: {name}:: value is not base64 of UTF-8 text") from None
    if value.startswith("<"):
        raise LdifError(f"{where}: {name}:< (value from a URL) is not supported; inline it")
    return name, value.strip()


def _record(block: list[tuple[int, str]], source: str, skipped: list[str]) -> LdifRecord | None:
    number, first = block[0]
    name, value = _attribute(first, f"{source}:{number}")
    if name != "dn":
        raise LdifError(f"{source}:{number}: an entry must start with 'dn:', not {name!r}")
    record = LdifRecord(dn=value, where=f"{source}:{number}")
    for number, line in block[1:]:
        name, value = _attribute(line, f"{source}:{number}")
        if name == "changetype":
            if value.lower() != "add":
                skipped.append(
                    f"{record.where}: dn {record.dn}: changetype {value} is not "
                    "imported (only add); entry skipped"
                )
                return None
            continue
        record.attributes.setdefault(name, []).append(value)
    return record


def parse_ldif(text: str, source: str) -> tuple[list[LdifRecord], list[str]]:
    """Records in ``text`` and warnings for skipped ones; LdifError when malformed."""
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, line in _logical_lines(text, source):
        if line:
            blocks[-1].append((number, line))
        elif blocks[-1]:
            blocks.append([])
    records: list[LdifRecord] = []
    warnings: list[str] = []
    for block in blocks:
        if block and block[0][1].lower().replace(" ", "").startswith("version:"):
            block = block[1:]
        if block:
            record = _record(block, source, warnings)
            if record is not None:
                records.append(record)
    return records, warnings
