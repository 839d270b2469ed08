"""Transfer Syntax names, the transfer-syntax list, and dcm4chee's selection rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.dicom import transfer_syntax as ts
from stowpair.dicom.transfer_syntax import (
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE_8BIT,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
    Selection,
    UnknownTransferSyntax,
)

DEFLATED = ts.DEFLATED_EXPLICIT_VR_LE
MPEG4 = "1.2.840.10008.1.2.4.102"

# (id, stored, accepted, expected target, expected transcode): dcm4chee's rule, case by case.
SELECT_CASES = [
    ("empty-list-as-stored", JPEG_LOSSLESS_SV1, (), JPEG_LOSSLESS_SV1, False),
    ("star-as-stored", JPEG_LOSSLESS_SV1, ("*",), JPEG_LOSSLESS_SV1, False),
    ("star-among-others", RLE_LOSSLESS, (JPEG_2000, "*"), RLE_LOSSLESS, False),
    (
        "stored-listed",
        JPEG_LOSSLESS_SV1,
        (EXPLICIT_VR_LE, JPEG_LOSSLESS_SV1),
        JPEG_LOSSLESS_SV1,
        False,
    ),
    ("evrle-stored-listed", EXPLICIT_VR_LE, (EXPLICIT_VR_LE,), EXPLICIT_VR_LE, False),
    ("decompress-to-evrle", JPEG_LOSSLESS_SV1, (EXPLICIT_VR_LE,), EXPLICIT_VR_LE, True),
    (
        "evrle-preferred-over-ivrle",
        JPEG_2000,
        (IMPLICIT_VR_LE, EXPLICIT_VR_LE),
        EXPLICIT_VR_LE,
        True,
    ),
    ("decompress-to-ivrle", JPEG_2000, (JPEG_LS_LOSSLESS, IMPLICIT_VR_LE), IMPLICIT_VR_LE, True),
    ("evrle-to-ivrle", EXPLICIT_VR_LE, (IMPLICIT_VR_LE,), IMPLICIT_VR_LE, True),
    ("ivrle-to-evrle", IMPLICIT_VR_LE, (EXPLICIT_VR_LE,), EXPLICIT_VR_LE, True),
    ("big-endian-converted", EXPLICIT_VR_BE, (EXPLICIT_VR_LE,), EXPLICIT_VR_LE, True),
    ("deflated-converted", DEFLATED, (IMPLICIT_VR_LE,), IMPLICIT_VR_LE, True),
    ("big-endian-as-stored", EXPLICIT_VR_BE, (EXPLICIT_VR_BE,), EXPLICIT_VR_BE, False),
    ("video-to-evrle-per-rule", MPEG4, (EXPLICIT_VR_LE,), EXPLICIT_VR_LE, True),
    ("no-native-fails", JPEG_LOSSLESS_SV1, (JPEG_2000, JPEG_2000_LOSSLESS), None, False),
    ("never-compress-evrle", EXPLICIT_VR_LE, (JPEG_LS_LOSSLESS,), None, False),
    ("big-endian-only-not-native-target", JPEG_BASELINE_8BIT, (EXPLICIT_VR_BE,), None, False),
    ("deflated-only-not-native-target", JPEG_BASELINE_8BIT, (DEFLATED,), None, False),
]


@pytest.mark.parametrize(
    ("stored", "accepted", "target", "transcode"),
    [case[1:] for case in SELECT_CASES],
    ids=[case[0] for case in SELECT_CASES],
)
def test_select_follows_dcm4chee_rule(
    stored: str, accepted: tuple[str, ...], target: str | None, transcode: bool
) -> None:
    """When an instance is selected against a list, the target follows dcm4chee's rule."""
    got = ts.select(stored, accepted)
    assert (got.target, got.transcode) == (target, transcode)


def test_select_failure_reason_names_stored_and_list() -> None:
    """When nothing fits, the reason names the stored syntax, the list and no re-compression."""
    got = ts.select(JPEG_LOSSLESS_SV1, (JPEG_2000,))
    assert got == Selection(None, False, got.reason)
    assert "JPEG Lossless SV1 (1.2.840.10008.1.2.4.70)" in got.reason
    assert "JPEG 2000 (1.2.840.10008.1.2.4.91)" in got.reason
    assert "never re-compresses" in got.reason


