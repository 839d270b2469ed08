"""TEMPORARY stand-in for ``stowpair.dicom.transfer_syntax.select`` (transcode helper).

dcm4chee's rule (reference §1.6); removed when the transcode branch is merged.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"


@dataclass(frozen=True)
class Selection:
    target: str | None
    transcode: bool
    reason: str


def select(stored_ts: str, accepted: tuple[str, ...]) -> Selection:
    if not accepted or "*" in accepted or stored_ts in accepted:
        return Selection(stored_ts, False, "as stored")
    for native in (EXPLICIT_VR_LE, IMPLICIT_VR_LE):
        if native in accepted:
            return Selection(native, True, f"decompress to {native}")
    return Selection(
        None,
        False,
        f"stored transfer syntax {stored_ts} is not in transfer-syntax and "
        "neither Explicit nor Implicit VR Little Endian is listed",
    )
