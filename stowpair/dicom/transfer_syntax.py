"""Transfer Syntax names, the web-app ``transfer-syntax`` list, and dcm4chee's selection rule.

Keywords are spelled as dcm4che's ``UID.forName`` spells them (dcm4che >= 5.22, which took
them from the PS3.6 Table A-1 keywords; pydicom 3 uses the same spellings). Older dcm4che and
pydicom names are accepted as aliases, except where an old name now means another syntax:
``JPEGLossless`` is 1.2.840.10008.1.2.4.57 (PS3.6), not .70 as in dcm4che < 5.22.

The selection rule is dcm4chee-arc-light's STOW-RS exporter rule (docs/dcm4chee.md,
"Transfer syntax selection"): send as stored when the list allows it, else decompress to
Explicit, else Implicit VR Little Endian, else fail the instance. The archive never
re-compresses.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import Enum

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
ENCAPSULATED_UNCOMPRESSED_EVRLE = "1.2.840.10008.1.2.1.98"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE_8BIT = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED_12BIT = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
JPEG_2000_MC_LOSSLESS = "1.2.840.10008.1.2.4.92"
JPEG_2000_MC = "1.2.840.10008.1.2.4.93"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

ANY = "*"

_TS_ARC = "1.2.840.10008.1.2"
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


class Kind(Enum):
    """What the data set's encoding is, which decides whether we can produce native output."""

    NATIVE = "native"  # uncompressed pixel data; may still need re-encoding (BE, Deflate)
    COMPRESSED = "compressed"  # encapsulated image pixel data
    VIDEO = "video"  # encapsulated MPEG/HEVC streams: never decompressed
    REFERENCED = "referenced"  # JPIP / SMPTE ST 2110: pixels are not in the object
    OTHER = "other"  # retired non-image encodings (RFC 2557, XML, Papyrus 3)


@dataclass(frozen=True)
class TransferSyntax:
    uid: str
    keyword: str  # dcm4che UID.forName / PS3.6 keyword
    name: str  # short display name for messages
    kind: Kind


def _ts(uid: str, keyword: str, name: str, kind: Kind = Kind.COMPRESSED) -> TransferSyntax:
    return TransferSyntax(uid, keyword, name, kind)


_N, _V, _R = Kind.NATIVE, Kind.VIDEO, Kind.REFERENCED
_P = "1.2.840.10008.1.2.4."

