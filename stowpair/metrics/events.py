"""Counters and histograms read from the log events (docs/logging.md, docs/metrics.md).

:class:`EventMetrics` is a log observer. Each metric is a reading of an event that the
subsystems already emit with named fields meant for counting, so the figures and the
JSON log tell one story, no subsystem imports ``prometheus_client``, and a test checks a
metric by feeding the event it comes from. Twisted's ``Logger`` hands every event to the
observers whatever the console level, so DEBUG events count too.

Labels are few and bounded: exporter IDs, web app and client names come from the
configuration; outcomes, states and HTTP statuses from short fixed lists. No UID, path,
peer address or message ever becomes a label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

Event = Mapping[str, Any]
Handler = Callable[[Event], None]

#: Instance outcomes, as dcm4chee's outcome message words them (``completed:20``).
OUTCOMES = ("completed", "warning", "failed")
#: Final task statuses (``stowpair_tasks_finished_total``).
FINAL = ("COMPLETED", "WARNING", "FAILED", "CANCELED")
#: DIMSE status classes (PS3.7 Annex C) -> instance outcome.
_DIMSE_OUTCOME = {"success": "completed", "warning": "warning", "failure": "failed"}
#: Seconds: a STOW-RS request lasts from milliseconds (one small instance) to minutes.
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def status_class(status: Any) -> str:
    """``2xx`` ... ``5xx`` for an HTTP status; ``error`` when there was no answer."""
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return f"{status // 100}xx"
    return "error"


def reason_label(code: Any) -> str:
    """A Failure Reason or DIMSE status as ``0xA700``; ``unknown`` when absent."""
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 0xFFFF:
        return f"0x{code:04X}"
    return "unknown"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


class EventMetrics:
    """Maps documented log events to metrics in ``registry``; use as a log observer.

    ``receiver_only`` (``twistd -n stowrsd``): just the STOW-RS receiver's metrics.
    An event whose fields cannot be read is counted in
    ``stowpair_metrics_event_errors_total`` and otherwise ignored: a metric never breaks
    logging.
    """

    def __init__(self, registry: CollectorRegistry, receiver_only: bool = False) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self.errors = Counter(
            "stowpair_metrics_event_errors",
            "Log events whose fields could not be read into metrics.",
            ["event"],
            registry=registry,
        )
        self._receiver(registry)
        if not receiver_only:
            self._export(registry)
            self._queue(registry)
            self._dimse(registry)
            self._tokens(registry)
            self.auth_refusals = Counter(
                "stowpair_rest_auth_refusals",
                "Requests to the REST listener refused by [rest.auth], by reason (missing,"
                " scheme, malformed, password, token, scope, keys, busy, error).",
                ["reason"],
                registry=registry,
            )
            self._on(
                "rest.auth.refused",
                lambda e: self.auth_refusals.labels(str(e["reason"])).inc(),
            )

    def __call__(self, event: Event) -> None:
        name = event.get("event")
        handlers = self._handlers.get(name) if isinstance(name, str) else None
        for handler in handlers or ():
            try:
                handler(event)
            except Exception:
                self.errors.labels(str(name)).inc()

    def _on(self, event: str, handler: Handler) -> None:
        self._handlers.setdefault(event, []).append(handler)

    # -- STOW-RS receiver (stowrsd, the emulator, the archive's ingest) -----------------

    def _receiver(self, registry: CollectorRegistry) -> None:
        self.receiver_requests = Counter(
            "stowpair_receiver_requests",
            "STOW-RS requests answered, by endpoint (stowrsd, emulator, ingest) and HTTP status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.receiver_bytes = Counter(
            "stowpair_receiver_received_bytes",
            "Request body bytes read by STOW-RS endpoints.",
            ["endpoint"],
            registry=registry,
        )
        self.instances_stored = Counter(
            "stowpair_receiver_instances_stored",
            "SOP Instances durably stored by STOW-RS endpoints.",
            ["endpoint"],
            registry=registry,
        )
        self.instances_refused = Counter(
            "stowpair_instances_refused",
            "SOP Instances refused on receipt, by endpoint (stowrsd, emulator, ingest, dimse)"
            " and Failure Reason or C-STORE status.",
            ["endpoint", "reason"],
            registry=registry,
        )
        self._on("receiver.request", self._receiver_request)
        self._on("receiver.instance.stored", self._instance_stored)
        self._on("receiver.instance.failed", self._instance_refused)

    def _receiver_request(self, e: Event) -> None:
        endpoint = str(e.get("endpoint") or "stowrsd")
        status = e.get("status")
        self.receiver_requests.labels(endpoint, str(status if status is not None else "")).inc()
        self.receiver_bytes.labels(endpoint).inc(_count(e.get("bytes")))

    def _instance_stored(self, e: Event) -> None:
        self.instances_stored.labels(str(e.get("endpoint") or "stowrsd")).inc()

    def _instance_refused(self, e: Event) -> None:
        endpoint = str(e.get("endpoint") or "stowrsd")
        self.instances_refused.labels(endpoint, reason_label(e.get("reason"))).inc()

    # -- exporters --------------------------------------------------------------------

    def _export(self, registry: CollectorRegistry) -> None:
        self.exported_instances = Counter(
            "stowpair_exported_instances",
            "SOP Instances sent by exporters (STOW-RS requests, C-STOREs), by ExporterID and"
            " the destination's answer: completed, warning, failed.",
            ["exporter", "outcome"],
            registry=registry,
        )
        self.exported_bytes = Counter(
            "stowpair_exported_bytes",
            "Bytes of the SOP Instances sent by exporters, by ExporterID and outcome.",
            ["exporter", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "stowpair_export_request_duration_seconds",
            "STOW-RS export requests: seconds from sending to the answer, by ExporterID and"
            " HTTP status class (error: no answer).",
            ["exporter", "status_class"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.exports = Counter(
            "stowpair_exports",
            "Export attempts by ExporterID and outcome status (COMPLETED, WARNING, FAILED ...).",
            ["exporter", "status"],
            registry=registry,
        )
        self._on("exporter.request", self._export_request)
        self._on("exporter.dicom.store", self._dicom_store)
        self._on("exporter.export", self._export_attempt)
        self._on("exporter.dicom.export", self._export_attempt)

    def _export_request(self, e: Event) -> None:
        exporter = str(e.get("exporter") or f"stowrs:{e.get('webapp')}")
        for outcome in OUTCOMES:
            n = _count(e.get(outcome))
            if n:
                self.exported_instances.labels(exporter, outcome).inc(n)
        by_outcome = e.get("bytes_by_outcome")
        if isinstance(by_outcome, Mapping):
            for outcome in OUTCOMES:
                size = _count(by_outcome.get(outcome))
                if size:
                    self.exported_bytes.labels(exporter, outcome).inc(size)
        elapsed = _seconds(e.get("elapsed"))
        if elapsed is not None:
            status = status_class(e.get("http_status"))
            self.request_seconds.labels(exporter, status).observe(elapsed)

    def _dicom_store(self, e: Event) -> None:
        exporter = str(e["exporter"])
        outcome = _DIMSE_OUTCOME.get(str(e.get("outcome")), "failed")
        self.exported_instances.labels(exporter, outcome).inc()
        size = _count(e.get("bytes"))
        if size:
            self.exported_bytes.labels(exporter, outcome).inc(size)

    def _export_attempt(self, e: Event) -> None:
        self.exports.labels(str(e["exporter"]), str(e["status"])).inc()

    # -- the export queue ---------------------------------------------------------------

    def _queue(self, registry: CollectorRegistry) -> None:
        self.retries = Counter(
            "stowpair_task_retries",
            "Export tasks scheduled for retry after a failed attempt, by ExporterID.",
            ["exporter"],
            registry=registry,
        )
        self.tasks_finished = Counter(
            "stowpair_tasks_finished",
            "Export tasks that reached a final status, by ExporterID and status.",
            ["exporter", "status"],
            registry=registry,
        )
        self._on("queue.task.retry", self._retry)
        self._on("queue.task.state", self._task_state)

    def _retry(self, e: Event) -> None:
        self.retries.labels(str(e["exporter_id"])).inc()

    def _task_state(self, e: Event) -> None:
        status = str(e.get("status"))
        if status in FINAL and e.get("previous") != status:
            self.tasks_finished.labels(str(e["exporter_id"]), status).inc()

    # -- DICOM ----------------------------------------------------------------------

    def _dimse(self, registry: CollectorRegistry) -> None:
        self.associations = Counter(
            "stowpair_dimse_associations",
            "DICOM associations by role (scp: to the C-STORE SCP; scu: by dicom: exporters)"
            " and state (accepted, rejected, released, aborted, closed; established,"
            " refused).",
            ["role", "state"],
            registry=registry,
        )
        self.cstores = Counter(
            "stowpair_dimse_cstores",
            "C-STORE operations by role and outcome (success, warning, failure).",
            ["role", "outcome"],
            registry=registry,
        )
        self._on("dimse.association", lambda e: self._association("scp", e))
        self._on("exporter.dicom.association", lambda e: self._association("scu", e))
        self._on("dimse.store", self._scp_store)
        self._on("exporter.dicom.store", self._scu_store)

    def _association(self, role: str, e: Event) -> None:
        self.associations.labels(role, str(e["state"])).inc()

    def _scp_store(self, e: Event) -> None:
        outcome = str(e.get("outcome"))
        self.cstores.labels("scp", outcome).inc()
        if outcome == "failure":
            self.instances_refused.labels("dimse", reason_label(e.get("status"))).inc()

    def _scu_store(self, e: Event) -> None:
        self.cstores.labels("scu", str(e.get("outcome"))).inc()

    # -- access tokens ---------------------------------------------------------------

    def _tokens(self, registry: CollectorRegistry) -> None:
        self.token_requests = Counter(
            "stowpair_token_requests",
            "Access-token requests to OAuth 2.0 token endpoints, by Keycloak client ID and"
            " outcome (success, failure).",
            ["client", "outcome"],
            registry=registry,
        )
        self.token_invalidations = Counter(
            "stowpair_token_invalidations",
            "Cached access tokens dropped because a destination answered 401.",
            ["client"],
            registry=registry,
        )
        self._on("auth.token.fetched", lambda e: self._token(e, "success"))
        self._on("auth.token.failed", lambda e: self._token(e, "failure"))
        self._on(
            "auth.token.invalidated",
            lambda e: self.token_invalidations.labels(str(e["client"])).inc(),
        )

    def _token(self, e: Event, outcome: str) -> None:
        self.token_requests.labels(str(e["client"]), outcome).inc()
