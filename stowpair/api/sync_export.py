"""Synchronous STOW-RS export over REST (dcm4chee ``ExporterRS``, docs/dcm4chee.md).

``POST /dcm4chee-arc/aets/{AET}/rs/studies/{uid}[/series/{uid}[/instances/{uid}]]
/export/stowrs:{webapp}`` runs the export at once, without a task, and answers
``{"completed":n[,"warning":n][,"failed":n][,"error":"…"]}`` with 200 when nothing
failed, 206 when some instances failed and some were stored, 502 when all failed or the
export could not run; an unknown web app gives 404 ``{"errorMessage": …}``. As in
dcm4chee there is no STOW_RS service-class check on this path.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from stowpair.config.model import Exporter
from stowpair.exporter.outcome import (
    Cancellation,
    ExportError,
    ExportRequest,
    InstanceStatus,
    Outcome,
)
from stowpair.exporter.stow import StowExporter

STOWRS_PREFIX = "stowrs:"


def sync_export(
    exporter: StowExporter,
    aet: str,
    study: str,
    series: str | None,
    sop: str | None,
    webapp_name: str,
) -> Deferred[tuple[int, dict[str, Any]]]:
    """Export now; fires with (HTTP status, JSON body). ``webapp_name`` may carry the
    ``stowrs:`` prefix of the REST path or not."""
    return Deferred.fromCoroutine(_run(exporter, aet, study, series, sop, webapp_name))


async def _run(
    exporter: StowExporter,
    aet: str,
    study: str,
    series: str | None,
    sop: str | None,
    webapp_name: str,
) -> tuple[int, dict[str, Any]]:
    name = webapp_name.removeprefix(STOWRS_PREFIX)
    try:
        exporter.webapp(name)
    except ExportError as e:
        return 404, {"errorMessage": str(e)}
    request = ExportRequest(
        exporter=Exporter(
            exporter_id=STOWRS_PREFIX + name, uri=STOWRS_PREFIX + name, queue_name="", ae_title=aet
        ),
        study_uid=study,
        series_uid=series or "*",
        sop_uid=sop or "*",
    )
    try:
        outcome = await exporter.run(request, Cancellation(), check_service_class=False)
    except ExportError as e:
        return 502, {"completed": 0, "error": str(e)}
    return answer(outcome)


def answer(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """dcm4chee's status and body for an Outcome."""
    body: dict[str, Any] = {"completed": outcome.completed}
    if outcome.warning:
        body["warning"] = outcome.warning
    if outcome.failed:
        body["failed"] = outcome.failed
    error = _first_error(outcome)
    if error:
        body["error"] = error
    if outcome.failed == 0:
        return 200, body
    if outcome.completed + outcome.warning > 0:
        return 206, body
    return 502, body


def _first_error(outcome: Outcome) -> str:
    """The first failure reason (with how many share it), or the no-match message."""
    if not outcome.instances and outcome.completed == 0 and outcome.failed == 0:
        return outcome.message  # "Could not find Study[uid=…]"
    reasons = [
        i.reason
        for i in outcome.instances
        if i.status in (InstanceStatus.FAILED, InstanceStatus.MISSING)
    ]
    if not reasons:
        return ""
    others = sum(1 for r in reasons if r != reasons[0])
    return reasons[0] + (f" ({others} more failed for other reasons)" if others else "")
