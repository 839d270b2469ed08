"""Export rules fired on ingest (dcm4chee's ExportScheduler.onStore; docs/dcm4chee.md).

For every received instance, each rule whose conditions match (and whose schedules,
if any, contain the time of the store) creates one export task per (exporter,
entity), or pushes an existing SCHEDULED task for it later (debounce). The task's
scheduled time is ``ceil(now + rule delay)`` over the exporter's schedules, in local
time: a study received during business hours waits for ``hour=18-6``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from stowpair.archive.model import InstanceRecord
from stowpair.config.model import Condition, Config, ExportRule
from stowpair.config.schedule import ceil_epoch, contains_any
from stowpair.queue import events as _events  # noqa: F401  (registers event names)
from stowpair.queue.model import NewTask, Task
from stowpair.queue.store import TaskStore


def attribute_values(
    record: InstanceRecord, attributes: Mapping[str, str], name: str
) -> tuple[str, ...]:
    """The values of one attribute keyword; DICOM multi-values are split on ``\\``.

    ``attributes`` wins; the record supplies the UIDs, Modality, PatientID, StudyDate
    and ``SendingApplicationEntityTitle`` (the record's source) when they are absent.
    """
    fallback = {
        "StudyInstanceUID": record.study_uid,
        "SeriesInstanceUID": record.series_uid,
        "SOPInstanceUID": record.sop_instance_uid,
        "SOPClassUID": record.sop_class_uid,
        "Modality": record.modality,
        "PatientID": record.patient_id,
        "StudyDate": record.study_date,
        "SendingApplicationEntityTitle": record.source,
    }
    raw = attributes.get(name)
    if raw is None:
        raw = fallback.get(name, "")
    return tuple(v.strip() for v in raw.split("\\")) if raw else ()


def condition_matches(
    condition: Condition, record: InstanceRecord, attributes: Mapping[str, str]
) -> bool:
    """``Attr=v1|v2`` matches when any value equals any listed value (exact, no regex);
    ``Attr!=...`` is its negation (so it also matches when the attribute is absent)."""
    values = attribute_values(record, attributes, condition.attribute)
    hit = any(value in condition.values for value in values)
    return hit != condition.negate


def rule_matches(
    rule: ExportRule, record: InstanceRecord, attributes: Mapping[str, str], now: float
) -> bool:
    """All conditions hold and the store happens inside the rule's schedules."""
    if not contains_any(rule.schedules, datetime.fromtimestamp(now)):
        return False
    return all(condition_matches(c, record, attributes) for c in rule.conditions)


class RuleEngine:
    """Turns received instances into export tasks.

    ``scheduler_kick`` is called when a task became due at once (no delay, no
    schedule), so the export starts without waiting for the next poll;
    ``scheduler_wake_at`` (optional) is told when a delayed task becomes due, for the same
    reason; ``on_task`` (optional) sees every task created (True) or postponed (False).
    """

    log = Logger()

    def __init__(
        self,
        config: Config,
        store: TaskStore,
        scheduler_kick: Callable[[], None],
        clock: IReactorTime,
        scheduler_wake_at: Callable[[float], None] | None = None,
        on_task: Callable[[Task, bool], None] | None = None,
    ) -> None:
        self.config = config
        self._on_task = on_task
        self._store = store
        self._kick = scheduler_kick
        self._wake_at = scheduler_wake_at
        self._clock = clock

    def set_config(self, config: Config) -> None:
        """Use reloaded rules and exporters for the next instances."""
        self.config = config

    def on_instance_received(
        self, record: InstanceRecord, attributes: Mapping[str, str]
    ) -> Deferred[None]:
        """Fire export rules for one stored instance; fires when the tasks are stored."""
        return Deferred.fromCoroutine(self._on_instance(record, attributes))

    async def _on_instance(self, record: InstanceRecord, attributes: Mapping[str, str]) -> None:
        now = self._clock.seconds()
        due_now = False
        seen: set[tuple[str, str, str, str]] = set()
        for rule in self.config.rules:
            if not rule_matches(rule, record, attributes, now):
                continue
            for new in self._tasks_for(rule, record, attributes, now):
                key = (new.exporter_id, new.study_uid, new.series_uid, new.sop_uid)
                if key in seen:
                    continue  # two rules, same (exporter, entity): one task
                seen.add(key)
                task, created = await self._store.create_or_postpone(new, rule.entity)
                self._log_task(rule, task.task_id, new, created)
                if self._on_task is not None:
                    self._on_task(task, created)
                due_now = due_now or task.scheduled_time <= now
                if task.scheduled_time > now and self._wake_at is not None:
                    self._wake_at(task.scheduled_time)
        if due_now:
            self._kick()

    def _tasks_for(
        self,
        rule: ExportRule,
        record: InstanceRecord,
        attributes: Mapping[str, str],
        now: float,
    ) -> list[NewTask]:
        series = record.series_uid if rule.entity in ("Series", "Instance") else "*"
        sop = record.sop_instance_uid if rule.entity == "Instance" else "*"
        modalities = attribute_values(record, attributes, "Modality")
        tasks = []
        for exporter_id in rule.exporter_ids:
            exporter = self.config.exporters.get(exporter_id)
            if exporter is None:
                self.log.warn(
                    "Export rule {rule} names exporter {exporter_id}, which is not configured;"
                    " skipped",
                    rule=rule.name,
                    exporter_id=exporter_id,
                    event="rules.unknown_exporter",
                )
                continue
            tasks.append(
                NewTask(
                    device_name=self.config.device.name,
                    queue_name=exporter.queue_name,
                    exporter_id=exporter.exporter_id,
                    local_aet=exporter.ae_title,
                    study_uid=record.study_uid,
                    series_uid=series,
                    sop_uid=sop,
                    scheduled_time=ceil_epoch(exporter.schedules, now + rule.delay),
                    modalities=modalities,
                )
            )
        return tasks

    def _log_task(self, rule: ExportRule, task_id: int, new: NewTask, created: bool) -> None:
        fields = {
            "rule": rule.name,
            "task_id": task_id,
            "exporter_id": new.exporter_id,
            "queue": new.queue_name,
            "study_uid": new.study_uid,
            "series_uid": new.series_uid,
            "sop_uid": new.sop_uid,
            "scheduled_time": new.scheduled_time,
        }
        if created:
            self.log.info(
                "Export rule {rule}: task {task_id} to {exporter_id} for Study {study_uid}",
                trigger="rule",
                event="queue.task.created",
                **fields,
            )
        else:
            self.log.debug(
                "Export rule {rule}: task {task_id} to {exporter_id} postponed",
                event="queue.task.postponed",
                **fields,
            )
