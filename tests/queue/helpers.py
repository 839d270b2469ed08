"""Fakes and builders for the queue tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from stowpair.config.model import Config, Device, Exporter, Queue, WebApplication
from stowpair.config.schedule import parse_schedules
from stowpair.exporter.outcome import (
    Cancellation,
    ExportRequest,
    InstanceOutcome,
    InstanceStatus,
    Outcome,
    TaskStatus,
)
from stowpair.exporter.outcome_rule import build_outcome, entity_text
from stowpair.queue.model import NewTask, Task
from stowpair.queue.store import SQLiteTaskStore

STUDY = "1.2.3.4"
#: Thursday 2015-10-08 10:00 local time (the dcm4chee schedule test vector).
THURSDAY_10 = datetime(2015, 10, 8, 10, 0).timestamp()


def clock_at(when: float = THURSDAY_10) -> Clock:
    clock = Clock()
    clock.advance(when)
    return clock


def make_config(queue: Queue | None = None, **config: Any) -> Config:
    queue = queue or Queue("Export1")
    exporter = Exporter("StowExporter", "stow:stowrsd", queue.name, ae_title="STOWPAIR")
    return Config(
        device=config.pop("device", Device("stowpair", ("STOWPAIR",))),
        webapps={"stowrsd": WebApplication("stowrsd", "http://127.0.0.1:18080/stowrs")},
        exporters={exporter.exporter_id: exporter, **config.pop("exporters", {})},
        queues={queue.name: queue},
        **config,
    )


def schedules(*texts: str) -> Any:
    return parse_schedules(texts)


def new_task(when: float, study: str = STUDY, **kw: Any) -> NewTask:
    values: dict[str, Any] = {
        "device_name": "stowpair",
        "queue_name": "Export1",
        "exporter_id": "StowExporter",
        "local_aet": "STOWPAIR",
        "study_uid": study,
        "scheduled_time": when,
    }
    values.update(kw)
    return NewTask(**values)


def memory_store(clock: Clock) -> SQLiteTaskStore:
    return SQLiteTaskStore(":memory:", clock)


def result_of(d: Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired (inline store)."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    if hasattr(box[0], "raiseException"):
        box[0].raiseException()
    return box[0]


def get_task(store: SQLiteTaskStore, task_id: int) -> Task:
    task = result_of(store.get(task_id))
    assert task is not None
    return task


@dataclass
class Call:
    request: ExportRequest
    cancellation: Cancellation
    deferred: Deferred[Outcome]


@dataclass
class FakeProvider:
    """An ExporterProvider whose attempts the test answers by hand."""

    calls: list[Call] = field(default_factory=list)

    def export(self, request: ExportRequest, cancellation: Cancellation) -> Deferred[Outcome]:
        d: Deferred[Outcome] = Deferred()
        self.calls.append(Call(request, cancellation, d))
        return d


def instance(sop: str, status: InstanceStatus) -> InstanceOutcome:
    return InstanceOutcome(STUDY, "1.2.3.4.5", sop, "1.2.840.10008.5.1.4.1.1.7", status)


def outcome_for(
    request: ExportRequest,
    instances: Sequence[InstanceOutcome],
    matches: int | None = None,
    retry_after: float | None = None,
) -> Outcome:
    """The fake provider's Outcome for one attempt's per-instance results, built with the
    real :func:`build_outcome`: the instances of ``request.already_done`` count as
    delivered, and the entity has ``already + len(instances)`` instances unless
    ``matches`` says more (instances never tried, as in a cancel). The contract test in
    tests/exporter/test_outcome_contract.py checks the real StowExporter agrees."""
    already = len(request.already_done)
    return build_outcome(
        entity_text(request.study_uid, request.series_uid, request.sop_uid),
        request.exporter.webapp_name,
        instances,
        already + len(instances) if matches is None else matches,
        already,
        retry_after,
    )


def outcome(
    status: TaskStatus,
    *instances: InstanceOutcome,
    request: ExportRequest | None = None,
    matches: int | None = None,
    retry_after: float | None = None,
) -> Outcome:
    """:func:`outcome_for` a request of the test study (``request`` for a retry);
    ``status`` is the test's expectation, checked against the real rule."""
    if request is None:
        request = ExportRequest(make_config().exporters["StowExporter"], STUDY)
    built = outcome_for(request, instances, matches, retry_after)
    assert built.status is status, f"these results give {built.status}, not {status}"
    return built
