"""The queue's fake provider and the real StowExporter turn the same per-instance
results into the same Outcome (status, message, counts, instances, Retry-After)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from stowpair.exporter.outcome import Cancellation, ExportRequest, TaskStatus
from tests.exporter.conftest import Run, Sink
from tests.exporter.support import exporter_for, make_study, webapp
from tests.queue.helpers import outcome_for


def _all_complete(records: list[Any], sink: Sink) -> dict[str, Any]:
    return {}


def _one_refused(records: list[Any], sink: Sink) -> dict[str, Any]:
    sink.behave(fail={records[1].sop_instance_uid: 0xA900})
    return {}


def _warnings(records: list[Any], sink: Sink) -> dict[str, Any]:
    sink.behave(warning=0xB000)
    return {}


def _retry_after_partial_delivery(records: list[Any], sink: Sink) -> dict[str, Any]:
    return {"already_done": frozenset({records[0].sop_instance_uid})}


def _missing_file(records: list[Any], sink: Sink) -> dict[str, Any]:
    records[2].path.unlink()
    return {}


def _server_down(records: list[Any], sink: Sink) -> dict[str, Any]:
    sink.behave(status=503, headers={"Retry-After": "120"})
    return {}


def _cancelled(records: list[Any], sink: Sink) -> dict[str, Any]:
    cancellation = Cancellation()
    cancellation.cancel()
    return {"cancellation": cancellation}


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        (_all_complete, TaskStatus.COMPLETED),
        (_one_refused, TaskStatus.WARNING),
        (_warnings, TaskStatus.COMPLETED),
        (_retry_after_partial_delivery, TaskStatus.COMPLETED),
        (_missing_file, TaskStatus.FAILED),
        (_server_down, TaskStatus.WARNING),
        (_cancelled, TaskStatus.CANCELED),
    ],
    ids=["completed", "refused", "warnings", "retry", "missing", "server-down", "cancelled"],
)
@pytest_twisted.ensureDeferred
async def test_fake_and_real_exporter_build_the_same_outcome(
    tmp_path: Path, sink: Sink, run_export: Run, setup: Any, status: TaskStatus
) -> None:
    """When the real exporter reports per-instance results, the queue's fake builds the
    same Outcome from them; the case ends with the status dcm4chee's rule gives."""
    records = make_study(tmp_path / "s", 3)
    options = setup(records, sink)
    real = await run_export(records, [webapp(sink.url)], **options)
    options.pop("cancellation", None)
    request = ExportRequest(exporter_for(), records[0].study_uid, **options)
    assert real.status is status
    assert outcome_for(request, real.instances, retry_after=real.retry_after) == real
