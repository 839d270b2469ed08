"""Transfer Syntax keywords as dcm4che's ``UID.forName`` spells them (PS3.6 Table A-1).

The ``transfer-syntax`` Web Application property accepts these keywords or dotted UIDs
(docs/dcm4chee.md, "Web Application properties"); an item starting with a letter is a
keyword. Only non-retired transfer syntaxes plus Explicit VR Big Endian (retired, still
sent by old modalities) are listed.
"""

from __future__ import annotations

_BASE = "1.2.840.10008.1.2"
_JPEG = _BASE + ".4"

TS_KEYWORDS: dict[str, str] = {
    "ImplicitVRLittleEndian": _BASE,
    "ExplicitVRLittleEndian": _BASE + ".1",
    "EncapsulatedUncompressedExplicitVRLittleEndian": _BASE + ".1.98",
    "DeflatedExplicitVRLittleEndian": _BASE + ".1.99",
    "ExplicitVRBigEndian": _BASE + ".2",
    "JPEGBaseline8Bit": _JPEG + ".50",
    "JPEGExtended12Bit": _JPEG + ".51",
    "JPEGLossless": _JPEG + ".57",
    "JPEGLosslessSV1": _JPEG + ".70",
    "JPEGLSLossless": _JPEG + ".80",
    "JPEGLSNearLossless": _JPEG + ".81",
    "JPEG2000Lossless": _JPEG + ".90",
    "JPEG2000": _JPEG + ".91",
    "JPEG2000MCLossless": _JPEG + ".92",
    "JPEG2000MC": _JPEG + ".93",
    "JPIPReferenced": _JPEG + ".94",
    "JPIPReferencedDeflate": _JPEG + ".95",
    "MPEG2MPML": _JPEG + ".100",
    "MPEG2MPMLF": _JPEG + ".100.1",
    "MPEG2MPHL": _JPEG + ".101",
    "MPEG2MPHLF": _JPEG + ".101.1",
    "MPEG4HP41": _JPEG + ".102",
    "MPEG4HP41F": _JPEG + ".102.1",
    "MPEG4HP41BD": _JPEG + ".103",
    "MPEG4HP41BDF": _JPEG + ".103.1",
    "MPEG4HP422D": _JPEG + ".104",
    "MPEG4HP422DF": _JPEG + ".104.1",
    "MPEG4HP423D": _JPEG + ".105",
    "MPEG4HP423DF": _JPEG + ".105.1",
    "MPEG4HP42STEREO": _JPEG + ".106",
    "MPEG4HP42STEREOF": _JPEG + ".106.1",
    "HEVCMP51": _JPEG + ".107",
    "HEVCM10P51": _JPEG + ".108",
    "JPEGXLLossless": _JPEG + ".110",
    "JPEGXLJPEGRecompression": _JPEG + ".111",
    "JPEGXL": _JPEG + ".112",
    "HTJ2KLossless": _JPEG + ".201",
    "HTJ2KLosslessRPCL": _JPEG + ".202",
    "HTJ2K": _JPEG + ".203",
    "JPIPHTJ2KReferenced": _JPEG + ".204",
    "JPIPHTJ2KReferencedDeflate": _JPEG + ".205",
    "RLELossless": _BASE + ".5",
    "SMPTEST211020UncompressedProgressiveActiveVideo": _BASE + ".7.1",
    "SMPTEST211020UncompressedInterlacedActiveVideo": _BASE + ".7.2",
    "SMPTEST211030PCMDigitalAudio": _BASE + ".7.3",
    "DeflatedImageFrameCompression": _BASE + ".8.1",
}
