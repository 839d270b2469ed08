"""Each metric from the log event it reads (docs/metrics.md, docs/logging.md)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from stowpair.metrics.events import EventMetrics, reason_label, status_class

EXPORT_REQUEST = {
    "event": "exporter.request",
    "exporter": "StowExporter",
    "webapp": "stowrsd",
    "url": "http://127.0.0.1:18080/stowrs/studies",
    "instances": 5,
    "bytes": 5000,
    "http_status": 202,
    "completed": 3,
    "warning": 1,
    "failed": 1,
    "bytes_by_outcome": {"completed": 3000, "warning": 1000, "failed": 1000},
    "reason": "",
    "elapsed": 0.2,
}

# (id, event, metric sample name, labels, expected value)
CASES: list[tuple[str, dict[str, Any], str, dict[str, str], float]] = [
    ("exported completed", EXPORT_REQUEST, "stowpair_exported_instances_total",
     {"exporter": "StowExporter", "outcome": "completed"}, 3),
    ("exported warning", EXPORT_REQUEST, "stowpair_exported_instances_total",
     {"exporter": "StowExporter", "outcome": "warning"}, 1),
    ("exported failed", EXPORT_REQUEST, "stowpair_exported_instances_total",
     {"exporter": "StowExporter", "outcome": "failed"}, 1),
    ("exported bytes", EXPORT_REQUEST, "stowpair_exported_bytes_total",
     {"exporter": "StowExporter", "outcome": "completed"}, 3000),
    ("request latency count", EXPORT_REQUEST, "stowpair_export_request_duration_seconds_count",
     {"exporter": "StowExporter", "status_class": "2xx"}, 1),
    ("request latency bucket", EXPORT_REQUEST, "stowpair_export_request_duration_seconds_bucket",
     {"exporter": "StowExporter", "status_class": "2xx", "le": "0.25"}, 1),
    ("request latency sum", EXPORT_REQUEST, "stowpair_export_request_duration_seconds_sum",
     {"exporter": "StowExporter", "status_class": "2xx"}, 0.2),
    ("transport error", {**EXPORT_REQUEST, "http_status": None, "completed": 0, "warning": 0,
                         "failed": 5}, "stowpair_export_request_duration_seconds_count",
     {"exporter": "StowExporter", "status_class": "error"}, 1),
    ("synchronous export", {**EXPORT_REQUEST, "exporter": ""},
     "stowpair_exported_instances_total", {"exporter": "stowrs:stowrsd", "outcome": "completed"},
     3),
    ("dicom store", {"event": "exporter.dicom.store", "exporter": "PACS", "outcome": "success",
                     "status": 0, "bytes": 700}, "stowpair_exported_bytes_total",
     {"exporter": "PACS", "outcome": "completed"}, 700),
    ("dicom store refused", {"event": "exporter.dicom.store", "exporter": "PACS",
                             "outcome": "failure", "status": 0xA700, "bytes": 0},
     "stowpair_exported_instances_total", {"exporter": "PACS", "outcome": "failed"}, 1),
    ("export attempt", {"event": "exporter.export", "exporter": "StowExporter",
                        "status": "COMPLETED"}, "stowpair_exports_total",
     {"exporter": "StowExporter", "status": "COMPLETED"}, 1),
    ("dicom export attempt", {"event": "exporter.dicom.export", "exporter": "PACS",
                              "status": "FAILED"}, "stowpair_exports_total",
     {"exporter": "PACS", "status": "FAILED"}, 1),
    ("retry", {"event": "queue.task.retry", "task_id": 4, "exporter_id": "StowExporter",
               "failures": 1, "delay": 30}, "stowpair_task_retries_total",
     {"exporter": "StowExporter"}, 1),
    ("task finished", {"event": "queue.task.state", "task_id": 4, "exporter_id": "StowExporter",
                       "queue": "Export1", "previous": "IN PROCESS", "status": "FAILED"},
     "stowpair_tasks_finished_total", {"exporter": "StowExporter", "status": "FAILED"}, 1),
    ("receiver request", {"event": "receiver.request", "endpoint": "ingest", "status": 202,
                          "bytes": 1234}, "stowpair_receiver_requests_total",
     {"endpoint": "ingest", "status": "202"}, 1),
    ("receiver bytes", {"event": "receiver.request", "endpoint": "emulator", "status": 200,
                        "bytes": 1234}, "stowpair_receiver_received_bytes_total",
     {"endpoint": "emulator"}, 1234),
    ("receiver stored", {"event": "receiver.instance.stored", "endpoint": "stowrsd", "size": 9},
     "stowpair_receiver_instances_stored_total", {"endpoint": "stowrsd"}, 1),
    ("receiver refused", {"event": "receiver.instance.failed", "endpoint": "ingest",
                          "reason": 0xA900}, "stowpair_instances_refused_total",
     {"endpoint": "ingest", "reason": "0xA900"}, 1),
    ("scp refused", {"event": "dimse.store", "outcome": "failure", "status": 0xA700},
     "stowpair_instances_refused_total", {"endpoint": "dimse", "reason": "0xA700"}, 1),
    ("scp store", {"event": "dimse.store", "outcome": "success", "status": 0},
     "stowpair_dimse_cstores_total", {"role": "scp", "outcome": "success"}, 1),
    ("scu store", {"event": "exporter.dicom.store", "exporter": "PACS", "outcome": "warning",
                   "status": 0xB000, "bytes": 5}, "stowpair_dimse_cstores_total",
     {"role": "scu", "outcome": "warning"}, 1),
    ("scp association", {"event": "dimse.association", "state": "accepted"},
     "stowpair_dimse_associations_total", {"role": "scp", "state": "accepted"}, 1),
    ("scu association", {"event": "exporter.dicom.association", "exporter": "PACS",
                         "state": "refused"}, "stowpair_dimse_associations_total",
     {"role": "scu", "state": "refused"}, 1),
    ("token fetched", {"event": "auth.token.fetched", "client": "kc", "reason": "first"},
     "stowpair_token_requests_total", {"client": "kc", "outcome": "success"}, 1),
    ("token failed", {"event": "auth.token.failed", "client": "kc"},
     "stowpair_token_requests_total", {"client": "kc", "outcome": "failure"}, 1),
    ("auth refused", {"event": "rest.auth.refused", "reason": "password", "status": 401},
     "stowpair_rest_auth_refusals_total", {"reason": "password"}, 1),
    ("token invalidated", {"event": "auth.token.invalidated", "client": "kc"},
     "stowpair_token_invalidations_total", {"client": "kc"}, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("event", "name", "labels", "value"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_event_feeds_metric(event: dict[str, Any], name: str, labels: dict[str, str],
                            value: float) -> None:  # fmt: skip
    """When the documented event is logged, its metric shows the event's figure."""
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    metrics(event)
    assert registry.get_sample_value(name, labels) == pytest.approx(value)