#: Every Transfer Syntax of PS3.6 Table A-1 that dcm4che names (retired ones too).
TABLE: tuple[TransferSyntax, ...] = (
    _ts(IMPLICIT_VR_LE, "ImplicitVRLittleEndian", "Implicit VR Little Endian", _N),
    _ts(EXPLICIT_VR_LE, "ExplicitVRLittleEndian", "Explicit VR Little Endian", _N),
    _ts(
        ENCAPSULATED_UNCOMPRESSED_EVRLE,
        "EncapsulatedUncompressedExplicitVRLittleEndian",
        "Encapsulated Uncompressed Explicit VR Little Endian",
    ),
    _ts(DEFLATED_EXPLICIT_VR_LE, "DeflatedExplicitVRLittleEndian", "Deflated Explicit VR LE", _N),
    _ts(EXPLICIT_VR_BE, "ExplicitVRBigEndian", "Explicit VR Big Endian", _N),
    _ts(JPEG_BASELINE_8BIT, "JPEGBaseline8Bit", "JPEG Baseline"),
    _ts(JPEG_EXTENDED_12BIT, "JPEGExtended12Bit", "JPEG Extended"),
    _ts(_P + "52", "JPEGExtended35", "JPEG Extended (Process 3 and 5)"),
    _ts(_P + "53", "JPEGSpectralSelectionNonHierarchical68", "JPEG Spectral Selection 6/8"),
    _ts(_P + "54", "JPEGSpectralSelectionNonHierarchical79", "JPEG Spectral Selection 7/9"),
    _ts(_P + "55", "JPEGFullProgressionNonHierarchical1012", "JPEG Full Progression 10/12"),
    _ts(_P + "56", "JPEGFullProgressionNonHierarchical1113", "JPEG Full Progression 11/13"),
    _ts(JPEG_LOSSLESS, "JPEGLossless", "JPEG Lossless (Process 14)"),
    _ts(_P + "58", "JPEGLosslessNonHierarchical15", "JPEG Lossless (Process 15)"),
    _ts(_P + "59", "JPEGExtendedHierarchical1618", "JPEG Extended Hierarchical 16/18"),
    _ts(_P + "60", "JPEGExtendedHierarchical1719", "JPEG Extended Hierarchical 17/19"),
    _ts(_P + "61", "JPEGSpectralSelectionHierarchical2022", "JPEG Spectral Hierarchical 20/22"),
    _ts(_P + "62", "JPEGSpectralSelectionHierarchical2123", "JPEG Spectral Hierarchical 21/23"),
    _ts(_P + "63", "JPEGFullProgressionHierarchical2426", "JPEG Full Progression Hier. 24/26"),
    _ts(_P + "64", "JPEGFullProgressionHierarchical2527", "JPEG Full Progression Hier. 25/27"),
    _ts(_P + "65", "JPEGLosslessHierarchical28", "JPEG Lossless Hierarchical 28"),
    _ts(_P + "66", "JPEGLosslessHierarchical29", "JPEG Lossless Hierarchical 29"),
    _ts(JPEG_LOSSLESS_SV1, "JPEGLosslessSV1", "JPEG Lossless SV1"),
    _ts(JPEG_LS_LOSSLESS, "JPEGLSLossless", "JPEG-LS Lossless"),
    _ts(JPEG_LS_NEAR_LOSSLESS, "JPEGLSNearLossless", "JPEG-LS Near-Lossless"),
    _ts(JPEG_2000_LOSSLESS, "JPEG2000Lossless", "JPEG 2000 Lossless"),
    _ts(JPEG_2000, "JPEG2000", "JPEG 2000"),
    _ts(JPEG_2000_MC_LOSSLESS, "JPEG2000MCLossless", "JPEG 2000 Multi-component Lossless"),
    _ts(JPEG_2000_MC, "JPEG2000MC", "JPEG 2000 Multi-component"),
    _ts(_P + "94", "JPIPReferenced", "JPIP Referenced", _R),
    _ts(_P + "95", "JPIPReferencedDeflate", "JPIP Referenced Deflate", _R),
    _ts(_P + "100", "MPEG2MPML", "MPEG2 Main Profile / Main Level", _V),
    _ts(_P + "100.1", "MPEG2MPMLF", "Fragmentable MPEG2 MP@ML", _V),
    _ts(_P + "101", "MPEG2MPHL", "MPEG2 Main Profile / High Level", _V),
    _ts(_P + "101.1", "MPEG2MPHLF", "Fragmentable MPEG2 MP@HL", _V),
    _ts(_P + "102", "MPEG4HP41", "MPEG-4 AVC/H.264 High Profile 4.1", _V),
    _ts(_P + "102.1", "MPEG4HP41F", "Fragmentable MPEG-4 AVC/H.264 HP 4.1", _V),
    _ts(_P + "103", "MPEG4HP41BD", "MPEG-4 AVC/H.264 BD-compatible HP 4.1", _V),
    _ts(_P + "103.1", "MPEG4HP41BDF", "Fragmentable MPEG-4 AVC/H.264 BD HP 4.1", _V),
    _ts(_P + "104", "MPEG4HP422D", "MPEG-4 AVC/H.264 HP 4.2 2D", _V),
    _ts(_P + "104.1", "MPEG4HP422DF", "Fragmentable MPEG-4 AVC/H.264 HP 4.2 2D", _V),
    _ts(_P + "105", "MPEG4HP423D", "MPEG-4 AVC/H.264 HP 4.2 3D", _V),
    _ts(_P + "105.1", "MPEG4HP423DF", "Fragmentable MPEG-4 AVC/H.264 HP 4.2 3D", _V),
    _ts(_P + "106", "MPEG4HP42STEREO", "MPEG-4 AVC/H.264 Stereo HP 4.2", _V),
    _ts(_P + "106.1", "MPEG4HP42STEREOF", "Fragmentable MPEG-4 AVC/H.264 Stereo HP 4.2", _V),
    _ts(_P + "107", "HEVCMP51", "HEVC/H.265 Main Profile 5.1", _V),
    _ts(_P + "108", "HEVCM10P51", "HEVC/H.265 Main 10 Profile 5.1", _V),
    _ts(_P + "110", "JPEGXLLossless", "JPEG XL Lossless"),
    _ts(_P + "111", "JPEGXLJPEGRecompression", "JPEG XL JPEG Recompression"),
    _ts(_P + "112", "JPEGXL", "JPEG XL"),
    _ts(HTJ2K_LOSSLESS, "HTJ2KLossless", "HTJ2K Lossless"),
    _ts(HTJ2K_LOSSLESS_RPCL, "HTJ2KLosslessRPCL", "HTJ2K Lossless RPCL"),
    _ts(HTJ2K, "HTJ2K", "HTJ2K"),
    _ts(_P + "204", "JPIPHTJ2KReferenced", "JPIP HTJ2K Referenced", _R),
    _ts(_P + "205", "JPIPHTJ2KReferencedDeflate", "JPIP HTJ2K Referenced Deflate", _R),
    _ts(RLE_LOSSLESS, "RLELossless", "RLE Lossless"),
    _ts(
        "1.2.840.10008.1.2.7.1",
        "SMPTEST211020UncompressedProgressiveActiveVideo",
        "SMPTE ST 2110-20 Progressive Video",
        _R,
    ),
    _ts(
        "1.2.840.10008.1.2.7.2",
        "SMPTEST211020UncompressedInterlacedActiveVideo",
        "SMPTE ST 2110-20 Interlaced Video",
        _R,
    ),
    _ts("1.2.840.10008.1.2.7.3", "SMPTEST211030PCMDigitalAudio", "SMPTE ST 2110-30 Audio", _R),
    _ts("1.2.840.10008.1.2.8.1", "DeflatedImageFrameCompression", "Deflated Image Frame"),
    _ts("1.2.840.10008.1.2.6.1", "RFC2557MIMEEncapsulation", "RFC 2557 MIME", Kind.OTHER),
    _ts("1.2.840.10008.1.2.6.2", "XMLEncoding", "XML Encoding", Kind.OTHER),
    _ts(
        "1.2.840.10008.1.20",
        "Papyrus3ImplicitVRLittleEndian",
        "Papyrus 3 Implicit VR LE",
        Kind.OTHER,
    ),
)

