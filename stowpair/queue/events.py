"""Log event names of the queue, the export rules and the dcm4chee REST API."""

from __future__ import annotations

from stowpair.logs import register_events

QUEUE_EVENTS: dict[str, tuple[str, ...]] = {
    "queue.task.created": (
        "task_id", "exporter_id", "queue", "study_uid", "series_uid", "sop_uid",
        "scheduled_time", "trigger",
    ),
    "queue.task.postponed": ("task_id", "exporter_id", "study_uid", "scheduled_time"),
    "queue.task.state": (
        "task_id", "exporter_id", "queue", "study_uid", "previous", "status", "failures",
        "message",
    ),
    "queue.task.retry": ("task_id", "exporter_id", "failures", "delay", "scheduled_time"),
    "queue.task.lost": ("task_id", "status"),
    "queue.task.rescheduled": ("task_id", "exporter_id"),
    "queue.task.info.error": ("task_id", "error"),
    "queue.task.error": ("task_id", "exporter_id", "error"),
    "queue.startup.reset": ("count", "device"),
    "queue.poll.error": ("error",),
    "queue.purged": ("queue", "status", "count"),
    "queue.drain": ("in_flight", "action"),
    "rules.unknown_exporter": ("rule", "exporter_id"),
    "api.export.requested": ("aet", "exporter_id", "study_uid", "series_uid", "sop_uid", "task_id"),
    "api.error": ("method", "uri", "error"),
    "api.request": ("method", "uri", "peer", "status"),
}  # fmt: skip

register_events(QUEUE_EVENTS)
