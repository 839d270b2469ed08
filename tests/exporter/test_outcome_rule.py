"""dcm4chee's outcome rule and message (docs/dcm4chee.md, "Outcome rule and message")."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from stowpair.exporter.outcome import InstanceOutcome, InstanceStatus, Outcome, TaskStatus
from stowpair.exporter.outcome_rule import (
    entity_text,
    failure_summary,
    outcome_message,
    outcome_status,
)

S = "1.2.3"


@pytest.mark.parametrize(
    ("counts", "status", "message"),
    [
        ((3, 3, 0, 0, 0), TaskStatus.COMPLETED, f"Export Study[uid={S}] to W - completed:3"),
        (
            (3, 2, 1, 0, 0),
            TaskStatus.COMPLETED,
            f"Export Study[uid={S}] to W - completed:2, warning:1",
        ),
        (
            (3, 0, 0, 3, 0),
            TaskStatus.WARNING,
            f"Export Study[uid={S}] to W - completed:0, failed:3",
        ),
        (
            (3, 1, 0, 2, 1),
            TaskStatus.FAILED,
            f"Export Study[uid={S}] to W - completed:1, failed:2, missing:1",
        ),
        (
            (5, 1, 1, 1, 0),
            TaskStatus.CANCELED,
            f"Export Study[uid={S}] to W canceled - remaining:2, completed:1, warning:1, failed:1",
        ),
    ],
    ids=[
        "completed",
        "warnings-still-completed",
        "all-failed-is-warning",
        "missing-failed",
        "canceled",
    ],
)
def test_outcome(counts: tuple[int, int, int, int, int], status: TaskStatus, message: str) -> None:
    """When counts are given, status and message follow dcm4chee exactly."""
    assert outcome_status(*counts) is status
    assert outcome_message(entity_text(S), "W", *counts) == message


def test_entity_prefixes() -> None:
    """When series and instance are set, the entity reads Instance of Series of Study."""
    assert entity_text("1", "2") == "Series[uid=2] of Study[uid=1]"
    assert entity_text("1", "2", "3") == "Instance[uid=3] of Series[uid=2] of Study[uid=1]"


def _failed(reason: str, status: InstanceStatus = InstanceStatus.FAILED) -> InstanceOutcome:
    return InstanceOutcome(
        S, "1.2.3.4", generate_uid(), "1.2.840.10008.5.1.4.1.1.2", status, reason
    )


@pytest.mark.parametrize(
    ("reasons", "summary"),
    [
        ([], None),
        (["x"] * 3, "3 instances failed: x"),
        (["a", "b", "b"], "2 instances failed: b; 1 instance failed: a"),
        (["a", "b", "c", "d", "d"], "2 instances failed: d; 1 instance failed: a; "
         "1 instance failed: b; and 1 other reasons"),
    ],
    ids=["none", "one-reason", "most-frequent-first", "capped"],
)  # fmt: skip
def test_failure_summary(reasons: list[str], summary: str | None) -> None:
    """When instances failed, the summary lists their reasons with counts, most first."""
    instances = (_failed("ok", InstanceStatus.COMPLETED), *(_failed(r) for r in reasons))
    result = Outcome(TaskStatus.WARNING, "m", failed=len(reasons), instances=instances)
    assert failure_summary(result) == summary
