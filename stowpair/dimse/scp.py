"""The C-STORE / C-ECHO handlers of the archive's Storage SCP (pynetdicom event handlers).

Each handler runs in the pynetdicom thread of its association. For a C-STORE it:

1. puts the data set as received behind a PS3.10 File Meta (from the request's Affected
   SOP Class/Instance UIDs and the context's transfer syntax) and reads its header from
   memory with the STOW-RS receiver's own reader (UIDs validated: 0xC000 / 0xA900);
2. checks the data set against the request (SOP Class of the context, SOP Instance UID);
3. writes it to a temp file in the archive's ``.incoming`` folder (0xA700 when full);
4. hands it to the reactor (:class:`~stowpair.dimse.bridge.ReactorBridge`), where the
   archive backend places it atomically and durably, indexes it and fires the export
   rules, exactly as for a STOW-RS part;
5. returns the status: pynetdicom sends the C-STORE response only now, once the
   instance is durable.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.dicom.transcode import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from stowpair.dimse import status as st
from stowpair.dimse.bridge import BridgeClosed, ReactorBridge
from stowpair.logs import register_events
from stowpair.receiver.instance import InstanceError, InstanceHeader, read_part_header
from stowpair.receiver.storage import (
    InstanceResult,
    RequestContext,
    StorageUnavailable,
    StoreError,
)

register_events(
    {
        "dimse.association": (
            "state", "calling_aet", "called_aet", "peer", "reason", "stored", "failed",
            "elapsed",
        ),
        "dimse.store": (
            "calling_aet", "called_aet", "peer", "sop_class_uid", "sop_instance_uid",
            "transfer_syntax", "size", "status", "outcome", "message", "elapsed",
        ),
        "dimse.store.error": ("sop_instance_uid",),
        "dimse.echo": ("calling_aet", "called_aet", "peer"),
    }
)  # fmt: skip

_PREAMBLE = b"\x00" * 128 + b"DICM"


class Archive(Protocol):
    """What the SCP needs of :class:`~stowpair.archive.backend.ArchiveStorage`."""

    incoming: Path

    def store(
        self, part_temp: Path, header: InstanceHeader, ctx: RequestContext
    ) -> Deferred[InstanceResult]: ...


class Refused(Exception):
    """A C-STORE answered with a failure ``status``; ``message`` goes to Error Comment."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Association:
    calling_aet: str
    called_aet: str
    peer: str
    started: float
    stored: int = 0
    failed: int = 0
    request_id: str = ""


