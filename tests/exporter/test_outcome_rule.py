"""dcm4chee's outcome rule and message (reference §1.9)."""

from __future__ import annotations

import pytest

from stowpair.exporter.outcome import TaskStatus
from stowpair.exporter.outcome_rule import entity_text, outcome_message, outcome_status

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