#: Older spellings: dcm4che < 5.22 and pydicom < 2.2. ``JPEGLossless`` is deliberately absent
#: (it meant .70 there and means .57 in PS3.6, dcm4che >= 5.22 and pydicom >= 2.2).
ALIASES: dict[str, str] = {
    "JPEGBaseline1": JPEG_BASELINE_8BIT,
    "JPEGBaseline": JPEG_BASELINE_8BIT,
    "JPEGExtended24": JPEG_EXTENDED_12BIT,
    "JPEGExtended": JPEG_EXTENDED_12BIT,
    "JPEGLosslessNonHierarchical14": JPEG_LOSSLESS,
    "JPEGLosslessP14": JPEG_LOSSLESS,
    "JPEGLSLossyNearLossless": JPEG_LS_NEAR_LOSSLESS,
    "JPEGLSLossy": JPEG_LS_NEAR_LOSSLESS,
    "JPEG2000LosslessOnly": JPEG_2000_LOSSLESS,
    "JPEG2000Part2MultiComponentLosslessOnly": JPEG_2000_MC_LOSSLESS,
    "JPEG2000Part2MultiComponent": JPEG_2000_MC,
    "JPEG2000MultiComponentLossless": JPEG_2000_MC_LOSSLESS,
    "JPEG2000MultiComponent": JPEG_2000_MC,
    "MPEG2": _P + "100",
    "MPEG2MainProfileHighLevel": _P + "101",
    "MPEG4AVCH264HighProfileLevel41": _P + "102",
    "MPEG4AVCH264BDCompatibleHighProfileLevel41": _P + "103",
}

BY_UID: dict[str, TransferSyntax] = {ts.uid: ts for ts in TABLE}
_BY_NAME: dict[str, str] = {
    **{k.lower(): v for k, v in ALIASES.items()},
    **{ts.keyword.lower(): ts.uid for ts in TABLE},
}


class UnknownTransferSyntax(ValueError):
    """A ``transfer-syntax`` entry is neither a known keyword nor a usable UID."""