def test_select_decompress_reason_names_target() -> None:
    """When the instance is decompressed, the reason says to which syntax."""
    got = ts.select(JPEG_LOSSLESS_SV1, (EXPLICIT_VR_LE,))
    assert "decompressed to Explicit VR Little Endian (1.2.840.10008.1.2.1)" in got.reason


RESOLVE_CASES = [
    ("ExplicitVRLittleEndian", EXPLICIT_VR_LE),
    ("ImplicitVRLittleEndian", IMPLICIT_VR_LE),
    ("DeflatedExplicitVRLittleEndian", DEFLATED),
    ("ExplicitVRBigEndian", EXPLICIT_VR_BE),
    ("JPEGBaseline8Bit", JPEG_BASELINE_8BIT),
    ("JPEGExtended12Bit", "1.2.840.10008.1.2.4.51"),
    ("JPEGLossless", JPEG_LOSSLESS),
    ("JPEGLosslessSV1", JPEG_LOSSLESS_SV1),
    ("JPEGLSLossless", JPEG_LS_LOSSLESS),
    ("JPEGLSNearLossless", "1.2.840.10008.1.2.4.81"),
    ("JPEG2000Lossless", JPEG_2000_LOSSLESS),
    ("JPEG2000", JPEG_2000),
    ("JPEG2000MCLossless", "1.2.840.10008.1.2.4.92"),
    ("JPEG2000MC", "1.2.840.10008.1.2.4.93"),
    ("RLELossless", RLE_LOSSLESS),
    ("MPEG2MPML", "1.2.840.10008.1.2.4.100"),
    ("MPEG2MPHL", "1.2.840.10008.1.2.4.101"),
    ("MPEG4HP41", MPEG4),
    ("HTJ2KLossless", "1.2.840.10008.1.2.4.201"),
    ("HTJ2KLosslessRPCL", "1.2.840.10008.1.2.4.202"),
    ("HTJ2K", "1.2.840.10008.1.2.4.203"),
    ("JPEGBaseline1", JPEG_BASELINE_8BIT),  # dcm4che < 5.22
    ("JPEG2000LosslessOnly", JPEG_2000_LOSSLESS),  # dcm4che < 5.22
    ("JPEGLosslessNonHierarchical14", JPEG_LOSSLESS),  # dcm4che < 5.22
    ("JPEGLosslessP14", JPEG_LOSSLESS),  # pydicom < 2.2
    ("explicitvrlittleendian", EXPLICIT_VR_LE),
    ("  JPEGLosslessSV1 ", JPEG_LOSSLESS_SV1),
    ("1.2.840.10008.1.2.4.70", JPEG_LOSSLESS_SV1),
    ("1.3.46.670589.33.1.4.1", "1.3.46.670589.33.1.4.1"),  # a private syntax passes through
]


@pytest.mark.parametrize(("text", "uid"), RESOLVE_CASES, ids=[c[0].strip() for c in RESOLVE_CASES])
def test_resolve(text: str, uid: str) -> None:
    """When a keyword or UID is resolved, the expected UID comes back."""
    assert ts.resolve(text) == uid


BAD_NAMES = [
    ("typo", "JPEGLoslessSV1", "JPEGLosslessSV1"),
    ("wrong-case-typo", "explicitvrlitleendian", "ExplicitVRLittleEndian"),
    ("unknown-standard-uid", "1.2.840.10008.1.2.4.7", "1.2.840.10008.1.2.4.70"),
    ("bad-uid-syntax", "1.2.840.10008.1.2.4.070", "not a valid UID"),
    ("garbage", "foo", "ExplicitVRLittleEndian"),
    ("empty", "  ", "empty"),
]


@pytest.mark.parametrize(
    ("text", "hint"), [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES]
)
def test_resolve_unknown_names_close_matches(text: str, hint: str) -> None:
    """When a name is unknown, UnknownTransferSyntax names it and suggests close matches."""
    with pytest.raises(UnknownTransferSyntax) as caught:
        ts.resolve(text)
    assert hint in str(caught.value)


