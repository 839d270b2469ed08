"""LDIF reading: folding, base64, comments, version, changetype, multi-values, errors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.config.ldif import LdifError, normalize_dn, parse_ldif, rdn_value


def _one(text: str) -> dict[str, list[str]]:
    records, warnings = parse_ldif(text, "t.ldif")
    assert len(records) == 1 and warnings == []
    return records[0].attributes


def test_folded_lines() -> None:
    """When a line starts with one space, it continues the previous line without that space."""
    attrs = _one("dn: cn=a\ndcmProperty: transfer-syn\n tax=JPEGLossless\n SV1\n")
    assert attrs["dcmproperty"] == ["transfer-syntax=JPEGLosslessSV1"]


def test_folded_dn() -> None:
    """When the dn itself is folded, it is unfolded."""
    records, _ = parse_ldif("dn: cn=a,dc=exa\n mple\ncn: a\n", "t.ldif")
    assert records[0].dn == "cn=a,dc=example"


def test_base64_value() -> None:
    """When a value is written attr:: base64, it is decoded as UTF-8."""
    encoded = base64.b64encode("Zürich öffnet".encode()).decode()
    assert _one(f"dn: cn=a\ndicomDescription:: {encoded}\n")["dicomdescription"] == [
        "Zürich öffnet"
    ]


def test_base64_dn() -> None:
    """When the dn is base64, it is decoded."""
    encoded = base64.b64encode(b"cn=b,dc=org").decode()
    records, _ = parse_ldif(f"dn:: {encoded}\ncn: b\n", "t.ldif")
    assert records[0].dn == "cn=b,dc=org"


def test_comments_are_dropped_and_do_not_fold_into_values() -> None:
    """When comment lines sit among attributes, they vanish, even their continuation lines."""
    text = "dn: cn=a\ncn: a\n#dcmSchedule: hour=18-6\n continued comment\ndcmSchedule: hour=1\n"
    assert _one(text) == {"cn": ["a"], "dcmschedule": ["hour=1"]}


def test_version_and_changetype_add() -> None:
    """When version: and changetype: add appear, they are accepted and not attributes."""
    attrs = _one("version: 1\n\ndn: cn=a\nchangetype: add\ncn: a\n")
    assert attrs == {"cn": ["a"]}


def test_version_without_blank_line() -> None:
    """When version: is followed by comments and the first entry, the entry still reads."""
    assert _one("version: 1\n# about\ndn: cn=a\ncn: a\n") == {"cn": ["a"]}


def test_other_changetype_skipped() -> None:
    """When an entry is changetype: modify, it is reported with its line and skipped."""
    text = "dn: cn=a\nchangetype: modify\nreplace: cn\ncn: b\n-\n\ndn: cn=c\ncn: c\n"
    records, warnings = parse_ldif(text, "t.ldif")
    assert [r.dn for r in records] == ["cn=c"]
    assert warnings == [
        "t.ldif:1: dn cn=a: changetype modify is not imported (only add); entry skipped"
    ]


def test_multi_valued_and_case_insensitive_names() -> None:
    """When an attribute repeats (any case), all its values are kept in order."""
    attrs = _one("dn: cn=a\nobjectClass: x\nOBJECTCLASS: y\nobjectclass: z\n")
    assert attrs == {"objectclass": ["x", "y", "z"]}


def test_attribute_options_dropped() -> None:
    """When an attribute has options (cn;lang-en), they are dropped."""
    assert _one("dn: cn=a\ncn;lang-en: a\n") == {"cn": ["a"]}


def test_crlf_and_several_blank_lines() -> None:
    """When the file has CRLF endings and extra blank lines, entries still separate."""
    records, _ = parse_ldif("dn: cn=a\r\ncn: a\r\n\r\n\r\n  \r\ndn: cn=b\r\ncn: b\r\n", "t.ldif")
    assert [(r.dn, r.first("cn")) for r in records] == [("cn=a", "a"), ("cn=b", "b")]


def test_record_location() -> None:
    """When records are read, each remembers file and line of its dn."""
    records, _ = parse_ldif("version: 1\n\n# c\ndn: cn=a\ncn: a\n", "x.ldif")
    assert records[0].where == "x.ldif:4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cn: a\n", "t.ldif:1: an entry must start with 'dn:', not 'cn'"),
        ("dn: cn=a\nno colon here\n", "t.ldif:2: expected 'attribute: value'"),
        ("dn: cn=a\ncn:: %%%\n", "t.ldif:2: cn:: value is not base64 of UTF-8 text"),
        ("dn: cn=a\njpegPhoto:< file:///x\n", "t.ldif:2: jpegphoto:< (value from a URL)"),
        (" leading\n", "t.ldif:1: a continuation line (leading space) must follow"),
    ],
    ids=["no-dn", "no-colon", "bad-base64", "url-value", "stray-continuation"],
)
def test_malformed(text: str, message: str) -> None:
    """When the LDIF is malformed, one error names file, line and the problem."""
    with pytest.raises(LdifError) as raised:
        parse_ldif(text, "t.ldif")
    assert raised.value.errors[0].startswith(message)


def test_normalize_dn() -> None:
    """When DNs differ only in case and spaces, they normalise to the same text."""
    assert normalize_dn("cn=HTTP , dicomDeviceName=Store  SCP,dc=org") == normalize_dn(
        "CN=http,dicomdevicename=store scp, DC=ORG"
    )


def test_rdn_value() -> None:
    """When a DN holds dicomDeviceName, rdn_value returns it as written."""
    assert rdn_value("dcmExporterID=E, dicomDeviceName=Arc,cn=Devices", "dicomdevicename") == "Arc"


_value = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    ),
    min_size=1,
    max_size=200,
).filter(lambda v: v == v.strip())


@given(_value, st.integers(2, 76))
def test_fold_and_base64_round_trip(value: str, width: int) -> None:
    """When any value is base64-encoded and folded at any width, it reads back unchanged."""
    line = "dicomDescription:: " + base64.b64encode(value.encode()).decode()
    folded = [line[:width]] + [" " + line[i : i + width] for i in range(width, len(line), width)]
    text = "dn: cn=a\n" + "\n".join(folded) + "\n"
    assert _one(text)["dicomdescription"] == [value]


@given(st.text(max_size=300))
def test_never_crashes(text: str) -> None:
    """When any text is read, it parses or raises LdifError, nothing else."""
    try:
        parse_ldif(text, "t.ldif")
    except LdifError:
        pass
