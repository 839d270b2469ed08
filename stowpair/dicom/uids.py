"""DICOM UID validation (PS3.5 §9.1).

A UID is at most 64 characters of digits and dots; components are non-empty and a
multi-digit component has no leading zero. UIDs are checked before any is used to
derive a file name, so a UID can never carry ``/``, ``..`` or other path syntax.
"""

from __future__ import annotations

import re

MAX_UID_LENGTH = 64
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


class InvalidUID(ValueError):
    """A value that is not a valid DICOM UID; the message says which and why."""


def is_valid_uid(value: str) -> bool:
    """True when ``value`` is a syntactically valid UID (PS3.5 §9.1)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_UID_LENGTH
        and _UID.fullmatch(value) is not None
    )


def _why_invalid(value: str) -> str:
    if value == "":
        return "it is empty"
    if len(value) > MAX_UID_LENGTH:
        return f"it has {len(value)} characters (at most {MAX_UID_LENGTH})"
    bad = sorted({c for c in value if c not in "0123456789."})
    if bad:
        return "it contains " + ", ".join(repr(c) for c in bad[:5]) + " (only digits and dots)"
    if any(part == "" for part in value.split(".")):
        return "it has an empty component"
    return "a component has a leading zero"


def validate_uid(value: object, what: str) -> str:
    """Return ``value`` if it is a valid UID, else raise :class:`InvalidUID`.

    ``what`` names the attribute for the message, e.g. ``"SOP Instance UID"``.
    """
    if not isinstance(value, str):
        raise InvalidUID(f"{what} is missing or not text")
    if not is_valid_uid(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidUID(f"{what} {shown!r} is not a valid UID: {_why_invalid(value)}")
    return value
