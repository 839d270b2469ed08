"""Export rules for ``stowpair import``: tasks written to the service's task store.

The import runs in its own process, whether or not the service runs. Every newly stored
instance goes through the same :class:`~stowpair.archive.rules.RuleEngine` as the STOW-RS
ingest, and the tasks land in the task store the service uses (the SQLite file beside
the index, or the cluster's PostgreSQL database), in one transaction each, with the same
debounce. A running service starts them at its next
queue poll (``task_polling_interval``); a stopped one when it starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from stowpair.archive.model import InstanceRecord
from stowpair.archive.rules import RuleEngine
from stowpair.config.model import Config
from stowpair.logs import register_events
from stowpair.queue.model import Task
from stowpair.queue.store import TaskStore

register_events({"archive.import.rules_failed": ("sop_instance_uid", "error")})


class ImportRules:
    """Fires ``config``'s export rules for imported instances into ``store``."""

    log = Logger()

    def __init__(self, config: Config, store: TaskStore, clock: Any) -> None:
        self.store = store
        self.created: dict[int, Task] = {}
        self.postponed: set[int] = set()
        self.failed = 0
        self.engine = RuleEngine(config, store, lambda: None, clock, on_task=self._seen)

    @classmethod
    def open(cls, config: Config, store: TaskStore, clock: Any) -> ImportRules | None:
        """None when the configuration has no rules. ``store`` stays the caller's."""
        if not config.rules:
            return None
        return cls(config, store, clock)

    def _seen(self, task: Task, created: bool) -> None:
        if created:
            self.created[task.task_id] = task
        elif task.task_id not in self.created:
            self.postponed.add(task.task_id)

    def on_stored(self, record: InstanceRecord, attributes: Mapping[str, str]) -> Deferred[None]:
        """Fire the rules; a failure (task store locked, disk full) is counted and
        logged, and the import goes on."""
        d = self.engine.on_instance_received(record, attributes)

        def failed(failure: Any) -> None:
            self.failed += 1
            self.log.failure(
                "Export rules could not run for {sop_instance_uid}: {error}",
                failure,
                sop_instance_uid=record.sop_instance_uid,
                error=str(failure.value),
                event="archive.import.rules_failed",
            )

        return d.addErrback(failed)

    def lines(self) -> list[str]:
        """What the rules did, for the end of ``stowpair import``."""
        lines = []
        for task in self.created.values():
            lines.append(
                f"export task {task.task_id} to {task.exporter_id} queued for Study"
                f" {task.study_uid}"
            )
        if self.postponed:
            ids = ", ".join(str(i) for i in sorted(self.postponed))
            lines.append(f"export task(s) {ids} postponed: more instances of their entity")
        if self.created or self.postponed:
            lines.append(
                "a running stowpair starts them at its next queue poll; a stopped one when"
                " it starts"
            )
        if self.failed:
            lines.append(
                f"export rules could not run for {self.failed} instance(s); see the log"
                " (archive.import.rules_failed)"
            )
        return lines
