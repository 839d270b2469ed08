"""The archive storage backend: STOW-RS parts stored by UID, indexed, announced.

It implements the receiver's :class:`~stowpair.receiver.storage.StorageBackend`, so the
same STOW-RS resource that serves stowrsd serves the archive's ingest endpoint. For each
part: the file goes to ``<storage>/<Study>/<Series>/<SOP>.dcm`` (atomically, fsynced, in
the thread pool), its row is committed to the index, then every "instance received"
listener (the export-rule engine) runs; only then is the instance acknowledged, so an
instance listed as stored in the response is durable, indexed and seen by the rules.
"""

from __future__ import annotations

import filecmp
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from stowpair.archive.model import InstanceIndex, InstanceRecord
from stowpair.archive.store import (
    InstanceHeader as ArchiveHeader,
)
from stowpair.archive.store import (
    StoreStatus,
    has_part10_prefix,
    instance_path,
    wrap_as_part10,
)
from stowpair.db.errors import DatabaseUnavailable
from stowpair.fsutil import place_new
from stowpair.logs import register_events
from stowpair.receiver.direct_io import DirectBuffers
from stowpair.receiver.instance import InstanceHeader
from stowpair.receiver.storage import (
    INCOMING,
    BlockingRunner,
    InstanceResult,
    RequestContext,
    StorageUnavailable,
    StoreError,
    TempFiles,
    TempPart,
)

#: A listener for received instances: ``fn(record, attributes)``; may return a Deferred.
InstanceListener = Callable[[InstanceRecord, Mapping[str, str]], "Deferred[None] | None"]

#: Seconds a client is asked to wait when the index cannot be reached (503 Retry-After).
INGEST_RETRY_AFTER = 10
#: PS3.7 C.4.2.1.4 "Duplicate SOP Instance": the archive keeps the first one it stored.
DUPLICATE_SOP_INSTANCE = 0x0111
#: Longest attribute value copied into the listener attributes.
_MAX_VALUE = 1024
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI"}

register_events(
    {
        "archive.instance.received": (
            "study_uid",
            "series_uid",
            "sop_instance_uid",
            "source",
            "size",
            "status",
        ),
        "archive.listener.failed": ("sop_instance_uid", "listener"),
    }
)


@dataclass(frozen=True)
class _Placed:
    record: InstanceRecord
    attributes: dict[str, str]
    status: StoreStatus


def header_attributes(ds: Dataset) -> dict[str, str]:
    """Every top-level text attribute of ``ds`` by keyword (values joined with ``\\``).

    Blocking when values were deferred: call it in a thread while the file is still where
    pydicom read it.
    """
    out: dict[str, str] = {}
    for raw in ds.elements():  # raw elements: nothing is decoded that is not wanted
        if raw.VR not in _TEXT_VRS or getattr(raw, "length", 0) > _MAX_VALUE:
            continue
        try:
            element = ds[raw.tag]
        except Exception:  # a malformed value must not fail the store
            continue
        if not element.keyword or element.value is None:
            continue
        value = element.value
        text = "\\".join(map(str, value)) if element.VM > 1 else str(value)
        out[element.keyword] = text.strip()
    return out


def instance_attributes(
    header_attrs: Mapping[str, str], record: InstanceRecord, peer: str = "", called_aet: str = ""
) -> dict[str, str]:
    """The attributes export-rule conditions match (dcm4chee's ``Attribute=value``): the
    header's text attributes, the record's UIDs, ``SendingApplicationEntityTitle`` (the
    record's source: the AE title of the ingest URL, or the DIMSE Calling AE Title),
    ``ReceivingApplicationEntityTitle`` (``called_aet`` when given, else the source) and
    ``SendingHostname`` (the client's address)."""
    out = dict(header_attrs)
    out.update(
        StudyInstanceUID=record.study_uid,
        SeriesInstanceUID=record.series_uid,
        SOPInstanceUID=record.sop_instance_uid,
        SOPClassUID=record.sop_class_uid,
        TransferSyntaxUID=record.transfer_syntax_uid,
        Modality=record.modality,
        SendingApplicationEntityTitle=record.source,
        ReceivingApplicationEntityTitle=called_aet or record.source,
    )
    if peer:
        out["SendingHostname"] = peer.rsplit(":", 1)[0]
    return out


