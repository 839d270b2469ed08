"""Raw DICOM bytes for hostile parts: an Explicit VR Little Endian encoder that writes
whatever it is told (wrong group lengths, invalid UIDs, truncations), unlike pydicom.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import strategies as st

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLEMENTATION = "1.2.826.0.1.3680043.8.498.9"
_LONG_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC", "UN", "UR", "UT"}
#: A marker in every path-traversal payload; the suite looks for it on disk afterwards.
MARKER = "stowpairpwn"


def element(group: int, elem: int, vr: str, value: bytes, length: int | None = None) -> bytes:
    """One Explicit VR LE element; ``length`` overrides the encoded length (lies)."""
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    n = len(value) if length is None else length
    tag = struct.pack("<HH", group, elem) + vr.encode("latin-1")
    if vr in _LONG_VRS:
        return tag + b"\0\0" + struct.pack("<I", n & 0xFFFFFFFF) + value
    return tag + struct.pack("<H", n & 0xFFFF) + value


def uid_bytes(uid: str) -> bytes:
    return uid.encode("latin-1", "replace")


@dataclass(frozen=True)
class Uids:
    sop_class: str
    sop_instance: str
    study: str
    series: str
    transfer_syntax: str = EXPLICIT_LE
    media_instance: str | None = None  # defaults to sop_instance


def file_meta(uids: Uids, group_length: int | None = None) -> bytes:
    """Preamble, ``DICM`` and File Meta Information (PS3.10 §7.1)."""
    media = uids.sop_instance if uids.media_instance is None else uids.media_instance
    body = (
        element(0x0002, 0x0001, "OB", b"\0\1")
        + element(0x0002, 0x0002, "UI", uid_bytes(uids.sop_class))
        + element(0x0002, 0x0003, "UI", uid_bytes(media))
        + element(0x0002, 0x0010, "UI", uid_bytes(uids.transfer_syntax))
        + element(0x0002, 0x0012, "UI", uid_bytes(IMPLEMENTATION))
    )
    length = len(body) if group_length is None else group_length
    return (
        b"\0" * 128
        + b"DICM"
        + element(0x0002, 0x0000, "UL", struct.pack("<I", length & 0xFFFFFFFF))
        + body
    )


def data_set(uids: Uids, extra: bytes = b"") -> bytes:
    """A small CT-like data set (no pixel data), elements in tag order."""
    return (
        element(0x0008, 0x0016, "UI", uid_bytes(uids.sop_class))
        + element(0x0008, 0x0018, "UI", uid_bytes(uids.sop_instance))
        + element(0x0008, 0x0060, "CS", b"CT")
        + element(0x0010, 0x0010, "PN", b"BAD^INPUT")
        + element(0x0010, 0x0020, "LO", b"BADIN-1")
        + element(0x0020, 0x000D, "UI", uid_bytes(uids.study))
        + element(0x0020, 0x000E, "UI", uid_bytes(uids.series))
        + extra
    )


def instance(uids: Uids, group_length: int | None = None, extra: bytes = b"") -> bytes:
    return file_meta(uids, group_length) + data_set(uids, extra)


# -- strategies ---------------------------------------------------------------------------

_ROOT = "1.2.826.0.1.3680043.8.498"
valid_uids = st.builds(
    lambda a, b: f"{_ROOT}.{a}.{b}", st.integers(1, 10**9), st.integers(1, 10**12)
)

#: UIDs a server must refuse before deriving any file name from them.
hostile_uids = st.one_of(
    st.sampled_from(
        [
            "",
            ".",
            "..",
            f"../{MARKER}",
            f"../../{MARKER}",
            f"../../../../../../tmp/{MARKER}",
            f"/tmp/{MARKER}",
            f"/{MARKER}",
            f"1.2.3/../../{MARKER}",
            f"1.2.3\\..\\{MARKER}",
            f"1.2.3\x00{MARKER}",
            "1.2.3\x00",
            "1.2.3.",
            ".1.2.3",
            "1..2",
            "01.2.3",
            "1.02.3",
            "1.2.003",
            "1.2.3 ",
            " 1.2.3",
            "1.2.3\n",
            "1.2.3\r\n",
            "1.2.3\t",
            "1.2.3\x1b",
            "1.2\x7f3",
            "1.2.3\x00\x00",
            "1.2.3;rm -rf",
            "1.2.3%2F..%2F" + MARKER,
            "1" * 65,
            "1." * 32 + "1",
            "1.2." + "9" * 62,
            "1.2.3\u00e9",
        ]
    ),
    st.builds(lambda n: "1." * n + "1", st.integers(32, 200)),
    st.builds(lambda n: "9" * n, st.integers(65, 300)),
    st.text(alphabet="0123456789./\\\x00 -_aZ%", min_size=1, max_size=80),
)

#: The Study Instance UID that requests to ``/studies/{uid}`` name.
STUDY_IN_URL = f"{_ROOT}.77.1"