@dataclass
class StoreSCP:
    """pynetdicom event handlers storing into ``archive`` through ``bridge``."""

    archive: Archive
    bridge: ReactorBridge
    reactor: Any
    log: Logger = field(default_factory=Logger)

    def __post_init__(self) -> None:
        self._clock: IReactorTime = self.reactor
        self._threads: IReactorFromThreads = self.reactor
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._associations: dict[int, _Association] = {}

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        from pynetdicom import evt

        from stowpair.dimse.ae import no_delay

        return [
            (evt.EVT_CONN_OPEN, no_delay),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_ACCEPTED, self.on_accepted),
            (evt.EVT_REJECTED, self.on_rejected),
            (evt.EVT_RELEASED, self.on_released),
            (evt.EVT_ABORTED, self.on_aborted),
            (evt.EVT_CONN_CLOSE, self.on_closed),
        ]

    # -- association events (pynetdicom threads) ------------------------------------

    def _emit(self, level: str, text: str, **fields: Any) -> None:
        """Log on the reactor thread: observers (the JSON file) are not thread-safe."""
        self._threads.callFromThread(getattr(self.log, level), text, **fields)

    def _info(self, event: Any) -> _Association:
        key = id(event.assoc)
        with self._lock:
            known = self._associations.get(key)
            if known is not None:
                return known
            requestor, acceptor = event.assoc.requestor, event.assoc.acceptor
            info = _Association(
                calling_aet=str(requestor.ae_title).strip(),
                called_aet=str(acceptor.ae_title).strip() or self._called(event),
                peer=f"{requestor.address}:{requestor.port}",
                started=self._clock.seconds(),
                request_id=f"dimse{next(self._counter)}",
            )
            self._associations[key] = info
            return info

    @staticmethod
    def _called(event: Any) -> str:
        primitive = getattr(event.assoc.requestor, "primitive", None)
        return str(getattr(primitive, "called_ae_title", "") or "").strip()

    def on_accepted(self, event: Any) -> None:
        info = self._info(event)
        self._emit(
            "info",
            "Association from {calling_aet}@{peer} to {called_aet} accepted",
            event="dimse.association",
            state="accepted",
            calling_aet=info.calling_aet,
            called_aet=info.called_aet,
            peer=info.peer,
            reason="",
            stored=0,
            failed=0,
            elapsed=0.0,
        )

    def on_rejected(self, event: Any) -> None:
        info = self._info(event)
        self._finish(event, "rejected", self._rejection_reason(event, info), "warn")

    def _rejection_reason(self, event: Any, info: _Association) -> str:
        ae = event.assoc.ae
        allowed = [t.strip() for t in ae.require_calling_aet]
        if allowed and info.calling_aet not in allowed:
            return f"calling AE title {info.calling_aet} is not accepted"
        if ae.require_called_aet and info.called_aet != ae.ae_title.strip():
            return f"called AE title {info.called_aet} is not {ae.ae_title.strip()}"
        return f"more than {ae.maximum_associations} associations at once"

    def on_released(self, event: Any) -> None:
        self._finish(event, "released", "", "info")

    def on_aborted(self, event: Any) -> None:
        self._finish(event, "aborted", "", "info")

    def on_closed(self, event: Any) -> None:
        """The connection closed without release or abort (only logged if so)."""
        self._finish(event, "closed", "", "info")

    def _finish(self, event: Any, state: str, reason: str, level: str) -> None:
        with self._lock:
            info = self._associations.pop(id(event.assoc), None)
        if info is None:
            return
        text = "Association from {calling_aet}@{peer} to {called_aet} {state}"
        text += ": {reason}" if reason else ": {stored} stored, {failed} failed in {elapsed:.3f}s"
        self._emit(
            level,
            text,
            event="dimse.association",
            state=state,
            calling_aet=info.calling_aet,
            called_aet=info.called_aet,
            peer=info.peer,
            reason=reason,
            stored=info.stored,
            failed=info.failed,
            elapsed=self._clock.seconds() - info.started,
        )

    # -- C-ECHO ---------------------------------------------------------------------

    def on_echo(self, event: Any) -> int:
        info = self._info(event)
        self._emit(
            "debug",
            "C-ECHO from {calling_aet}@{peer}",
            event="dimse.echo",
            calling_aet=info.calling_aet,
            called_aet=info.called_aet,
            peer=info.peer,
        )
        return st.SUCCESS

    # -- C-STORE --------------------------------------------------------------------

    def on_store(self, event: Any) -> Dataset:
        """The EVT_C_STORE handler: store, then answer (see the module docstring)."""
        info = self._info(event)
        started = self._clock.seconds()
        request = event.request
        sop_class = str(request.AffectedSOPClassUID or "")
        sop_instance = str(request.AffectedSOPInstanceUID or "")
        syntax = str(event.context.transfer_syntax)
        data: BytesIO = request.DataSet
        size = len(data.getbuffer())
        try:
            header = self._store(event, info, data, syntax)
            code, message = st.SUCCESS, ""
            sop_class, sop_instance = header.sop_class_uid, header.sop_instance_uid
        except Refused as e:
            code, message = e.status, e.message
        except Exception as e:  # a bug: the instance fails, the association lives on
            self._threads.callFromThread(
                self.log.failure,
                "C-STORE of {sop_instance_uid} failed unexpectedly",
                Failure(),
                sop_instance_uid=sop_instance,
                event="dimse.store.error",
            )
            code, message = st.PROCESSING_FAILURE, f"{type(e).__name__}: {e}"
        status = self._result(info, code, message)
        self._emit(
            "debug" if code == st.SUCCESS else "warn",
            "C-STORE {sop_instance_uid} from {calling_aet}: 0x{status:04X} {message}",
            event="dimse.store",
            calling_aet=info.calling_aet,
            called_aet=info.called_aet,
            peer=info.peer,
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
            transfer_syntax=syntax,
            size=size,
            status=code,
            outcome=st.outcome_of(code),
            message=message,
            elapsed=self._clock.seconds() - started,
        )
        return status

    def _result(self, info: _Association, code: int, message: str) -> Dataset:
        with self._lock:
            if code == st.SUCCESS:
                info.stored += 1
            else:
                info.failed += 1
        return st.status_dataset(code, message)

    def _store(self, event: Any, info: _Association, data: BytesIO, syntax: str) -> InstanceHeader:
        request = event.request
        number = int(request.MessageID or 0)
        blob = _PREAMBLE + _file_meta(request, syntax, info.calling_aet) + data.getvalue()
        header = _read_header(blob, number, str(request.AffectedSOPInstanceUID or ""))
        _check(header, request, event.context.abstract_syntax)
        temp = self._write_temp(blob)
        ctx = RequestContext(
            request_id=info.request_id,
            received_at=self._clock.seconds(),
            peer=info.peer,
            source=info.calling_aet,
            called_aet=info.called_aet,
        )
        try:
            self.bridge.call(self.archive.store, temp, header, ctx)
        except BridgeClosed:
            raise Refused(st.OUT_OF_RESOURCES, "the archive is shutting down") from None
        except StoreError as e:
            raise Refused(e.failure_reason, e.message) from None
        except StorageUnavailable as e:  # the index's database is away: send again later
            raise Refused(st.OUT_OF_RESOURCES, e.message) from None
        except OSError as e:
            raise _io_refusal(e) from None
        finally:
            temp.unlink(missing_ok=True)  # gone already once placed
        return header

    def _write_temp(self, blob: bytes) -> Path:
        path = self.archive.incoming / f"{os.getpid()}-dimse-{next(self._counter)}.part"
        try:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileNotFoundError:  # the incoming folder was removed under us
                self.archive.incoming.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
        except OSError as e:
            path.unlink(missing_ok=True)
            raise _io_refusal(e) from None
        return path


