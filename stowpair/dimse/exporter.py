"""``DicomExporter``: the exporter provider for ``dicom:<AE title>`` URIs (C-STORE SCU).

One export task → the instances from the index → one association per group of
presentation contexts (one for any ordinary study) in a worker thread
(:mod:`stowpair.dimse.scu`) → per-instance results → the same Outcome, status rule and
message as the STOW-RS exporter (``Export Study[uid=…] to AE - completed:N, failed:M``).
A retry sends only the instances not yet delivered (``ExportRequest.already_done``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from stowpair.archive.model import InstanceIndex, InstanceRecord
from stowpair.config.model import RemoteAE
from stowpair.dimse.bridge import ReactorBridge
from stowpair.dimse.contexts import association_groups, proposals
from stowpair.dimse.scu import Control, Session, send_group
from stowpair.dimse.status import outcome_of
from stowpair.exporter.outcome import (
    Cancellation,
    ExportError,
    ExportRequest,
    InstanceOutcome,
    InstanceStatus,
    Outcome,
    TaskStatus,
    not_sent_again,
)
from stowpair.exporter.outcome_rule import build_outcome, entity_text
from stowpair.exporter.stow import Transcoder
from stowpair.logs import register_events

SCHEME = "dicom"

register_events(
    {
        "exporter.dicom.export": (
            "exporter", "remote_ae", "study_uid", "series_uid", "sop_uid", "status",
            "message", "completed", "warning", "failed", "missing", "elapsed",
        ),
        "exporter.dicom.association": (
            "exporter", "remote_ae", "host", "port", "state", "reason", "accepted", "elapsed",
        ),
        "exporter.dicom.store": (
            "exporter", "remote_ae", "study_uid", "sop_uid", "status", "outcome",
            "reason", "retryable", "bytes", "elapsed",
        ),
    }
)  # fmt: skip


class DicomExporter:
    """``ExporterProvider`` for ``dicom:`` (see the module docstring).

    ``remote_aes`` are the configured destinations by AE title (``reconfigure`` swaps
    them on reload). Associations run in a pool of ``max_threads`` threads (that many
    exports at once at most); ``transcoder`` converts instances a destination does not
    accept as stored (None: those fail).
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        index: InstanceIndex,
        remote_aes: Mapping[str, RemoteAE],
        transcoder: Transcoder | None = None,
        work_dir: Path | None = None,
        max_threads: int = 4,
    ) -> None:
        self._reactor = reactor
        self._index = index
        self._remote_aes = dict(remote_aes)
        self._transcoder = transcoder
        self._work_dir = work_dir
        self._bridge = ReactorBridge(reactor)
        self._pool = ThreadPool(0, max_threads, name="stowpair-dimse-scu")
        self._controls: set[Control] = set()

    def reconfigure(self, remote_aes: Mapping[str, RemoteAE]) -> None:
        """Use new remote AEs for the next exports."""
        self._remote_aes = dict(remote_aes)

    def close(self) -> Deferred[None]:
        """Stop the associations in flight and the worker threads."""
        for control in list(self._controls):
            control.stop()
        d = self._bridge.close()

        def stop_pool(_: object) -> Deferred[None]:
            if not self._pool.started:
                return succeed(None)
            return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._pool.stop)

        return d.addCallback(stop_pool)

    def remote_ae(self, title: str) -> RemoteAE:
        """The destination, or ExportError saying why it cannot be used."""
        remote = self._remote_aes.get(title)
        if remote is None:
            known = ", ".join(sorted(self._remote_aes)) or "none"
            raise ExportError(f"Unknown AE: {title} (not in [remote_aes]; defined: {known})")
        if not remote.installed:
            raise ExportError(f"Remote AE {title} not installed")
        return remote

    def export(self, request: ExportRequest, cancellation: Cancellation) -> Deferred[Outcome]:
        """Run one attempt (``ExporterProvider``); ExportError when nothing can be sent."""
        return Deferred.fromCoroutine(self.run(request, cancellation))

    async def run(self, request: ExportRequest, cancellation: Cancellation) -> Outcome:
        exporter = request.exporter
        if exporter.scheme != SCHEME:
            raise ExportError(
                f"Exporter {exporter.exporter_id}: URI {exporter.uri} is not dicom:<AE title>"
            )
        remote = self.remote_ae(exporter.destination)
        started = self._reactor.seconds()
        query = await self._index.query(request.study_uid, request.series_uid, request.sop_uid)
        entity = entity_text(request.study_uid, request.series_uid, request.sop_uid)
        if not query.instances and not query.missing:
            return Outcome(TaskStatus.WARNING, f"Could not find {entity}")
        done, refused = request.already_done, request.refused
        records = [*query.instances, *query.missing]
        already = sum(1 for r in records if r.sop_instance_uid in done)
        # refused for good by an earlier attempt (a permanent status): not sent again
        results = [
            _refused(r, *refused[r.sop_instance_uid])
            for r in records
            if r.sop_instance_uid in refused and r.sop_instance_uid not in done
        ]
        skip = done | refused.keys()
        todo = [r for r in query.instances if r.sop_instance_uid not in skip]
        results += [_missing(r) for r in query.missing if r.sop_instance_uid not in skip]
        results += await self._send(request, remote, todo, cancellation)
        outcome = _outcome(results, entity, remote.ae_title, len(records), already)
        self._log_export(request, remote, outcome, self._reactor.seconds() - started)
        return outcome

    async def _send(
        self,
        request: ExportRequest,
        remote: RemoteAE,
        records: list[InstanceRecord],
        cancellation: Cancellation,
    ) -> list[InstanceOutcome]:
        if not records:
            return []
        props = proposals((r.sop_class_uid, r.transfer_syntax_uid) for r in records)
        results: list[InstanceOutcome] = []
        for group in association_groups(props):
            classes = {p.sop_class_uid for p in group}
            members = [r for r in records if r.sop_class_uid in classes]
            if cancellation.cancelled:
                results += [_canceled(r) for r in members]
                continue
            session = Session(
                remote=remote,
                calling_aet=request.exporter.ae_title,
                proposals=group,
                records=members,
                work_dir=self._work_dir,
                transcode=self._transcoder.transcode if self._transcoder else None,
                clock=self._reactor.seconds,
            )
            results += await self._in_thread(session, request, cancellation)
        return results

    def _in_thread(
        self, session: Session, request: ExportRequest, cancellation: Cancellation
    ) -> Deferred[list[InstanceOutcome]]:
        """Run one association in the pool; cancelling the Deferred aborts it."""
        if not self._pool.started:
            self._pool.start()
        control = Control(cancellation)
        self._controls.add(control)

        def cancel(_: Deferred[list[InstanceOutcome]]) -> None:
            control.stop()  # the thread ends after the instance in flight

        d: Deferred[list[InstanceOutcome]] = Deferred(cancel)
        report = _Reporter(self, request, session.remote)

        def work() -> None:
            try:
                outcome: Any = send_group(session, self._bridge, control, report)
            except BaseException as e:  # send_group never raises; a bug must not hang
                outcome = e
            self._reactor.callFromThread(deliver, outcome)

        def deliver(outcome: Any) -> None:
            self._controls.discard(control)
            if d.called:
                return  # cancelled: nobody waits for it
            if isinstance(outcome, BaseException):
                d.errback(outcome)
            else:
                d.callback(outcome)

        self._pool.callInThread(work)
        return d

    def _log_export(
        self, request: ExportRequest, remote: RemoteAE, outcome: Outcome, elapsed: float
    ) -> None:
        self.log.info(
            "{message} ({status}) in {elapsed:.3f}s",
            event="exporter.dicom.export",
            exporter=request.exporter.exporter_id,
            remote_ae=remote.ae_title,
            study_uid=request.study_uid,
            series_uid=request.series_uid,
            sop_uid=request.sop_uid,
            status=str(outcome.status),
            message=outcome.message,
            completed=outcome.completed,
            warning=outcome.warning,
            failed=outcome.failed,
            missing=outcome.missing,
            elapsed=elapsed,
        )


