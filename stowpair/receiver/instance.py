"""Reading and checking the DICOM header of a received part (blocking: run in a thread).

A part is a PS3.10 file (preamble, ``DICM``, File Meta Information) or a bare data
set encoded in the transfer syntax named by the part's ``transfer-syntax`` parameter
(PS3.18 §8.7.3.5.2; when both exist, (0002,0010) wins). Only the header is read
(stop before Pixel Data, large values deferred), so memory stays small whatever the
instance size. Every UID is validated before anything derives a file name from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from stowpair.dicom.header import CorruptHeader, decode_header, one_line, raw_uid
from stowpair.dicom.uids import InvalidUID, uid_from_value, validate_uid

#: Failure Reasons (PS3.18 Table I.2-2) used by the receiver.
CANNOT_UNDERSTAND = 0xC000
DOES_NOT_MATCH_SOP_CLASS = 0xA900
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
OUT_OF_RESOURCES = 0xA700
PROCESSING_FAILURE = 0x0110

_PIXEL_DATA = 0x7FE00010
_DEFER = 64 * 1024  # values above this stay on disk (bounded memory)


@dataclass(frozen=True)
class InstanceHeader:
    """What the receiver learned from a part: validated UIDs and the header data set.

    ``dataset`` is the header without Pixel Data (File Meta in ``dataset.file_meta``
    when present); the archive reads Modality, Patient ID, Study Date from it. It is
    empty when a header worker read the part (stowpair.receiver.header_workers): stowrsd's
    layouts need only the UIDs.
    """

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    part_number: int
    size: int
    dataset: Dataset


class InstanceError(Exception):
    """A part that cannot be stored; ``failure_reason`` is a Table I.2-2 code.

    ``sop_class_uid``/``sop_instance_uid`` are set when they were read and valid, so
    the failure can be listed in the FailedSOPSequence; otherwise it goes to the
    Other Failures Sequence.
    """

    def __init__(
        self,
        failure_reason: int,
        message: str,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> None:
        super().__init__(message)
        self.failure_reason = failure_reason
        self.message = message
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid


def _stop_at_pixels(tag: BaseTag, vr: str | None, length: int) -> bool:
    return int(tag) >= _PIXEL_DATA


class _Head(BytesIO):
    """The first bytes of a longer part. ``ran_out`` tells, once the stream is closed,
    whether reading got to their end: the header may then go on past them (a header cut
    at an element boundary would pass for a complete one), and it is read from the file.

    Checked once at close rather than at every read: a ``read`` written in Python, called
    twice per element, was a seventh of the receiver's time with many clients.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)
        self.ran_out = False

    def close(self) -> None:
        if not self.closed:
            self.ran_out = self.tell() >= self.size
        super().close()


def _read(
    open_part: Callable[[], BinaryIO], part_ts: str | None, defer: int | None = _DEFER
) -> tuple[Dataset, str]:
    """Read the header; return it and the transfer syntax from File Meta (or None)."""
    with open_part() as f:
        head = f.read(132)
    if head[128:132] == b"DICM" or part_ts is None:
        with open_part() as f:
            ds: Dataset = pydicom.dcmread(f, stop_before_pixels=True, defer_size=defer, force=True)
        meta = getattr(ds, "file_meta", None)
        ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
        if head[128:132] == b"DICM" and ts is None:
            raise ValueError("the File Meta Information has no Transfer Syntax UID (0002,0010)")
        if ts is None:  # bare data set, encoding guessed by pydicom
            ts = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
        return ds, str(ts)
    uid = UID(part_ts)
    if uid.is_deflated or not uid.is_transfer_syntax:
        raise ValueError(f"a bare data set in transfer syntax {part_ts} cannot be read")
    with open_part() as f:
        ds = read_dataset(
            f,
            uid.is_implicit_VR,
            uid.is_little_endian,
            stop_when=_stop_at_pixels,
            defer_size=defer,
        )
    return ds, part_ts


#: (tag, name) of the UIDs every stored instance needs, as they are checked.
_UIDS = (
    (0x00080016, "SOP Class UID (0008,0016)"),
    (0x00080018, "SOP Instance UID (0008,0018)"),
    (0x0020000D, "Study Instance UID (0020,000D)"),
    (0x0020000E, "Series Instance UID (0020,000E)"),
)
_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018
_MEDIA_SOP_INSTANCE, _MEDIA_NAME = 0x00020003, "Media Storage SOP Instance UID (0002,0003)"
_TRANSFER_SYNTAX, _TS_NAME = 0x00020010, "Transfer Syntax UID (0002,0010)"