def _io_refusal(e: OSError) -> Refused:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return Refused(st.OUT_OF_RESOURCES, "storage is full")
    return Refused(st.OUT_OF_RESOURCES, f"cannot write the instance: {e.strerror}")


def _file_meta(request: Any, syntax: str, calling_aet: str) -> bytes:
    """PS3.10 §7.1 group 0002 for a received data set: the request's UIDs, the context's
    transfer syntax, our implementation, the sender as Source AE (as dcm4chee writes)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(str(request.AffectedSOPClassUID or ""))
    meta.MediaStorageSOPInstanceUID = UID(str(request.AffectedSOPInstanceUID or ""))
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if calling_aet:
        meta.SourceApplicationEntityTitle = calling_aet
    out = DicomBytesIO()
    write_file_meta_info(out, meta, enforce_standard=True)
    return bytes(out.getvalue())


def _read_header(blob: bytes, number: int, affected_instance: str) -> InstanceHeader:
    try:
        return read_part_header(blob, Path("-"), len(blob), number, None)
    except InstanceError as e:
        if e.sop_instance_uid and e.sop_instance_uid != affected_instance:
            # the File Meta was made from the request: the data set names another instance
            raise _other_instance(e.sop_instance_uid, affected_instance) from None
        # the reader names STOW-RS parts ("part N: ..."); here it is the C-STORE data set
        message = e.message.replace(f"part {number}", "the data set", 1)
        raise Refused(e.failure_reason, message) from None


def _other_instance(found: str, affected: str) -> Refused:
    return Refused(
        st.DOES_NOT_MATCH_SOP_CLASS,
        f"data set SOP Instance {found} is not the Affected SOP Instance {affected}",
    )


def _check(header: InstanceHeader, request: Any, context_class: str) -> None:
    """PS3.4 B.2.3: the data set must be of the SOP Class of its presentation context
    and be the instance the request names (0xA900 otherwise)."""
    affected_class = str(request.AffectedSOPClassUID or "")
    affected_instance = str(request.AffectedSOPInstanceUID or "")
    if header.sop_class_uid != context_class or affected_class != context_class:
        raise Refused(
            st.DOES_NOT_MATCH_SOP_CLASS,
            f"data set SOP Class {header.sop_class_uid} does not match the presentation "
            f"context's {context_class}",
        )
    if header.sop_instance_uid != affected_instance:
        raise _other_instance(header.sop_instance_uid, affected_instance)
