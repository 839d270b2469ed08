"""C-STORE status codes (PS3.4 Table B.2-1, PS3.7 Annex C) in both directions.

The SCP answers with the codes the STOW-RS ingest uses as Failure Reasons (the same
rules): 0xA700 out of resources, 0xA900 data set does not match SOP Class (also invalid
UIDs), 0xC000 cannot understand, 0x0111 duplicate SOP Instance with other content,
0x0110 processing failure. The exporter reads any status back into an instance result.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from stowpair.exporter.outcome import InstanceStatus
from stowpair.exporter.reconcile import failure_reason_text, warning_reason_text

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
#: PS3.7 C.4.2.1.2: an SOP Class the SCP does not support on this association.
SOP_CLASS_NOT_SUPPORTED = 0x0122
#: (0000,0902) Error Comment is LO: at most 64 characters.
MAX_ERROR_COMMENT = 64


def outcome_of(status: int) -> str:
    """``success``, ``warning`` or ``failure`` (PS3.7 Annex C status classes)."""
    if status == SUCCESS:
        return "success"
    if status == 0x0001 or 0xB000 <= status <= 0xBFFF or status in (0x0107, 0x0116):
        return "warning"
    return "failure"


def status_dataset(status: int, comment: str = "") -> Dataset:
    """The response's Status with an Error Comment (failures only), for pynetdicom."""
    ds = Dataset()
    ds.Status = status
    if comment and outcome_of(status) == "failure":
        text = comment.encode("ascii", "replace").decode("ascii").replace("\\", "/")
        ds.ErrorComment = text[:MAX_ERROR_COMMENT]
    return ds


@dataclass(frozen=True)
class StoreVerdict:
    """What a C-STORE response means for the instance sent."""

    status: InstanceStatus
    reason: str = ""
    reason_code: int | None = None
    retryable: bool = False


def verdict(status: int | None, comment: str = "") -> StoreVerdict:
    """The instance result for a C-STORE response status (None: no response)."""
    if status is None:
        return StoreVerdict(
            InstanceStatus.FAILED, "no C-STORE response (association aborted or timed out)",
            retryable=True,
        )  # fmt: skip
    kind = outcome_of(status)
    if kind == "success":
        return StoreVerdict(InstanceStatus.COMPLETED)
    if kind == "warning":
        return StoreVerdict(InstanceStatus.WARNING, warning_reason_text(status), status)
    text, retryable = failure_reason_text(status)
    if comment:
        text = f"{text}: {comment}"
    return StoreVerdict(InstanceStatus.FAILED, f"C-STORE {text}", status, retryable)