def incoming_folder(storage: Path, node: str = "") -> Path:
    """Where the archive's temp files are: ``<storage>/.incoming``, or on a folder shared
    by a cluster ``<storage>/.incoming/<node>``."""
    incoming = storage.absolute() / INCOMING
    return incoming / node if node else incoming


class ArchiveStorage:
    """:class:`~stowpair.receiver.storage.StorageBackend` into the archive.

    ``run_blocking`` runs file work off the reactor thread; the index commits on its own
    worker. A re-sent identical instance is acknowledged again without any change (and
    without firing listeners); the same SOP Instance UID with other bytes fails with
    0x0111 and the stored instance is kept (dcm4chee's default overwrite policy NEVER).
    """

    log = Logger()

    def __init__(
        self,
        storage: Path,
        index: InstanceIndex,
        clock: IReactorTime,
        run_blocking: BlockingRunner,
        fsync: bool = True,
        node: str = "",
    ) -> None:
        self.storage = storage.absolute()
        # on a folder shared by a cluster, each node keeps its temp files in its own
        # folder: at start it deletes what a crash left there, and only that
        self.incoming = incoming_folder(storage, node)
        self.index = index
        self.clock = clock
        self.fsync = fsync
        self._run = run_blocking
        self._temps = TempFiles(self.incoming, run_blocking)
        self._direct = DirectBuffers()
        self._listeners: list[InstanceListener] = []
        #: Placed instances whose index row or export rules may be missing (503).
        self._unannounced: set[str] = set()

    def add_listener(self, listener: InstanceListener) -> None:
        """Call ``listener(record, attributes)`` for every newly stored instance, before
        it is acknowledged; a listener's failure is logged, the store still succeeds."""
        self._listeners.append(listener)

    def prepare(self) -> int:
        """Create the folders and delete temp files left by a crash (blocking; at start)."""
        return self._temps.prepare()

    # -- StorageBackend ------------------------------------------------------------

    def open_part(self, ctx: RequestContext) -> TempPart:
        # <storage>/.incoming is on the archive's file system: the final rename is atomic.
        part = self._temps.take()
        if self.fsync:
            part.sync_ahead = self._run  # large parts go to disk while they arrive
            part.direct = self._direct  # and past their first bytes, direct
        return part

    def store(
        self, part_temp: Path, header: InstanceHeader, ctx: RequestContext
    ) -> Deferred[InstanceResult]:
        received = self.clock.seconds()
        d = self._run(lambda: self._place(part_temp, header, ctx, received))
        d.addCallback(lambda placed: Deferred.fromCoroutine(self._index_and_announce(placed)))
        return d

    def discard(self, part_temp: Path) -> Deferred[None]:
        return self._run(lambda: part_temp.unlink(missing_ok=True))

    def request_done(self, ctx: RequestContext) -> None:
        pass

    # -- worker thread -------------------------------------------------------------

    def _place(
        self, temp: Path, header: InstanceHeader, ctx: RequestContext, received: float
    ) -> _Placed:
        dest = instance_path(
            self.storage, header.study_uid, header.series_uid, header.sop_instance_uid
        )
        header_attrs = header_attributes(header.dataset)  # before the file moves
        source = temp
        if not has_part10_prefix(temp):
            source = wrap_as_part10(
                temp, header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid
            )
            temp.unlink(missing_ok=True)
        status = StoreStatus.STORED
        # never replaces a stored file, even one another node placed a moment ago
        if dest.exists() or not place_new(source, dest, self.fsync):
            status = _compare(source, dest)
            source.unlink(missing_ok=True)
            if status is StoreStatus.CONFLICT:
                raise StoreError(
                    DUPLICATE_SOP_INSTANCE,
                    f"SOP Instance {header.sop_instance_uid} is already stored with different "
                    "content; the archive keeps the first (overwrite policy NEVER)",
                )
        record = _header_of(header).record(dest, dest.stat().st_size, ctx.source, received)
        attributes = instance_attributes(header_attrs, record, ctx.peer, ctx.called_aet)
        return _Placed(record, attributes, status)

    # -- reactor thread ------------------------------------------------------------

    async def _announce(self, placed: _Placed) -> None:
        record = placed.record
        self.log.debug(
            "Received {sop_instance_uid} from {source} ({status}, {size} bytes)",
            event="archive.instance.received",
            study_uid=record.study_uid,
            series_uid=record.series_uid,
            sop_instance_uid=record.sop_instance_uid,
            source=record.source,
            size=record.size,
            status=placed.status.value,
        )
        if placed.status is not StoreStatus.STORED:
            return
        for listener in self._listeners:
            try:
                await maybeDeferred(listener, record, placed.attributes)
            except DatabaseUnavailable:
                raise  # no export task could be made: the request is refused (503)
            except Exception:
                self.log.failure(
                    "An instance-received listener failed for {sop_instance_uid}",
                    sop_instance_uid=record.sop_instance_uid,
                    listener=repr(listener),
                    event="archive.listener.failed",
                )

    async def _index_and_announce(self, placed: _Placed) -> InstanceResult:
        uid = placed.record.sop_instance_uid
        try:
            new = await self.index.add([placed.record])
            if placed.status is StoreStatus.UNCHANGED and (new or uid in self._unannounced):
                # the file was placed by a request that could not index it or fire the
                # rules (503): this one completes the job
                placed = replace(placed, status=StoreStatus.STORED)
            await self._announce(placed)
        except DatabaseUnavailable as e:
            self._unannounced.add(uid)
            raise StorageUnavailable(str(e), INGEST_RETRY_AFTER) from None
        self._unannounced.discard(uid)
        r = placed.record
        return InstanceResult(
            r.sop_class_uid, r.sop_instance_uid, r.study_uid, r.series_uid, r.path, r.size
        )


