"""C-STORE statuses read back into instance results, and the SCP's status data sets."""

from __future__ import annotations

import pytest

from stowpair.dimse.status import outcome_of, status_dataset, verdict
from stowpair.exporter.outcome import InstanceStatus


@pytest.mark.parametrize(
    ("status", "result", "retryable"),
    [
        (0x0000, InstanceStatus.COMPLETED, False),
        (0xB000, InstanceStatus.WARNING, False),
        (0xB007, InstanceStatus.WARNING, False),
        (0xA700, InstanceStatus.FAILED, True),
        (0xA701, InstanceStatus.FAILED, True),
        (0x0110, InstanceStatus.FAILED, True),
        (0xA900, InstanceStatus.FAILED, False),
        (0xC000, InstanceStatus.FAILED, False),
        (0x0111, InstanceStatus.FAILED, False),
        (0x0122, InstanceStatus.FAILED, False),
        (None, InstanceStatus.FAILED, True),
    ],
    ids=lambda v: f"{v:04X}" if isinstance(v, int) else str(v),
)
def test_verdict(status: int | None, result: InstanceStatus, retryable: bool) -> None:
    """Each PS3.4 / PS3.7 status class maps to an instance result and retry decision."""
    v = verdict(status)
    assert (v.status, v.retryable) == (result, retryable)


def test_failure_reason_keeps_the_error_comment() -> None:
    """When the SCP gave an Error Comment, it is part of the reason."""
    assert verdict(0xA700, "storage is full").reason.endswith("(0xA700): storage is full")


def test_error_comment_is_short_ascii_and_only_on_failures() -> None:
    """Error Comment (LO) is cut to 64 ASCII characters, and absent on success."""
    ds = status_dataset(0xA900, "é" + "x" * 100)
    assert ds.Status == 0xA900 and len(ds.ErrorComment) == 64 and ds.ErrorComment.isascii()
    assert "ErrorComment" not in status_dataset(0x0000, "fine")
    assert outcome_of(0x0001) == "warning" and outcome_of(0xFE00) == "failure"
