"""Importing files and folders into the archive (``stowpair import``, the demo study).

File work (header parsing, copying, fsync) runs in a thread pool; index writes go to the
index's own worker, batched so a thousand files cost a handful of commits. Importing the
same files again changes nothing: identical bytes are left in place and identical index
rows are not rewritten. Every instance newly stored is handed to the ``on_stored``
listeners once it is indexed, with the attributes export-rule conditions match, as the
STOW-RS ingest does (``stowpair import`` fires the export rules this way).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from stowpair.archive.model import InstanceIndex, InstanceRecord
from stowpair.archive.store import NotStorable, StoreStatus, read_header, store_file
from stowpair.logs import register_events

register_events(
    {
        "archive.import.skipped": ("path", "reason"),
        "archive.import.done": (
            "files",
            "instances",
            "new",
            "studies",
            "skipped",
            "bytes",
            "seconds",
        ),
    }
)

log = Logger()


@dataclass
class ImportSummary:
    """Counts of one import run, updated as files are processed."""

    #: Files found under the paths (known before the first one is read).
    total: int = 0
    #: Files looked at so far.
    files: int = 0
    #: DICOM instances now in the archive from these files (new or already there).
    instances: int = 0
    #: Instances that were not indexed before this run.
    new: int = 0
    studies: set[str] = field(default_factory=set)
    #: (file, reason) of every file not imported.
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: Bytes of the imported instances.
    bytes: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """The one-line summary printed at the end of ``stowpair import``."""
        rate = self.files / self.seconds if self.seconds > 0 else 0.0
        studies = len(self.studies)
        return (
            f"{self.files} files, {self.instances} instances ({self.new} new), "
            f"{studies} {'study' if studies == 1 else 'studies'}, {len(self.skipped)} skipped, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s ({rate:.0f} files/s)"
        )


def find_files(paths: Iterable[Path]) -> Iterator[Path | tuple[Path, str]]:
    """Every regular file under ``paths`` (files or nested folders), sorted per folder.

    A path that does not exist is yielded as ``(path, reason)`` so it is reported, not
    fatal. Symbolic links to folders are not followed (no loops); links to files are.
    """
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    child = Path(folder, name)
                    if child.is_file():
                        yield child
        else:
            yield path, "no such file or folder"


#: A listener for newly stored instances: ``fn(record, attributes)``; may return a Deferred.
StoredListener = Callable[[InstanceRecord, Mapping[str, str]], "Deferred[None] | None"]


@dataclass(frozen=True)
class _Stored:
    record: InstanceRecord
    #: None when the file was already stored (nothing new to announce).
    attributes: dict[str, str] | None


def _ingest_file(path: Path, storage: Path, fsync: bool, attributes: bool) -> _Stored | str:
    """Store one file (worker thread); what was stored, or the reason it was skipped.
    With ``attributes``, a newly stored file's text attributes are read for the rules."""
    try:
        header = read_header(path)
        dest, status = store_file(path, header, storage, fsync=fsync)
    except NotStorable as e:
        return e.reason
    except OSError as e:
        return f"cannot store: {e.strerror} ({e.filename})"
    if status is StoreStatus.CONFLICT:
        return (
            f"SOP Instance UID {header.sop_instance_uid} is already stored with different "
            f"content at {dest}; kept the stored one"
        )
    record = header.record(dest, dest.stat().st_size, source=f"import:{path}")
    if status is not StoreStatus.STORED:
        return _Stored(record, None)
    return _Stored(record, _rule_attributes(record) if attributes else {})


def _rule_attributes(record: InstanceRecord) -> dict[str, str]:
    """What the export-rule conditions of the ingest see (``instance_attributes``)."""
    from pydicom import dcmread

    from stowpair.archive.backend import header_attributes, instance_attributes

    try:
        dataset = dcmread(record.path, stop_before_pixels=True)
        found = header_attributes(dataset)
    except Exception:  # read_header accepted the file: rules still see the record's fields
        found = {}
    return instance_attributes(found, record)


class Importer:
    """Imports files into ``storage`` and ``index``; one instance per run."""

    def __init__(
        self,
        storage: Path,
        index: InstanceIndex,
        reactor: IReactorFromThreads,
        clock: IReactorTime,
        pool: ThreadPool,
        fsync: bool = True,
        parallel: int = 4,
        batch: int = 200,
        progress: Callable[[ImportSummary], None] | None = None,
        on_stored: StoredListener | None = None,
    ) -> None:
        self.storage = storage.absolute()
        self.index = index
        self.reactor = reactor
        self.clock = clock
        self.pool = pool
        self.fsync = fsync
        self.parallel = parallel
        self.batch = batch
        self.progress = progress
        self.on_stored = on_stored
        self.summary = ImportSummary()
        self._pending: list[InstanceRecord] = []
        self._announce: list[tuple[InstanceRecord, dict[str, str]]] = []

    async def run(self, paths: Iterable[Path]) -> ImportSummary:
        """Import every file under ``paths``; fires with the summary."""
        start = self.clock.seconds()
        found = list(find_files(paths))
        self.summary.total = len(found)
        files = iter(found)  # shared by the workers: each takes the next file
        workers = [ensureDeferred(self._worker(files)) for _ in range(self.parallel)]
        results = await DeferredList(workers, consumeErrors=True)
        await self._flush()
        for _ok, value in results:
            if isinstance(value, Failure):  # a bug or the index failing, not a bad file
                value.raiseException()
        self.summary.seconds = self.clock.seconds() - start
        self._log_done()
        return self.summary

    async def _worker(self, files: Iterator[Path | tuple[Path, str]]) -> None:
        for item in files:
            self.summary.files += 1
            if isinstance(item, tuple):
                self._skip(*item)
                continue
            result = await deferToThreadPool(
                self.reactor,
                self.pool,
                _ingest_file,
                item,
                self.storage,
                self.fsync,
                self.on_stored is not None,
            )
            if isinstance(result, str):
                self._skip(item, result)
            else:
                self._accept(result)
            if len(self._pending) >= self.batch:
                await self._flush()
            if self.progress is not None:
                self.progress(self.summary)

    def _accept(self, stored: _Stored) -> None:
        record = dataclasses.replace(stored.record, received_time=self.clock.seconds())
        self.summary.instances += 1
        self.summary.bytes += record.size
        self.summary.studies.add(record.study_uid)
        self._pending.append(record)
        if stored.attributes is not None and self.on_stored is not None:
            self._announce.append((record, stored.attributes))

    def _skip(self, path: Path, reason: str) -> None:
        self.summary.skipped.append((path, reason))
        log.info(
            "Skipped {path}: {reason}",
            event="archive.import.skipped",
            path=str(path),
            reason=reason,
        )

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        announce, self._announce = self._announce, []
        if batch:
            self.summary.new += await self.index.add(batch)
        for record, attributes in announce:  # indexed now: the rules may fire
            assert self.on_stored is not None
            await maybeDeferred(self.on_stored, record, attributes)

    def _log_done(self) -> None:
        s = self.summary
        log.info(
            "Imported {files} files: {instances} instances ({new} new), {studies} studies, "
            "{skipped} skipped, {bytes} bytes in {seconds:.2f}s",
            event="archive.import.done",
            files=s.files,
            instances=s.instances,
            new=s.new,
            studies=len(s.studies),
            skipped=len(s.skipped),
            bytes=s.bytes,
            seconds=s.seconds,
        )