def _compare(source: Path, dest: Path) -> StoreStatus:
    """UNCHANGED when the files, or at least their data sets, are equal: the same
    instance received by C-STORE (File Meta written here) and by STOW-RS (the sender's
    File Meta) is the same instance."""
    if filecmp.cmp(source, dest, shallow=False):
        return StoreStatus.UNCHANGED
    same = _same_bytes_from(source, _dataset_offset(source), dest, _dataset_offset(dest))
    return StoreStatus.UNCHANGED if same else StoreStatus.CONFLICT


def _dataset_offset(path: Path) -> int | None:
    """Where the data set starts after a PS3.10 File Meta that begins with its group
    length (0002,0000) UL, as PS3.10 §7.1 requires; None when it does not."""
    with path.open("rb") as f:
        head = f.read(144)
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
        return None
    return 144 + int.from_bytes(head[140:144], "little")


def _same_bytes_from(a: Path, a_at: int | None, b: Path, b_at: int | None) -> bool:
    if a_at is None or b_at is None:
        return False
    if a.stat().st_size - a_at != b.stat().st_size - b_at:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        fa.seek(a_at)
        fb.seek(b_at)
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def _header_of(header: InstanceHeader) -> ArchiveHeader:
    ds: Any = header.dataset

    def text(keyword: str) -> str:
        value = ds.get(keyword)
        return "" if value is None else str(value).strip()

    return ArchiveHeader(
        study_uid=header.study_uid,
        series_uid=header.series_uid,
        sop_instance_uid=header.sop_instance_uid,
        sop_class_uid=header.sop_class_uid,
        transfer_syntax_uid=header.transfer_syntax_uid,
        modality=text("Modality"),
        patient_id=text("PatientID"),
        study_date=text("StudyDate"),
    )
