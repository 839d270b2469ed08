"""Instance files in the archive: header reading and placement by UID.

The archive layout is ``<storage>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
(the same as stowrsd's default layout). Files are written next to their destination and
linked into place (:func:`stowpair.fsutil.place_new`), so a reader never sees a partial
file and a stored file is never replaced, even by another node sharing the folder.

Every function here blocks (file I/O, pydicom parsing): call them from a thread pool.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_file_meta_info, read_partial
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from stowpair.archive.model import InstanceRecord
from stowpair.dicom.header import CorruptHeader, decode_header, raw_uid
from stowpair.dicom.uids import InvalidUID, is_valid_uid, uid_from_value
from stowpair.fsutil import place_new

_PIXEL_DATA = 0x7FE00010
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_DEFLATED = "1.2.840.10008.1.2.1.99"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_IMPLICIT = "1.2.840.10008.1.2"
#: (0002,0012) of files we write.
IMPLEMENTATION_CLASS_UID = PYDICOM_IMPLEMENTATION_UID


def valid_uid(uid: str) -> bool:
    """True when ``uid`` is a well-formed DICOM UID (PS3.5 §9.1): at most 64 characters,
    digits and dots, no empty component, no leading zero in a multi-digit component.

    Only UIDs passing this check ever name a file, so a UID cannot escape the storage
    folder (no ``/``, no ``..``). The rule lives in :mod:`stowpair.dicom.uids`.
    """
    return is_valid_uid(uid)


class NotStorable(Exception):
    """A file that is not a storable DICOM instance; ``reason`` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InstanceHeader:
    """The header fields the index needs, read from a Part 10 file."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str = ""
    patient_id: str = ""
    study_date: str = ""

    def record(
        self, path: Path, size: int, source: str = "", received_time: float = 0.0
    ) -> InstanceRecord:
        """The index record for this instance stored at ``path``."""
        return InstanceRecord(
            study_uid=self.study_uid,
            series_uid=self.series_uid,
            sop_instance_uid=self.sop_instance_uid,
            sop_class_uid=self.sop_class_uid,
            transfer_syntax_uid=self.transfer_syntax_uid,
            path=path,
            size=size,
            modality=self.modality,
            patient_id=self.patient_id,
            study_date=self.study_date,
            source=source,
            received_time=received_time,
        )


def instance_path(storage: Path, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    """Where an instance lives in the archive; raises :class:`NotStorable` for a bad UID."""
    for name, uid in (
        ("StudyInstanceUID", study_uid),
        ("SeriesInstanceUID", series_uid),
        ("SOPInstanceUID", sop_uid),
    ):
        if not valid_uid(uid):
            raise NotStorable(f"{name} {uid[:80]!r} is not a valid DICOM UID (PS3.5 §9.1)")
    return storage / study_uid / series_uid / f"{sop_uid}.dcm"


class _TruncationCheck:
    """A ``stop_when`` callback for pydicom that stops at Pixel Data and notices a file
    cut short in the header: pydicom itself stops quietly at the end of the file.

    Called once per top-level element, positioned at its value. A defined length must fit
    in the file; an undefined-length sequence must end with its Sequence Delimitation
    Item (PS3.5 §7.5.2) right before the next element (or the end of the file).
    """

    def __init__(self, fp: BinaryIO, size: int, little: bool, enabled: bool = True) -> None:
        self.fp = fp
        self.size = size
        self.endian = "<" if little else ">"
        self.enabled = enabled
        self.problem = ""
        self.at_pixels = False
        self.open_sequence: tuple[int, int] | None = None  # (tag, value position)
        self.end = 0  # where the last defined-length element ends

    def __call__(self, tag: BaseTag, vr: str | None, length: int) -> bool:
        if not self.enabled:
            return False
        position = self.fp.tell()
        if self.open_sequence is not None:
            header_starts = (position - 8, position - 12)
            if not any(self._delimiter_before(h) for h in header_starts):
                self._sequence_problem()
                return True
            self.open_sequence = None
        if length == _UNDEFINED and tag != _PIXEL_DATA:
            self.open_sequence = (int(tag), position)
        elif length != _UNDEFINED and position + length > self.size:
            self.problem = (
                f"truncated: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {position} "
                f"declares {length} bytes but the file ends at byte {self.size}"
            )
            return True
        elif length != _UNDEFINED:
            self.end = position + length
        if tag == _PIXEL_DATA:
            self.at_pixels = True
            return True
        return False

    def finish(self) -> None:
        """After pydicom returns: a sequence still open must end at the end of the file."""
        if not self.enabled or self.at_pixels or self.problem:
            return
        if self.open_sequence is not None:
            if not self._delimiter_before(self.size):
                self._sequence_problem()
        elif self.end and self.end < self.size:
            self.problem = (
                f"truncated: an incomplete element header at byte {self.end} "
                f"(the file ends at byte {self.size})"
            )

    def _delimiter_before(self, offset: int) -> bool:
        if offset < 8:
            return False
        here = self.fp.tell()
        self.fp.seek(offset - 8)
        tail = self.fp.read(8)
        self.fp.seek(here)
        return tail == struct.pack(self.endian + "HHL", 0xFFFE, 0xE0DD, 0)

    def _sequence_problem(self) -> None:
        assert self.open_sequence is not None
        tag, position = self.open_sequence
        self.problem = (
            f"truncated: sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {position} "
            f"has no Sequence Delimitation Item before byte {self.size}"
        )


_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}


def _check_tail(fp: BinaryIO, size: int, little: bool, implicit: bool) -> str:
    """Walk the top-level elements from Pixel Data to the end of the file; a problem or ``""``.

    pydicom stops before the pixels and would not notice a file cut inside them or in
    the elements after them (PS3.5 §7.1 element layout, §A.4 encapsulation).
    """
    endian = "<" if little else ">"
    while (start := fp.tell()) < size:
        head = fp.read(8)
        if len(head) < 8:
            return f"truncated: element header at byte {start} is incomplete (file ends at {size})"
        group, element = struct.unpack(endian + "HH", head[:4])
        vr = head[4:6]
        if implicit or not (b"AA" <= vr <= b"ZZ"):  # pydicom tolerates implicit inside explicit
            length = struct.unpack(endian + "L", head[4:8])[0]
        elif vr in _LONG_VRS:
            extra = fp.read(4)
            if len(extra) < 4:
                return f"truncated: element header at byte {start} is incomplete"
            length = struct.unpack(endian + "L", extra)[0]
        else:
            length = struct.unpack(endian + "H", head[6:8])[0]
        tag = group << 16 | element
        if length == _UNDEFINED:
            if tag != _PIXEL_DATA:
                return ""  # an undefined-length sequence: pydicom parsed these already
            problem = _check_fragments(fp, size, endian)
            if problem:
                return problem
            continue
        if fp.tell() + length > size:
            return (
                f"truncated: element ({group:04X},{element:04X}) at byte {start} declares "
                f"{length} bytes but the file ends at byte {size}"
            )
        fp.seek(length, os.SEEK_CUR)
    return ""


def _check_fragments(fp: BinaryIO, size: int, endian: str) -> str:
    """Encapsulated Pixel Data: items up to the Sequence Delimitation Item (PS3.5 §A.4)."""
    while True:
        position = fp.tell()
        item = fp.read(8)
        if len(item) < 8:
            return (
                f"truncated: encapsulated Pixel Data ends at byte {position} without its "
                "Sequence Delimitation Item"
            )
        group, element, item_length = struct.unpack(endian + "HHL", item)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITER:
            return ""
        if tag != _ITEM or position + 8 + item_length > size:
            return f"truncated or corrupt: encapsulated Pixel Data fragment at byte {position}"
        fp.seek(item_length, os.SEEK_CUR)


def read_header(path: Path) -> InstanceHeader:
    """Read the index fields of a DICOM Part 10 file without its pixel data.

    Raises :class:`NotStorable` with a one-line reason for non-DICOM files (no ``DICM``
    prefix: ``force=False``), truncated files, files without the UIDs an archive needs
    (e.g. a DICOMDIR) and malformed UIDs.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fp:
            try:
                ts = str(read_file_meta_info(path).get("TransferSyntaxUID", ""))
                if not ts:
                    raise NotStorable(
                        "no Transfer Syntax UID (0002,0010) in the File Meta Information"
                    )
                # A deflated dataset is parsed from an inflated copy, so file offsets
                # mean nothing there; zlib itself reports a truncated stream.
                check = _TruncationCheck(fp, size, ts != _BIG_ENDIAN, enabled=ts != _DEFLATED)
                ds = read_partial(fp, stop_when=check, force=False)
                check.finish()
                uids = {keyword: raw_uid(ds, tag) for keyword, tag in _UIDS}  # as encoded
                decode_header(ds, ts, size)
            except InvalidDicomError:
                raise NotStorable(
                    "not a DICOM Part 10 file (no 'DICM' prefix after the 128-byte preamble)"
                ) from None
            except NotStorable:
                raise
            except OSError:
                raise
            except CorruptHeader as e:
                raise NotStorable(f"unreadable DICOM: {e}") from None
            except Exception as e:  # pydicom raises many kinds on malformed input
                raise NotStorable(f"unreadable DICOM: {type(e).__name__}: {e}"[:300]) from None
            if check.problem:
                raise NotStorable(check.problem)
            if check.at_pixels:
                problem = _check_tail(fp, size, ts != _BIG_ENDIAN, ts == _IMPLICIT)
                if problem:
                    raise NotStorable(problem)
    except OSError as e:
        raise NotStorable(f"cannot read: {e.strerror}") from None
    return _header_from(ds, ts, uids)