def resolve(name_or_uid: str) -> str:
    """Return the UID for a dcm4che/pydicom keyword (case-insensitive) or a UID.

    A syntactically valid UID outside the standard Transfer Syntax arc (a private one) is
    returned unchanged, as dcm4che does; an unknown UID inside ``1.2.840.10008.1.2`` is
    almost certainly a typo and raises :class:`UnknownTransferSyntax` like an unknown word.
    """
    text = name_or_uid.strip()
    if not text:
        raise UnknownTransferSyntax("empty transfer syntax name: give a UID or a keyword")
    if text[0].isdigit():
        if text in BY_UID:
            return text
        if not _UID_RE.match(text) or len(text) > 64:
            raise UnknownTransferSyntax(f"{text!r} is not a valid UID (digits and dots, max 64)")
        if text.startswith(_TS_ARC + "."):
            close = difflib.get_close_matches(text, list(BY_UID), n=3, cutoff=0.8)
            raise UnknownTransferSyntax(f"unknown transfer syntax UID {text!r}{_hint(close)}")
        return text
    uid = _BY_NAME.get(text.lower())
    if uid is None:
        raise UnknownTransferSyntax(f"unknown transfer syntax {text!r}{_hint(_close(text))}")
    return uid


def _close(text: str) -> list[str]:
    lowered = {ts.keyword.lower(): ts.keyword for ts in TABLE}
    lowered.update({k.lower(): k for k in ALIASES})
    needle = text.lower()
    hits = difflib.get_close_matches(needle, list(lowered), n=3, cutoff=0.6)
    if not hits:
        hits = [k for k in lowered if needle in k][:3]
    return [lowered[h] for h in hits]


def _hint(candidates: list[str]) -> str:
    if candidates:
        return "; did you mean " + ", ".join(candidates) + "?"
    return "; use a UID or a keyword such as ExplicitVRLittleEndian or JPEGLosslessSV1"


def parse_list(text: str) -> tuple[str, ...]:
    """Parse the web-app ``transfer-syntax`` property: comma list of keywords, UIDs or ``*``.

    Items are trimmed, empty items ignored, duplicates dropped (first kept); ``*`` stays
    ``"*"``. Raises :class:`UnknownTransferSyntax` naming the first bad item.
    """
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        uid = ANY if item == ANY else resolve(item)
        if uid not in out:
            out.append(uid)
    return tuple(out)


def keyword(uid: str) -> str:
    """The dcm4che keyword of ``uid``, or ``uid`` itself when it is not in the table."""
    ts = BY_UID.get(uid)
    return ts.keyword if ts else uid


def describe(uid: str) -> str:
    """``"JPEG Lossless SV1 (1.2.840.10008.1.2.4.70)"`` for messages; ``*`` is ``"*"``."""
    if uid == ANY:
        return ANY
    ts = BY_UID.get(uid)
    return f"{ts.name} ({uid})" if ts else f"private or unknown syntax ({uid})"


def is_native(uid: str) -> bool:
    """True for uncompressed encodings: Implicit/Explicit VR LE, Explicit VR BE, Deflated.

    Deflated and Big Endian are not compressed pixel data, yet a receiver that does not
    list them still needs the instance converted to a listed native syntax.
    """
    ts = BY_UID.get(uid)
    return ts is not None and ts.kind is Kind.NATIVE


@dataclass(frozen=True)
class Selection:
    """What to send for one instance: ``target`` None means the instance fails."""

    target: str | None
    transcode: bool
    reason: str


def select(stored_ts: str, accepted: tuple[str, ...]) -> Selection:
    """dcm4chee's STOW-RS exporter rule (docs/transcoding.md), for UIDs from :func:`parse_list`.

    Empty list or ``*`` → as stored; stored in list → as stored; else Explicit VR LE if
    listed; else Implicit VR LE if listed; else no target. Never compresses.
    """
    stored = describe(stored_ts)
    if not accepted or ANY in accepted:
        why = "no transfer-syntax list" if not accepted else "the accepted list contains *"
        return Selection(stored_ts, False, f"sent as stored {stored}: {why}")
    if stored_ts in accepted:
        return Selection(stored_ts, False, f"sent as stored {stored}: it is in the accepted list")
    listed = ", ".join(describe(u) for u in accepted)
    for native in (EXPLICIT_VR_LE, IMPLICIT_VR_LE):
        if native in accepted:
            verb = "converted" if is_native(stored_ts) else "decompressed"
            return Selection(
                native,
                True,
                f"stored transfer syntax {stored} is not in the accepted list ({listed}); "
                f"{verb} to {describe(native)}",
            )
    return Selection(
        None,
        False,
        f"stored transfer syntax {stored} is not in the accepted list ({listed}) and no "
        "native syntax (ExplicitVRLittleEndian, ImplicitVRLittleEndian) is listed; "
        "the archive never re-compresses",
    )
