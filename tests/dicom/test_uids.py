"""UID validation (PS3.5 §9.1)."""

from __future__ import annotations

import pytest

from stowpair.dicom.uids import InvalidUID, is_valid_uid, validate_uid

VALID = ["1.2.840.10008.5.1.4.1.1.2", "0", "2.25.0", "1." + "2" * 62]
INVALID = [
    pytest.param("", "empty", id="empty"),
    pytest.param("1." + "2" * 63, "65 characters", id="too-long"),
    pytest.param("1..2", "empty component", id="empty-component"),
    pytest.param(".1.2", "empty component", id="leading-dot"),
    pytest.param("1.2.", "empty component", id="trailing-dot"),
    pytest.param("1.02", "leading zero", id="leading-zero"),
    pytest.param("../../etc/passwd", "'/'", id="path-traversal"),
    pytest.param("1.2.3 ", "' '", id="trailing-space"),
    pytest.param("1.2.3\x00", "'\\x00'", id="nul"),
]


@pytest.mark.parametrize("uid", VALID)
def test_valid(uid: str) -> None:
    """When a UID follows PS3.5 §9.1, it is valid."""
    assert is_valid_uid(uid)
    assert validate_uid(uid, "SOP Instance UID") == uid


@pytest.mark.parametrize(("uid", "why"), INVALID)
def test_invalid(uid: str, why: str) -> None:
    """When a UID breaks a rule, InvalidUID names the attribute and the rule."""
    assert not is_valid_uid(uid)
    with pytest.raises(InvalidUID, match="Study Instance UID") as info:
        validate_uid(uid, "Study Instance UID")
    assert why in str(info.value)


def test_not_text() -> None:
    """When the value is not text (missing attribute), InvalidUID says it is missing."""
    with pytest.raises(InvalidUID, match="missing"):
        validate_uid(None, "SOP Class UID")