#: The UIDs an archived instance needs, by keyword, with their tags.
_UIDS = (
    ("StudyInstanceUID", 0x0020000D),
    ("SeriesInstanceUID", 0x0020000E),
    ("SOPInstanceUID", 0x00080018),
    ("SOPClassUID", 0x00080016),
)


def _header_from(ds: Dataset, ts: str, raw: dict[str, str | bytes | None]) -> InstanceHeader:
    def get(keyword: str) -> str:
        value = getattr(ds, keyword, "")
        return "" if value is None else str(value).strip()

    meta = getattr(ds, "file_meta", None)
    sop_class = raw["SOPClassUID"] or str(getattr(meta, "MediaStorageSOPClassUID", "") or "")
    if isinstance(sop_class, bytes):
        sop_class = sop_class.decode("latin-1")
    if (sop_class or "").rstrip("\0") == "1.2.840.10008.1.3.10":
        # Media Storage Directory Storage (PS3.10 §8)
        raise NotStorable("a DICOMDIR (Media Storage Directory), not an instance")
    missing = [k for k, value in raw.items() if not value]
    if missing:
        raise NotStorable(f"no {', '.join(missing)} in the dataset")
    try:
        uids = {k: uid_from_value(value or "", k) for k, value in raw.items()}
    except InvalidUID as e:
        raise NotStorable(f"{e} (PS3.5 §9.1)") from None
    return InstanceHeader(
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        transfer_syntax_uid=ts,
        modality=get("Modality"),
        patient_id=get("PatientID"),
        study_date=get("StudyDate"),
    )