def test_events_add_up() -> None:
    """When the same event is logged twice, counters hold the sum."""
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    metrics(EXPORT_REQUEST)
    metrics(EXPORT_REQUEST)
    labels = {"exporter": "StowExporter", "outcome": "completed"}
    assert registry.get_sample_value("stowpair_exported_instances_total", labels) == 6


def test_unrelated_events_change_nothing() -> None:
    """When an event no metric reads is logged, no sample appears."""
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    before = {s.name for m in registry.collect() for s in m.samples}
    metrics({"event": "queue.task.created", "task_id": 1})
    metrics({"log_format": "no event name"})
    assert {s.name for m in registry.collect() for s in m.samples} == before


def test_task_state_that_is_not_final_is_not_finished() -> None:
    """When a task goes to IN PROCESS or SCHEDULED FOR RETRY, nothing is finished."""
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    for status in ("IN PROCESS", "SCHEDULED FOR RETRY", "SCHEDULED"):
        metrics({"event": "queue.task.state", "exporter_id": "E", "previous": "X",
                 "status": status})  # fmt: skip
    assert not [s for m in registry.collect() for s in m.samples
                if s.name == "stowpair_tasks_finished_total"]  # fmt: skip


def test_unreadable_event_is_counted_not_raised() -> None:
    """When an event lacks a field its metric needs, the error is counted, never raised."""
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    metrics({"event": "queue.task.retry"})  # no exporter_id
    labels = {"event": "queue.task.retry"}
    assert registry.get_sample_value("stowpair_metrics_event_errors_total", labels) == 1


def test_receiver_only_has_no_exporter_metrics() -> None:
    """When built for stowrsd, only the receiver's metrics exist."""
    registry = CollectorRegistry()
    metrics = EventMetrics(registry, receiver_only=True)
    metrics(EXPORT_REQUEST)
    metrics({"event": "receiver.request", "endpoint": "stowrsd", "status": 200, "bytes": 1})
    names = {m.name for m in registry.collect()}
    assert "stowpair_receiver_requests" in names
    assert not any(n.startswith("stowpair_export") for n in names)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (202, "2xx"), (409, "4xx"), (503, "5xx"), (None, "error"), (True, "error"),
     (99, "error"), ("200", "error")],
)  # fmt: skip
def test_status_class(status: Any, expected: str) -> None:
    """When an HTTP status is classed, 2xx..5xx, and anything else is 'error'."""
    assert status_class(status) == expected


@pytest.mark.parametrize(
    ("code", "expected"), [(0xA700, "0xA700"), (0x0110, "0x0110"), (None, "unknown"),
                           (-1, "unknown"), ("A700", "unknown")],
)  # fmt: skip
def test_reason_label(code: Any, expected: str) -> None:
    """When a Failure Reason becomes a label, it is four hex digits."""
    assert reason_label(code) == expected
