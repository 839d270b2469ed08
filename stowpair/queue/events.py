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
        "message", "device", "epoch",
    ),
    "queue.task.retry": ("task_id", "exporter_id", "failures", "delay", "scheduled_time"),
    "queue.task.lost": ("task_id", "status"),
    "queue.task.rescheduled": ("task_id", "exporter_id"),
    "queue.task.info.error": ("task_id", "error"),
    "queue.task.error": ("task_id", "exporter_id", "error"),
    "queue.task.unwritten": ("task_id", "exporter_id", "error"),
    "queue.task.lease_lost": ("task_id", "exporter_id", "device", "epoch", "holder"),
    "queue.task.taken_over": (
        "task_id", "exporter_id", "study_uid", "previous_device", "previous_epoch", "device",
        "lease", "delivered", "status",
    ),
    "queue.paused": ("error",),
    "queue.resumed": ("paused",),
    "cluster.heartbeat.failed": ("device", "error"),
    "cluster.database.available": ("device", "outage"),
    "cluster.node.cut_off": ("device", "silent", "lease", "in_flight"),
    "cluster.node.duplicate": ("device", "process", "ago"),
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
