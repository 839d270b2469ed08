"""UIDs: validation (PS3.5 §9.1) and minting (PS3.5 §B.2)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.dicom.uids import (
    InvalidUID,
    derived_uid,
    is_valid_uid,
    new_uid,
    uid_from_value,
    validate_uid,
)

#: PS3.5 §9.1 examples and limits.
VALID = [
    pytest.param("1.2.840.10008.5.1.4.1.1.2", id="ct-image-storage"),
    pytest.param("1.2.840.10008.1.2.1", id="explicit-vr-le"),
    pytest.param("0", id="single-zero"),
    pytest.param("2.25.0", id="zero-component"),
    pytest.param("1.2.0.3", id="inner-zero"),
    pytest.param("1.2.840.10008.100.1.2", id="multi-digit"),
    pytest.param("1." + "2" * 62, id="64-characters"),
    pytest.param("2.25." + "9" * 39, id="uuid-derived"),
]
INVALID = [
    pytest.param("", "empty", id="empty"),
    pytest.param("1." + "2" * 63, "65 characters", id="too-long"),
    pytest.param("1..2", "empty component", id="empty-component"),
    pytest.param(".1.2", "empty component", id="leading-dot"),
    pytest.param("1.2.", "empty component", id="trailing-dot"),
    pytest.param("1.02", "leading zero", id="leading-zero"),
    pytest.param("00.1", "leading zero", id="double-zero"),
    pytest.param("../../etc/passwd", "'/'", id="path-traversal"),
    pytest.param("1.2.3 ", "' '", id="trailing-space"),
    pytest.param(" 1.2.3", "' '", id="leading-space"),
    pytest.param("1.2.3\n", "'\\n'", id="trailing-newline"),
    pytest.param("1.2.3\r\n", "'\\r'", id="trailing-crlf"),
    pytest.param("1.2\t.3", "'\\t'", id="tab"),
    pytest.param("1.2.3\x00", "'\\x00'", id="nul-in-text"),
    pytest.param("1.2.3\x7f", "'\\x7f'", id="delete"),
    pytest.param("1.2.3\x1b", "'\\x1b'", id="escape"),
    pytest.param("1.2.\u0663", "'\u0663'", id="arabic-indic-digit"),
    pytest.param("1.2.\uff13", "'\uff13'", id="fullwidth-digit"),
    pytest.param("1.2.+3", "'+'", id="sign"),
    pytest.param("1.2e3", "'e'", id="exponent"),
    pytest.param("1,2,3", "','", id="commas"),
    pytest.param("1.2.3\\1.2.4", "'\\\\'", id="two-values"),
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
    assert "\n" not in str(info.value)


def test_not_text() -> None:
    """When the value is not text (missing attribute), InvalidUID says it is missing."""
    with pytest.raises(InvalidUID, match="missing"):
        validate_uid(None, "SOP Class UID")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"1.2.3\x00", "1.2.3", id="nul-pad"),
        pytest.param(b"1.2.34", "1.2.34", id="even-no-pad"),
        pytest.param("1.2.3\x00", "1.2.3", id="nul-pad-text"),
        pytest.param(b"1." + b"2" * 62 + b"\x00", "1." + "2" * 62, id="64-plus-pad"),
    ],
)
def test_element_value_with_one_nul_pad(raw: bytes | str, expected: str) -> None:
    """When a UI element value ends with one NUL (the pad PS3.5 §9.1 allows), it is the
    UID without it."""
    assert uid_from_value(raw, "SOP Instance UID") == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"1.2.3\x00\x00", id="two-nuls"),
        pytest.param(b"1.2.3 ", id="space-pad"),
        pytest.param(b"1.2.3\n", id="newline"),
        pytest.param(b"1.2.3\x00 ", id="nul-then-space"),
        pytest.param(b"\x001.2.3", id="leading-nul"),
        pytest.param(b"1.2.3\x00\n", id="nul-then-newline"),
        pytest.param(b"1.2\x00.3", id="inner-nul"),
        pytest.param(b"\x00", id="only-pad"),
        pytest.param(b"1.2.3\xff", id="non-ascii"),
    ],
)
def test_element_value_other_padding_refused(raw: bytes) -> None:
    """When a UI element value carries anything but one trailing NUL, it is refused."""
    with pytest.raises(InvalidUID, match="SOP Instance UID"):
        uid_from_value(raw, "SOP Instance UID")


# -- properties ----------------------------------------------------------------------------

_COMPONENT = re.compile(r"0|[1-9][0-9]*")


def _reference(value: str) -> bool:
    """PS3.5 §9.1 read literally, independently of the implementation."""
    parts = value.split(".")
    return (
        0 < len(value) <= 64
        and all(c in "0123456789." for c in value)
        and all(_COMPONENT.fullmatch(p) for p in parts)
    )


components = st.one_of(st.just("0"), st.integers(1, 10**20).map(str))
uids = st.lists(components, min_size=1, max_size=12).map(".".join).filter(lambda u: len(u) <= 64)
near_uids = st.one_of(
    uids,
    st.text(alphabet="0123456789.", max_size=70),
    st.builds(lambda u, c, i: u[:i] + c + u[i:], uids, st.characters(), st.integers(0, 64)),
    st.text(max_size=70),
)


@settings(max_examples=500, derandomize=True, database=None)
@given(near_uids)
def test_validation_matches_the_standard(value: str) -> None:
    """When any text is checked, it is valid exactly when PS3.5 §9.1 says so."""
    assert is_valid_uid(value) == _reference(value)
    if not _reference(value):
        with pytest.raises(InvalidUID):
            validate_uid(value, "UID")


@settings(max_examples=300, derandomize=True, database=None)
@given(uids, st.sampled_from(["", "\x00"]))
def test_padding_round_trip(uid: str, pad: str) -> None:
    """When a valid UID is encoded with or without its NUL pad, it reads back unchanged."""
    assert uid_from_value((uid + pad).encode("ascii"), "UID") == uid


@settings(max_examples=300, derandomize=True, database=None)
@given(uids, st.characters(categories=("Cc", "Zs", "Zl", "Zp")))
def test_whitespace_or_control_character_anywhere_is_refused(uid: str, bad: str) -> None:
    """When a whitespace or control character is added after a UID (other than the one
    NUL pad), the value is refused."""
    value = uid + bad + ("\x00" if bad == "\x00" else "")
    with pytest.raises(InvalidUID):
        uid_from_value(value, "UID")


# -- minting -------------------------------------------------------------------------------


def test_new_uids_are_valid_and_fresh() -> None:
    """When UIDs are minted, each is a valid 2.25 UID and none repeats."""
    minted = [new_uid() for _ in range(1000)]
    assert len(set(minted)) == 1000
    assert all(is_valid_uid(u) and u.startswith("2.25.") for u in minted)


def test_derived_uids_keep_parts_apart() -> None:
    """When UIDs are derived, the same parts give the same UID and a different split of
    the same characters gives another."""
    assert derived_uid("s", 1, 12) == derived_uid("s", 1, 12)
    assert derived_uid("s", 1, 12) != derived_uid("s", 11, 2)
    assert derived_uid("s", "1.12") != derived_uid("s", "1", "12")
    assert is_valid_uid(derived_uid("x" * 1000))
