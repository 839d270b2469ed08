"""One C-STORE SCU association: blocking, run in a worker thread by the ``dicom:`` exporter.

:func:`send_group` proposes the contexts of one group (:mod:`stowpair.dimse.contexts`),
sends each instance as stored or converted to the syntax the destination accepted
(decompression is handed to the reactor's :class:`~stowpair.dicom.transcode.Transcoder`
through a :class:`~stowpair.dimse.bridge.ReactorBridge`), and returns one result per
instance. Nothing here touches the reactor except through the bridge and
``callFromThread`` (for logs).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stowpair.archive.model import InstanceRecord
from stowpair.config.model import RemoteAE
from stowpair.dicom.transfer_syntax import describe
from stowpair.dimse.ae import new_ae, no_delay
from stowpair.dimse.bridge import ReactorBridge
from stowpair.dimse.contexts import Proposal, choose
from stowpair.dimse.status import StoreVerdict, verdict
from stowpair.dimse.tls import client_context
from stowpair.exporter.outcome import InstanceOutcome, InstanceStatus


class Control:
    """Shared by the reactor and the sending thread: :meth:`stop` (shutdown) or the task's
    cancellation ends the association after the instance in flight."""

    def __init__(self, cancellation: Any = None) -> None:
        self._cancellation = cancellation
        self._stopped = False
        self._lock = threading.Lock()
        self._assoc: Any = None

    @property
    def stopped(self) -> bool:
        cancelled = self._cancellation is not None and self._cancellation.cancelled
        return self._stopped or cancelled

    def attach(self, assoc: Any) -> None:
        with self._lock:
            self._assoc = assoc

    def stop(self) -> None:
        """Stop now: abort the association (in a thread of its own: abort blocks)."""
        with self._lock:
            self._stopped = True
            assoc = self._assoc
        if assoc is not None and assoc.is_established:
            threading.Thread(target=assoc.abort, name="stowpair-dimse-abort", daemon=True).start()


@dataclass(frozen=True)
class Session:
    """What one association needs: where to, as whom, what to propose."""

    remote: RemoteAE
    calling_aet: str
    proposals: Sequence[Proposal]
    records: Sequence[InstanceRecord]
    work_dir: Path | None
    transcode: Callable[[Path, str, Path], Any] | None
    #: The reactor's ``seconds`` (read from the sending thread: elapsed times only).
    clock: Callable[[], float]


#: ``report(kind, **fields)``: events for the log, called in the sending thread.
Report = Callable[..., None]


def send_group(
    session: Session, bridge: ReactorBridge, control: Control, report: Report
) -> list[InstanceOutcome]:
    """Associate, send every record, release; one outcome per record. Never raises."""
    remote = session.remote
    results: dict[str, InstanceOutcome] = {}
    started = session.clock()
    try:
        assoc = _associate(session)
    except Exception as e:  # TLS set-up, name resolution ...
        reason = f"cannot associate with {_where(remote)}: {e}"
        report("refused", reason=reason, accepted=0, elapsed=session.clock() - started)
        return _all(session.records, InstanceStatus.FAILED, reason, retryable=True)
    if not assoc.is_established:
        reason, retryable = describe_failure(assoc, remote)
        report("refused", reason=reason, accepted=0, elapsed=session.clock() - started)
        return _all(session.records, InstanceStatus.FAILED, reason, retryable=retryable)
    control.attach(assoc)
    accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])): True
                for cx in assoc.accepted_contexts}  # fmt: skip
    report("established", reason="", accepted=len(accepted), elapsed=session.clock() - started)
    for record in session.records:
        if control.stopped:
            results[record.sop_instance_uid] = _outcome(
                record, StoreVerdict(InstanceStatus.CANCELED, "export cancelled")
            )
            continue
        if not assoc.is_established:
            reason = f"the association with {_where(remote)} ended before this instance"
            results[record.sop_instance_uid] = _outcome(
                record, StoreVerdict(InstanceStatus.FAILED, reason, retryable=True)
            )
            continue
        outcome = _send_one(session, bridge, assoc, accepted, record)
        results[record.sop_instance_uid] = outcome
        report("store", outcome=outcome)
    state = "aborted"
    if assoc.is_established:
        assoc.release()
        state = "released"
    report(state, reason="", accepted=len(accepted), elapsed=session.clock() - started)
    return [results[r.sop_instance_uid] for r in session.records]


def _associate(session: Session) -> Any:
    from pynetdicom import evt

    remote = session.remote
    ae = new_ae(
        session.calling_aet,
        max_pdu_length=remote.max_pdu_length,
        acse_timeout=remote.response_timeout,
        dimse_timeout=remote.response_timeout,
        network_timeout=remote.response_timeout,
        connection_timeout=remote.connect_timeout,
    )
    ssl_context = client_context(remote)
    tls_args = (ssl_context, remote.host) if ssl_context is not None else None
    return ae.associate(
        remote.host,
        remote.port,
        contexts=[p.context() for p in session.proposals],
        ae_title=remote.ae_title,
        max_pdu=remote.max_pdu_length,
        tls_args=tls_args,
        evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)],
    )


def _where(remote: RemoteAE) -> str:
    return f"{remote.ae_title}@{remote.host}:{remote.port}"


def describe_failure(assoc: Any, remote: RemoteAE) -> tuple[str, bool]:
    """Why the association failed, and whether a retry may help."""
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        try:
            why = f"{primitive.result_str}, {primitive.source_str}: {primitive.reason_str}"
        except Exception:
            why = "rejected"
        transient = getattr(primitive, "result", None) == 2
        return f"association rejected by {_where(remote)} ({why})", transient
    if assoc.is_aborted and getattr(assoc.acceptor, "primitive", None) is not None:
        return f"association aborted by {_where(remote)}", True
    return (
        f"no association with {_where(remote)}: connection refused, timed out, or closed "
        "before any answer (is it listening? is its AE title right?)",
        True,
    )


def _all(
    records: Sequence[InstanceRecord], status: InstanceStatus, reason: str, retryable: bool
) -> list[InstanceOutcome]:
    return [_outcome(r, StoreVerdict(status, reason, retryable=retryable)) for r in records]


def _outcome(
    record: InstanceRecord, v: StoreVerdict, bytes_sent: int = 0, elapsed: float = 0.0
) -> InstanceOutcome:
    return InstanceOutcome(
        study_uid=record.study_uid,
        series_uid=record.series_uid,
        sop_instance_uid=record.sop_instance_uid,
        sop_class_uid=record.sop_class_uid,
        status=v.status,
        reason=v.reason,
        reason_code=v.reason_code,
        bytes_sent=bytes_sent,
        elapsed=elapsed,
        retryable=v.retryable,
    )


def _send_one(
    session: Session,
    bridge: ReactorBridge,
    assoc: Any,
    accepted: dict[tuple[str, str], bool],
    record: InstanceRecord,
) -> InstanceOutcome:
    started = session.clock()
    choice = choose(record.sop_class_uid, record.transfer_syntax_uid, accepted)
    if choice.target is None:
        return _outcome(record, StoreVerdict(InstanceStatus.FAILED, choice.reason))
    path, temp = record.path, None
    try:
        if choice.transcode:
            temp = _converted(session, bridge, record, choice.target)
            if isinstance(temp, StoreVerdict):
                return _outcome(record, temp)
            path = temp
        try:
            size = os.stat(path).st_size
        except OSError as e:
            return _outcome(
                record, StoreVerdict(InstanceStatus.MISSING, f"cannot read file: {e.strerror}")
            )
        try:
            answer = assoc.send_c_store(path)
        except Exception as e:  # e.g. no accepted context for the file's File Meta
            text = f"C-STORE not sent: {type(e).__name__}: {e}"
            return _outcome(record, StoreVerdict(InstanceStatus.FAILED, text))
        code = answer.get("Status") if answer is not None else None
        comment = str(answer.get("ErrorComment", "") or "") if answer is not None else ""
        return _outcome(record, verdict(code, comment), size, session.clock() - started)
    finally:
        if temp is not None and isinstance(temp, Path):
            temp.unlink(missing_ok=True)


def _converted(
    session: Session, bridge: ReactorBridge, record: InstanceRecord, target: str
) -> Path | StoreVerdict:
    """Decompress/convert ``record`` to ``target`` in the transcoder; a temp file."""
    if session.transcode is None:
        return StoreVerdict(
            InstanceStatus.FAILED,
            f"needs conversion to {describe(target)}, which is not available",
        )
    try:
        if session.work_dir is not None:
            session.work_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="stowpair-", suffix=".dcm", dir=session.work_dir)
        os.close(fd)
    except OSError as e:
        return StoreVerdict(
            InstanceStatus.FAILED,
            f"cannot create a temporary file in {session.work_dir}: {e.strerror}",
        )
    temp = Path(name)
    try:
        bridge.call(session.transcode, record.path, target, temp)
    except Exception as e:
        temp.unlink(missing_ok=True)
        return StoreVerdict(
            InstanceStatus.FAILED, f"cannot convert {record.path} to {describe(target)}: {e}"
        )
    return temp
