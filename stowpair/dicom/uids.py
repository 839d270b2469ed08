"""DICOM UIDs: validation (PS3.5 §9.1) and minting (PS3.5 §B.2).

A UID is at most 64 characters; its components are non-empty runs of digits separated
by dots, and a component has no leading zero unless it is the single digit ``0``.
Nothing else is allowed: no whitespace, no control characters, no sign, no other
digits than ASCII ``0-9``. In a data element value (VR UI) the only padding is one
trailing NUL (PS3.5 §9.1, §6.2): :func:`uid_from_value` removes it before checking.

UIDs are checked before any is used to derive a file name, so a UID can never carry
``/``, ``..`` or other path syntax.
"""

from __future__ import annotations

import json
import re
import uuid

MAX_UID_LENGTH = 64
# [0-9], not \d: \d also matches other scripts' digits (e.g. "١").
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
#: The root of UUID-derived UIDs (PS3.5 §B.2): ``2.25.<the UUID as one integer>``.
UUID_ROOT = "2.25"
#: Name space of the UUIDs behind :func:`derived_uid` (a fixed, random UUID).
_NAMESPACE = uuid.UUID("5b0e7d02-6f6c-4f63-9a55-3c4b2f0d8e21")


class InvalidUID(ValueError):
    """A value that is not a valid DICOM UID; the message says which and why."""


def is_valid_uid(value: object) -> bool:
    """True when ``value`` is a syntactically valid UID (PS3.5 §9.1), without padding."""
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

    ``what`` names the attribute for the message, e.g. ``"SOP Instance UID"``. No
    padding is accepted: use :func:`uid_from_value` for a data element's value.
    """
    if not isinstance(value, str):
        raise InvalidUID(f"{what} is missing or not text")
    if not is_valid_uid(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidUID(f"{what} {shown!r} is not a valid UID: {_why_invalid(value)}")
    return value


def uid_from_value(raw: bytes | str, what: str) -> str:
    """The UID held by a UI data element value (its bytes as encoded), validated.

    One trailing NUL is the padding PS3.5 §9.1 allows and is removed; anything else
    (a second NUL, a space, a newline, a backslash of a second value) makes the value
    invalid, so ``1.2.3\\n`` is refused rather than read as ``1.2.3``.
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if text.endswith("\0"):
        text = text[:-1]
    return validate_uid(text, what)


def new_uid() -> str:
    """A fresh UID from a random UUID (PS3.5 §B.2)."""
    return f"{UUID_ROOT}.{uuid.uuid4().int}"


def derived_uid(*parts: object) -> str:
    """The UID named by ``parts``: the same parts always give the same UID, different
    parts (in value or in how they are split) never collide in practice.

    ``2.25.`` and a name-based UUID (RFC 9562 version 5) of the parts encoded as a
    JSON list, so ``("1", "12")`` and ``("11", "2")`` are different names. At most
    44 characters.
    """
    name = json.dumps([str(p) for p in parts], ensure_ascii=False)
    return f"{UUID_ROOT}.{uuid.uuid5(_NAMESPACE, name).int}"
