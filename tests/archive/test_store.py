"""Header reading, UID checks and placement by UID (stowpair.archive.store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.archive.store import (
    NotStorable,
    StoreStatus,
    instance_path,
    read_header,
    store_file,
    valid_uid,
)
from tests.archive.conftest import FILES_BY_SYNTAX, bundled


@pytest.mark.parametrize(
    ("uid", "ok"),
    [
        ("1.2.840.10008.1.2.1", True),
        ("0", True),
        ("1.0.3", True),
        ("2.25." + "9" * 59, True),
        ("2.25." + "9" * 60, False),
        ("", False),
        ("1..2", False),
        ("1.2.", False),
        (".1.2", False),
        ("1.02.3", False),
        ("1.2.a", False),
        ("../../etc/passwd", False),
        ("1.2/3", False),
        ("1.2 ", False),
        ("1.2\n", False),
    ],
    ids=lambda v: repr(v)[:24] if isinstance(v, str) else str(v),
)
def test_valid_uid(uid: str, ok: bool) -> None:
    """When a UID is checked, only PS3.5 §9.1 UIDs of at most 64 characters pass."""
    assert valid_uid(uid) is ok


@given(st.text(max_size=80))
def test_valid_uid_never_admits_a_path(text: str) -> None:
    """When any text passes the UID check, it cannot leave the storage folder."""
    if valid_uid(text):
        assert "/" not in text and ".." not in text and set(text) <= set("0123456789.")


def test_instance_path_rejects_bad_uid(tmp_path: Path) -> None:
    """When a UID is not a UID, no path is made and the reason names the attribute."""
    with pytest.raises(NotStorable, match="SeriesInstanceUID"):
        instance_path(tmp_path, "1.2", "..", "1.3")


@pytest.mark.parametrize(("ts", "name"), sorted(FILES_BY_SYNTAX.items()), ids=lambda v: v)
def test_read_header_every_transfer_syntax(ts: str, name: str) -> None:
    """When a bundled file of each transfer syntax is read, its UIDs and syntax come out."""
    header = read_header(bundled(name))
    assert header.transfer_syntax_uid == ts
    assert valid_uid(header.sop_instance_uid) and valid_uid(header.study_uid)


def _cut(source: Path, tmp: Path, keep: int) -> Path:
    data = source.read_bytes()
    out = tmp / "cut.dcm"
    out.write_bytes(data[: keep if keep >= 0 else len(data) + keep])
    return out


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("CT_small.dcm", 700),  # inside the header elements
        ("CT_small.dcm", 20_000),  # inside the native pixel data
        ("CT_small.dcm", -10),  # inside the elements after the pixel data
        ("MR_small_jp2klossless.dcm", -1),  # before the sequence delimiter
        ("MR_small_jp2klossless.dcm", 3000),  # inside a fragment
        ("MR_small_bigendian.dcm", 5000),
        ("MR_small_implicit.dcm", 5000),
        ("image_dfl.dcm", 2000),  # deflated: zlib notices
    ],
    ids=[
        "ct-header",
        "ct-pixels",
        "ct-trailer",
        "j2k-delimiter",
        "j2k-fragment",
        "be",
        "ivr",
        "dfl",
    ],
)
def test_truncated_files_are_refused(tmp_path: Path, name: str, keep: int) -> None:
    """When a file is cut short anywhere, reading it fails with a reason saying so."""
    with pytest.raises(NotStorable) as e:
        read_header(_cut(bundled(name), tmp_path, keep))
    assert "truncated" in e.value.reason or "unreadable" in e.value.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a DICOM Part 10 file"),
        (b"hello, not dicom\n" * 20, "not a DICOM Part 10 file"),
        (b"\0" * 128 + b"DICX" + b"\0" * 100, "not a DICOM Part 10 file"),
    ],
    ids=["empty", "text", "bad-prefix"],
)
def test_non_dicom_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    """When a file is not DICOM Part 10, the reason says so."""
    path = tmp_path / "x.dcm"
    path.write_bytes(content)
    with pytest.raises(NotStorable, match=reason):
        read_header(path)


def test_dicomdir_is_refused() -> None:
    """When a DICOMDIR is read, it is refused as a directory, not an instance."""
    with pytest.raises(NotStorable, match="DICOMDIR"):
        read_header(bundled("DICOMDIR"))


def test_store_file_states(tmp_path: Path) -> None:
    """When a file is stored, again, and then with other bytes, it is STORED, UNCHANGED,
    then CONFLICT, and the stored bytes never change after the first time."""
    source = bundled("CT_small.dcm")
    header = read_header(source)
    dest, status = store_file(source, header, tmp_path, fsync=False)
    assert status is StoreStatus.STORED
    assert (
        dest == tmp_path / header.study_uid / header.series_uid / f"{header.sop_instance_uid}.dcm"
    )
    assert dest.read_bytes() == source.read_bytes()
    assert store_file(source, header, tmp_path)[1] is StoreStatus.UNCHANGED
    other = tmp_path / "other.dcm"
    other.write_bytes(source.read_bytes() + b"\0\0")
    assert store_file(other, header, tmp_path)[1] is StoreStatus.CONFLICT
    assert dest.read_bytes() == source.read_bytes()
    assert not list(dest.parent.glob(".*.part"))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_damaged_files_never_crash(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """When a file is cut or has bytes overwritten anywhere, reading it either succeeds
    with the original UIDs or fails with a NotStorable reason, never another error."""
    source = bundled(data.draw(st.sampled_from(sorted(FILES_BY_SYNTAX.values()))))
    original = read_header(source)
    raw = bytearray(source.read_bytes())
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("fuzz") / "x.dcm"
    path.write_bytes(bytes(raw))
    try:
        header = read_header(path)
    except NotStorable as e:
        assert e.reason
    else:
        assert header.sop_class_uid  # parsed: a usable header, maybe with altered values
        assert (
            header.transfer_syntax_uid == original.transfer_syntax_uid or raw != source.read_bytes()
        )