def test_parse_list_trims_keeps_star_and_resolves() -> None:
    """When a comma list is parsed, items are trimmed, resolved, de-duplicated; * stays *."""
    got = ts.parse_list(" JPEGLosslessSV1 ,*, 1.2.840.10008.1.2.1,,ExplicitVRLittleEndian ")
    assert got == (JPEG_LOSSLESS_SV1, "*", EXPLICIT_VR_LE)


def test_parse_list_empty() -> None:
    """When the property is empty or blank, the list is empty (send as stored)."""
    assert ts.parse_list("") == ()
    assert ts.parse_list(" , ") == ()


def test_parse_list_unknown_item() -> None:
    """When one item is unknown, parse_list raises naming it."""
    with pytest.raises(UnknownTransferSyntax, match="'JPEGLossles'"):
        ts.parse_list("ExplicitVRLittleEndian, JPEGLossles")


@given(
    st.lists(st.sampled_from(ts.TABLE), max_size=6),
    st.lists(st.sampled_from(["", " ", "\t", "  "]), min_size=14, max_size=14),
)
def test_parse_list_roundtrips_keywords(items: list[ts.TransferSyntax], pads: list[str]) -> None:
    """When keywords are joined with any padding, parse_list gives their UIDs in order."""
    text = ",".join(f"{pads[i % 14]}{t.keyword}{pads[(i + 7) % 14]}" for i, t in enumerate(items))
    expected = tuple(dict.fromkeys(t.uid for t in items))
    assert ts.parse_list(text) == expected


@pytest.mark.parametrize("entry", ts.TABLE, ids=[t.keyword for t in ts.TABLE])
def test_keyword_roundtrip(entry: ts.TransferSyntax) -> None:
    """When a table UID is named and resolved back, the same UID comes out."""
    assert ts.resolve(ts.keyword(entry.uid)) == entry.uid


def test_keyword_of_unknown_uid_is_uid() -> None:
    """When a UID is not in the table, keyword() returns the UID itself."""
    assert ts.keyword("1.3.46.670589.33.1.4.1") == "1.3.46.670589.33.1.4.1"


NATIVE_CASES = [
    (IMPLICIT_VR_LE, True),
    (EXPLICIT_VR_LE, True),
    (EXPLICIT_VR_BE, True),
    (DEFLATED, True),
    (JPEG_LOSSLESS_SV1, False),
    (RLE_LOSSLESS, False),
    (ts.ENCAPSULATED_UNCOMPRESSED_EVRLE, False),
    (MPEG4, False),
    ("1.3.46.670589.33.1.4.1", False),
]


@pytest.mark.parametrize(
    ("uid", "native"), NATIVE_CASES, ids=[ts.keyword(c[0]) for c in NATIVE_CASES]
)
def test_is_native(uid: str, native: bool) -> None:
    """When asked, is_native is true exactly for the four uncompressed encodings."""
    assert ts.is_native(uid) is native


def test_table_keywords_and_uids_unique() -> None:
    """When the table is built, no keyword or UID appears twice, and aliases never shadow."""
    keywords = [t.keyword.lower() for t in ts.TABLE]
    assert len(set(keywords)) == len(keywords)
    assert len(ts.BY_UID) == len(ts.TABLE)
    assert not {a.lower() for a in ts.ALIASES} & set(keywords)


def _pydicom_transfer_syntaxes() -> list[tuple[str, str]]:
    from pydicom._uid_dict import UID_dictionary

    return [
        (kw, uid)
        for uid, (_, kind, _, _, kw) in UID_dictionary.items()
        if kind == "Transfer Syntax"
    ]


@pytest.mark.parametrize(("pydicom_keyword", "uid"), _pydicom_transfer_syntaxes(), ids=lambda v: v)
def test_pydicom_keywords_resolve(pydicom_keyword: str, uid: str) -> None:
    """When a pydicom keyword is given, it resolves to pydicom's UID for it."""
    assert ts.resolve(pydicom_keyword) == uid


@given(st.text(max_size=80))
def test_resolve_any_text_gives_uid_or_clear_error(text: str) -> None:
    """When arbitrary text is resolved, the result is a UID or an UnknownTransferSyntax."""
    try:
        uid = ts.resolve(text)
    except UnknownTransferSyntax as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert uid[0].isdigit() and len(uid) <= 64