def _uid_or_none(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return uid_from_value(value, "UID")
    except InvalidUID:
        return None


def read_instance_header(path: Path, part_number: int, part_ts: str | None) -> InstanceHeader:
    """Read and validate the header of the part stored at ``path``.

    Raises :class:`InstanceError` with 0xC000 when the part is not readable DICOM and
    0xA900 when a required UID is missing, invalid or contradicts the File Meta.
    """
    return _header(lambda: path.open("rb"), path.stat().st_size, part_number, part_ts)


#: The signature of :func:`read_part_header` (head, temp file, size, part number, the
#: part's transfer-syntax parameter).
PartHeaderReader = Callable[[bytes, Path, int, int, "str | None"], "InstanceHeader"]


def read_part_header(
    head: bytes, path: Path, size: int, part_number: int, part_ts: str | None
) -> InstanceHeader:
    """The header from the part's first bytes, kept in memory while it arrived; the file
    at ``path`` is read only when the header is longer than ``head``.

    Parsing from memory is also much faster with several storage threads: pydicom asks
    the file for its position at every element, and each ``tell()`` of a file is a
    system call that hands the GIL over (a convoy that took most of the receiver's time
    with many small instances).
    """
    if len(head) >= size:
        return _header(lambda: BytesIO(head), size, part_number, part_ts, defer=None)
    streams: list[_Head] = []

    def open_head() -> BinaryIO:
        stream = _Head(head)
        streams.append(stream)
        return stream

    try:
        header = _header(open_head, size, part_number, part_ts, defer=None)
    except InstanceError:
        if any(s.ran_out for s in streams):
            return read_instance_header(path, part_number, part_ts)
        raise
    if any(s.ran_out for s in streams):
        return read_instance_header(path, part_number, part_ts)
    return header


def read_head_header(
    head: bytes, size: int, part_number: int, part_ts: str | None
) -> InstanceHeader:
    """Like :func:`read_instance_header`, from the first bytes of a part kept in memory
    (when its temp file could not be written, e.g. a full disk, the UIDs still name the
    failed instance in the FailedSOPSequence)."""
    return _header(lambda: BytesIO(head), size, part_number, part_ts)


def _header(
    open_part: Callable[[], BinaryIO],
    size: int,
    part_number: int,
    part_ts: str | None,
    defer: int | None = _DEFER,
) -> InstanceHeader:
    """Read, decode and check a header: 0xC000 when any of it cannot be parsed, 0xA900
    when a required UID is missing or invalid (PS3.18 Table I.2-2)."""
    where = f"part {part_number}"
    try:
        ds, ts = _read(open_part, part_ts, defer)
    except Exception as e:  # pydicom raises a wide range on hostile input
        raise InstanceError(
            CANNOT_UNDERSTAND, f"{where} is not a readable DICOM instance: {one_line(e)}"
        ) from None
    meta = getattr(ds, "file_meta", None)
    raw = {tag: raw_uid(ds, tag) for tag, _ in _UIDS}  # before decoding strips them
    media, ts_value = raw_uid(meta, _MEDIA_SOP_INSTANCE), raw_uid(meta, _TRANSFER_SYNTAX)
    if raw[_SOP_CLASS] is None and raw[_SOP_INSTANCE] is None:
        raise InstanceError(
            CANNOT_UNDERSTAND, f"{where} is not a DICOM instance: it has no SOP Class/Instance UID"
        )
    known = (_uid_or_none(raw[_SOP_CLASS]), _uid_or_none(raw[_SOP_INSTANCE]))
    try:
        decode_header(ds, ts, size)
    except CorruptHeader as e:
        raise InstanceError(
            CANNOT_UNDERSTAND, f"{where} is not a readable DICOM instance: {e}", *known
        ) from None
    try:
        sop_class, sop_instance, study, series = (
            _checked_uid(raw[tag], f"{where}: {name}") for tag, name in _UIDS
        )
        ts = _checked_uid(ts_value or ts, f"{where}: {_TS_NAME}")
        stored_as = _checked_uid(media, f"{where}: {_MEDIA_NAME}") if media else None
    except InvalidUID as e:
        raise InstanceError(DOES_NOT_MATCH_SOP_CLASS, str(e), *known) from None
    if stored_as is not None and stored_as != sop_instance:
        raise InstanceError(
            DOES_NOT_MATCH_SOP_CLASS,
            f"{where}: Media Storage SOP Instance UID {stored_as} in the File Meta differs"
            f" from SOP Instance UID {sop_instance}",
            sop_class,
            sop_instance,
        )
    return InstanceHeader(sop_class, sop_instance, study, series, ts, part_number, size, ds)


def _checked_uid(value: str | bytes | None, what: str) -> str:
    if value is None:
        return validate_uid(None, what)  # raises: missing
    return uid_from_value(value, what)
