"""Decoding a DICOM header completely and strictly (blocking: run in a thread).

pydicom reads lazily and forgivingly: an element is decoded only when first used, a
cut element header ends the data set silently, a value shorter than its length is kept
short, and a corrupt VR either becomes "unknown" or switches the reader to implicit VR.
:func:`decode_header` makes all of that a :class:`CorruptHeader` with a one-line reason
at the moment the header is read, so the receiver refuses such a part with 0xC000
(PS3.18 Table I.2-2) and nothing later (storing, indexing, export rules) meets an
element that cannot be decoded. :func:`raw_uid` reads a UI value as it was encoded,
before pydicom strips trailing NULs *and* spaces from it.
"""

from __future__ import annotations

from typing import Any

from pydicom import config
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pydicom.valuerep import VR


class CorruptHeader(ValueError):
    """An element of the header cannot be decoded; the message says which and why."""


def one_line(e: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, bounded (for Warning headers and logs)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decode_header(ds: Dataset, transfer_syntax: str, size: int) -> None:
    """Check and decode every element of ``ds`` (and its File Meta), read from a part or
    file of ``size`` bytes in ``transfer_syntax``; raise :class:`CorruptHeader`."""
    try:
        ts = UID(transfer_syntax)
        deflated, explicit = ts.is_deflated, not ts.is_implicit_VR
    except ValueError:  # not a transfer syntax pydicom knows: it guessed the encoding
        deflated, explicit = False, False
    as_read = list(ds.values())  # as read: RawDataElements, large values left on disk
    if not deflated:  # positions in a deflated data set are not the part's
        _check_end(as_read, size)  # first: decoding replaces the elements as read
    # pydicom reads the whole data set as implicit VR when it starts so (a file whose
    # transfer syntax is mislabelled, readable as it is); an element without a VR among
    # explicit ones is a corrupt VR.
    explicit = explicit and any(getattr(e, "VR", None) is not None for e in as_read)
    _decode_all(ds, explicit, as_read)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _decode_all(meta, explicit=True)  # PS3.10 §7.1: always Explicit VR Little Endian


def raw_uid(ds: Dataset | None, tag: int) -> str | bytes | None:
    """The value of UI element ``tag`` as it was encoded (padding included), before
    pydicom strips trailing NULs *and spaces*; None when the element is absent."""
    if ds is None or tag not in ds:
        return None
    raw = _raw(ds, tag)
    value = raw.value
    if value is None:
        length = getattr(raw, "length", 0) or 0
        return b"?" * min(length, 100)  # a deferred value: far too long for a UID
    if isinstance(value, bytes | str):
        return value
    return str(value)  # already decoded by pydicom (File Meta's Transfer Syntax UID)


_KNOWN_VRS = frozenset(str(vr) for vr in VR)
_UNDEFINED = 0xFFFFFFFF
#: VRs whose element pydicom's ``Dataset.__getitem__`` does more with than convert it:
#: sequences (items, pixel representation), ``UN`` (may become a known VR, even SQ) and
#: the ambiguous ones (corrected from the data set). They take that full path.
_FULL_PATH_VRS = frozenset({"SQ", "UN", "US or SS", "US or OW", "US or SS or OW", "OB or OW"})
_SPECIFIC_CHARACTER_SET = 0x00080005


def _name(tag: int) -> str:
    return f"element ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _raw(ds: Dataset, tag: int) -> Any:
    """The element as read (a ``RawDataElement`` until decoded), large values left on disk."""
    return ds.get_item(tag, keep_deferred=True)


def _check_raw(raw: RawDataElement, explicit: bool) -> None:
    """The VR and the length of an element as it was read must make sense."""
    if raw.VR is None:
        if explicit:
            # pydicom reads an element whose VR bytes are not two letters as if the data
            # set switched to implicit VR: a corrupt VR, or a data set that is not in its
            # transfer syntax.
            raise CorruptHeader(
                f"{_name(raw.tag)} has no valid VR although the transfer syntax is explicit"
                " VR (corrupt VR bytes, or the data set is not encoded as its transfer"
                " syntax says)"
            )
    elif raw.VR not in _KNOWN_VRS:
        raise CorruptHeader(f"{_name(raw.tag)} has an unknown VR {raw.VR!r}")
    value = raw.value
    if isinstance(value, bytes) and raw.length != _UNDEFINED and len(value) < raw.length:
        raise CorruptHeader(
            f"{_name(raw.tag)} is cut: its length is {raw.length} bytes, only {len(value)} follow"
        )


def _decode_all(ds: Dataset, explicit: bool, as_read: list[Any] | None = None) -> None:
    """Decode every element of the header now (blocking), so that a corrupt one is a
    parse failure here, never an error later (storing, indexing, export rules).

    Values left on disk because they are large (``defer_size``) stay there: they are
    bulk data, not header. Inside sequences, pydicom's tolerance for writers that switch
    to implicit VR is kept.
    """
    # The text encoding ``ds[tag]`` would decode with: the one the data set was read with.
    charset = ds.original_character_set
    # What a cached success also depends on (see _DECODED), the same for every element.
    context = (
        charset if isinstance(charset, str) else tuple(charset or ()),
        config.settings.reading_validation_mode,
        config.convert_wrong_length_to_UN,
    )
    decoded, known, full_path = _DECODED, _KNOWN_VRS, _FULL_PATH_VRS
    # Per element, only cheap checks of built-in types come first: this loop runs for
    # every element of every part (pydicom's tags compare in Python: they are compared,
    # and put in cache keys, as ints).
    for raw in as_read if as_read is not None else list(ds.values()):
        tag = raw.tag
        if isinstance(raw, RawDataElement):
            vr, value, length = raw.VR, raw.value, raw.length
            if (
                vr is None
                or vr not in known
                or (isinstance(value, bytes) and length != _UNDEFINED and len(value) < length)
            ):
                _check_raw(raw, explicit)  # raises, or lets an implicit-VR element pass
            if value is None and length:
                continue
            if (
                charset
                and vr is not None
                and vr not in full_path
                and int(tag) != _SPECIFIC_CHARACTER_SET
            ):
                # An element whose decoding is only ``convert_raw_data_element`` (see
                # _FULL_PATH_VRS): its VR was read (explicit VR; a private element's VR is
                # then not looked up through its creator) and it is not Specific Character
                # Set (decoded with the default encoding). The conversion ``ds[tag]`` does,
                # without keeping its result (a third of the receiver's CPU went to
                # Dataset.__getitem__/__setitem__ bookkeeping): the few elements used later
                # are converted again when read.
                key = None
                if type(value) is bytes and len(value) <= _DECODED_VALUE_MAX:
                    key = (int(tag), vr, raw.is_little_endian, value, context)
                    if key in decoded:
                        continue  # the same bytes decoded without error before
                try:
                    convert_raw_data_element(raw, encoding=charset, ds=ds)
                except Exception as e:  # pydicom raises a wide range on hostile values
                    raise CorruptHeader(f"{_name(tag)} cannot be decoded: {one_line(e)}") from None
                if key is not None:
                    _remember(key)
                continue
        try:
            element = ds[tag]
            items = element.value if element.VR == "SQ" else ()
        except Exception as e:  # pydicom raises a wide range on hostile values
            raise CorruptHeader(f"{_name(tag)} cannot be decoded: {one_line(e)}") from None
        for item in items:
            _decode_all(item, explicit=False)


#: Short element values that decoded without error, keyed by everything the decoding
#: depends on (tag, VR, byte order, the value's bytes, the text encoding and pydicom's
#: reading settings): the instances of one study repeat most of their header (patient,
#: study, series, equipment), so most elements of the next instance are found here and
#: not converted again. Only successes are kept; a value that failed fails every time.
#: Bounded: emptied when full. Shared by the storage threads (dict operations are atomic).
_DECODED: dict[tuple[Any, ...], None] = {}
_DECODED_MAX = 8192
_DECODED_VALUE_MAX = 256


def _remember(key: tuple[Any, ...]) -> None:
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[key] = None


def _position(element: Any) -> int:
    if isinstance(element, RawDataElement):
        return int(element.value_tell)
    return int(getattr(element, "file_tell", None) or 0)


def _check_end(read: list[Any], size: int) -> None:
    """The data set read must end where the part ends, or where reading stopped on
    purpose (at Pixel Data): pydicom silently stops at a cut element header and never
    reads a large value it leaves on disk, so a truncated part would pass for a shorter
    complete one."""
    if not read:
        return
    last = max(read, key=_position)  # the last one read (tags may be out of order)
    if not isinstance(last, RawDataElement) or last.length == _UNDEFINED:
        return  # a sequence of undefined length: its end was found by reading it
    end = last.value_tell + last.length
    if end > size:
        raise CorruptHeader(
            f"{_name(last.tag)} is cut: its length is {last.length} bytes, only"
            f" {max(size - last.value_tell, 0)} follow"
        )
    if 0 < size - end < 8:  # less than an element header: no Pixel Data stopped the read
        raise CorruptHeader(f"the data set ends inside an element header ({size - end} bytes)")