class StoreStatus(Enum):
    """What :func:`store_file` did."""

    STORED = "stored"
    #: The same bytes were already at the destination: nothing changed.
    UNCHANGED = "unchanged"
    #: Different bytes are already stored under this SOP Instance UID; they were kept
    #: (dcm4chee's default overwrite policy NEVER).
    CONFLICT = "conflict"


def store_file(
    source: Path, header: InstanceHeader, storage: Path, fsync: bool = True
) -> tuple[Path, StoreStatus]:
    """Copy ``source`` into the archive at its UID path, atomically.

    Returns the destination and what happened. An existing destination is never
    overwritten: identical bytes → ``UNCHANGED``, different bytes → ``CONFLICT``.
    """
    dest = instance_path(storage, header.study_uid, header.series_uid, header.sop_instance_uid)
    if dest.exists():
        return dest, _existing(source, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=".", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        if not place_new(temp, dest, fsync=fsync):  # another writer placed it meanwhile
            temp.unlink()
            return dest, _existing(source, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return dest, StoreStatus.STORED


def _existing(source: Path, dest: Path) -> StoreStatus:
    same = _same_file(source, dest) or filecmp.cmp(source, dest, shallow=False)
    return StoreStatus.UNCHANGED if same else StoreStatus.CONFLICT


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def has_part10_prefix(path: Path) -> bool:
    """True when ``path`` starts with the 128-byte preamble and ``DICM`` (PS3.10 §7.1)."""
    with path.open("rb") as f:
        return f.read(132)[128:132] == b"DICM"


def wrap_as_part10(
    bare: Path, sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str
) -> Path:
    """Write a PS3.10 file (preamble, ``DICM``, File Meta Information) holding the bare
    data set in ``bare``, next to it; return the new temp file (``bare`` is left alone).

    STOW-RS allows a part without File Meta, its encoding named by the ``transfer-syntax``
    parameter (PS3.18 §8.7.3.5.2); the archive keeps only Part 10 files so that
    ``stowpair import`` and every DICOM tool can read them back.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = "STOWPAIR"
    fd, name = tempfile.mkstemp(dir=bare.parent, prefix=".", suffix=".part")
    out_path = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw, bare.open("rb") as src:
            out = DicomFileLike(raw)
            out.write(b"\0" * 128 + b"DICM")
            write_file_meta_info(out, meta, enforce_standard=True)
            shutil.copyfileobj(src, raw, 1 << 20)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return out_path
