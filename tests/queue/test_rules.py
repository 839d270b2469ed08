"""Export rules on ingest (docs/dcm4chee.md, "Export rules and debounce")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock

from stowpair.archive.model import InstanceRecord
from stowpair.archive.rules import RuleEngine, condition_matches
from stowpair.config.model import Condition, Exporter, ExportRule
from stowpair.queue.model import TaskFilter
from stowpair.queue.store import SQLiteTaskStore
from tests.queue.helpers import clock_at, make_config, memory_store, result_of, schedules


def record(series: str = "1.2.3.1", sop: str = "1.2.3.1.1", **kw: Any) -> InstanceRecord:
    values: dict[str, Any] = {"modality": "CT", "source": "MODALITY1"}
    values.update(kw)
    return InstanceRecord(
        "1.2.3", series, sop, "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1",
        Path("/x.dcm"), 10, **values,
    )  # fmt: skip


@dataclass
class Rig:
    engine: RuleEngine
    store: SQLiteTaskStore
    clock: Clock
    kicks: list[None] = field(default_factory=list)

    def receive(self, rec: InstanceRecord, **attributes: str) -> None:
        result_of(self.engine.on_instance_received(rec, attributes))

    def tasks(self) -> list[Any]:
        return list(result_of(self.store.find(TaskFilter(order_by="createdTime",
                                                           descending=False))))  # fmt: skip


def rig(*rules: ExportRule, exporter_schedules: tuple[str, ...] = ()) -> Rig:
    clock = clock_at()
    store = memory_store(clock)
    exporter = Exporter("StowExporter", "stow:stowrsd", "Export1",
                        schedules=schedules(*exporter_schedules))  # fmt: skip
    config = make_config(rules=rules, exporters={"StowExporter": exporter})
    kicks: list[None] = []
    engine = RuleEngine(config, store, lambda: kicks.append(None), clock)
    return Rig(engine, store, clock, kicks)


def study_rule(*conditions: Condition, **kw: Any) -> ExportRule:
    return ExportRule(kw.pop("name", "r"), kw.pop("entity", "Study"), ("StowExporter",),
                      conditions, **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        (Condition("Modality", ("CT", "MR")), {}, True),
        (Condition("Modality", ("CT", "MR")), {"Modality": "US"}, False),
        (Condition("Modality", ("PT",)), {"Modality": "CT\\PT"}, True),
        (Condition("Modality", ("CT",), negate=True), {}, False),
        (Condition("Modality", ("US",), negate=True), {}, True),
        (Condition("SendingApplicationEntityTitle", ("MODALITY1",)), {}, True),
        (Condition("SendingApplicationEntityTitle", ("OTHER",)), {}, False),
        (Condition("BodyPartExamined", ("HEAD",)), {}, False),
        (Condition("BodyPartExamined", ("HEAD",), negate=True), {}, True),
        (Condition("Modality", ("C.",)), {}, False),
    ],
    ids=["any-of", "no-match", "multi-valued", "negated-match", "negated-other", "sending-ae",
         "sending-ae-other", "absent", "absent-negated", "no-regex"],
)  # fmt: skip
def test_conditions(condition: Condition, attributes: dict[str, str], expected: bool) -> None:
    """When a condition is evaluated on an instance, it matches exactly as listed."""
    assert condition_matches(condition, record(), attributes) is expected


def test_matching_rule_creates_task_and_kicks() -> None:
    """When an instance matches a rule without delay, one task is created and the queue kicked."""
    r = rig(study_rule(Condition("Modality", ("CT", "MR"))))
    r.receive(record())
    (task,) = r.tasks()
    assert (task.exporter_id, task.study_uid, task.series_uid, task.modalities) == (
        "StowExporter", "1.2.3", "*", ("CT",),
    )  # fmt: skip
    assert task.scheduled_time == r.clock.seconds() and len(r.kicks) == 1


def test_non_matching_instance_creates_nothing() -> None:
    """When no rule matches, no task is created."""
    r = rig(study_rule(Condition("Modality", ("MR",))))
    r.receive(record())
    assert r.tasks() == [] and r.kicks == []


def test_rule_schedule_is_a_condition_on_the_store_time() -> None:
    """When a rule has hour=18-6 and the instance arrives at 10:00, the rule does not match."""
    r = rig(study_rule(schedules=schedules("hour=18-6")))
    r.receive(record())
    assert r.tasks() == []


def test_exporter_schedule_defers_to_next_window() -> None:
    """When the exporter has hour=18-6, a study received at 10:00 is scheduled at 18:00."""
    r = rig(study_rule(), exporter_schedules=("hour=18-6", "hour=* dayOfWeek=0,6"))
    r.receive(record())
    (task,) = r.tasks()
    assert task.scheduled_time == datetime(2015, 10, 8, 18, 0).timestamp()
    assert r.kicks == []


def test_delay_debounces_one_study() -> None:
    """When instances of one study keep arriving, its one task moves to last arrival + delay."""
    r = rig(study_rule(delay=60.0))
    r.receive(record(sop="1"))
    r.clock.advance(30)
    r.receive(record(sop="2", modality="SR"))
    (task,) = r.tasks()
    assert task.scheduled_time == r.clock.seconds() + 60
    assert task.modalities == ("CT", "SR")


def test_series_entity_makes_one_task_per_series() -> None:
    """When the rule entity is Series, each series gets its own task."""
    r = rig(study_rule(entity="Series"))
    for series, sop in (("1.1", "a"), ("1.1", "b"), ("1.2", "c")):
        r.receive(record(series, sop))
    assert [t.series_uid for t in r.tasks()] == ["1.1", "1.2"]


def test_instance_entity_widens_pending_task() -> None:
    """When the rule entity is Instance, a second instance widens the pending task's SOP to *."""
    r = rig(study_rule(entity="Instance", delay=60.0))
    r.receive(record(sop="a"))
    r.receive(record(sop="b"))
    (task,) = r.tasks()
    assert (task.series_uid, task.sop_uid) == ("1.2.3.1", "*")


def test_two_rules_same_exporter_make_one_task() -> None:
    """When two rules name the same exporter and entity, one task is created."""
    r = rig(study_rule(name="a"), study_rule(Condition("Modality", ("CT",)), name="b"))
    r.receive(record())
    assert len(r.tasks()) == 1


def test_unknown_exporter_is_skipped() -> None:
    """When a rule names an exporter that is not configured, it is skipped, not a crash."""
    r = rig(ExportRule("r", "Study", ("Nope", "StowExporter")))
    r.receive(record())
    assert [t.exporter_id for t in r.tasks()] == ["StowExporter"]


def test_delayed_task_asks_for_a_wake_up() -> None:
    """When a rule's task is due later, the engine tells the scheduler when, each time."""
    clock = clock_at()
    store = memory_store(clock)
    exporter = Exporter("StowExporter", "stow:x", "Export1")
    config = make_config(rules=(study_rule(delay=5.0),), exporters={"StowExporter": exporter})
    wakes: list[float] = []
    engine = RuleEngine(config, store, lambda: None, clock, wakes.append)
    result_of(engine.on_instance_received(record(sop="1"), {}))
    clock.advance(2)
    result_of(engine.on_instance_received(record(sop="2"), {}))
    assert wakes == [clock.seconds() - 2 + 5, clock.seconds() + 5]