class _Reporter:
    """Log events from the sending thread, emitted on the reactor thread."""

    def __init__(self, exporter: DicomExporter, request: ExportRequest, remote: RemoteAE):
        self._exporter = exporter
        self._request = request
        self._remote = remote

    def __call__(self, kind: str, **fields: Any) -> None:
        self._exporter._reactor.callFromThread(self._emit, kind, fields)

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        log = self._exporter.log
        exporter_id = self._request.exporter.exporter_id
        remote = self._remote
        if kind == "store":
            self._store(fields["outcome"])
            return
        level = log.warn if kind == "refused" else log.info
        level(
            "Association to {remote_ae}@{host}:{port} {state}"
            + (": {reason}" if fields.get("reason") else " ({accepted} contexts accepted)"),
            event="exporter.dicom.association",
            exporter=exporter_id,
            remote_ae=remote.ae_title,
            host=remote.host,
            port=remote.port,
            state=kind,
            reason=fields.get("reason", ""),
            accepted=fields.get("accepted", 0),
            elapsed=fields.get("elapsed", 0.0),
        )

    def _store(self, outcome: InstanceOutcome) -> None:
        log = self._exporter.log
        failed = outcome.status in (InstanceStatus.FAILED, InstanceStatus.MISSING)
        code = outcome.reason_code if outcome.reason_code is not None else (
            0 if outcome.status is InstanceStatus.COMPLETED else None)  # fmt: skip
        (log.warn if failed else log.debug)(
            "C-STORE {sop_uid} to {remote_ae}: {outcome} {reason}",
            event="exporter.dicom.store",
            exporter=self._request.exporter.exporter_id,
            remote_ae=self._remote.ae_title,
            study_uid=outcome.study_uid,
            sop_uid=outcome.sop_instance_uid,
            status=code,
            outcome=outcome_of(code) if code is not None else "failure",
            reason=outcome.reason,
            retryable=outcome.retryable,
            bytes=outcome.bytes_sent,
            elapsed=outcome.elapsed,
        )


def _missing(record: InstanceRecord) -> InstanceOutcome:
    return InstanceOutcome(
        record.study_uid, record.series_uid, record.sop_instance_uid, record.sop_class_uid,
        InstanceStatus.MISSING, "indexed but its file is missing",
    )  # fmt: skip


def _refused(record: InstanceRecord, reason: str, code: int) -> InstanceOutcome:
    return InstanceOutcome(
        record.study_uid, record.series_uid, record.sop_instance_uid, record.sop_class_uid,
        InstanceStatus.FAILED, not_sent_again(reason), reason_code=code,
    )  # fmt: skip


def _canceled(record: InstanceRecord) -> InstanceOutcome:
    return InstanceOutcome(
        record.study_uid, record.series_uid, record.sop_instance_uid, record.sop_class_uid,
        InstanceStatus.CANCELED, "export cancelled",
    )  # fmt: skip


def _outcome(
    results: list[InstanceOutcome], entity: str, remote_ae: str, matches: int, already: int
) -> Outcome:
    """The STOW-RS exporter's outcome rule and message, with the AE title as destination."""
    return build_outcome(entity, remote_ae, results, matches, already)
