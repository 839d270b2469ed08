"""Storage backends: where a received, validated instance goes.

The contract (:class:`StorageBackend`), as the receiver uses it for each part:

1. ``open_part(ctx)`` — on the reactor thread, when a part starts: create an empty
   temp file **on the same file system as the final place** (so the final rename is
   atomic) and return it as a :class:`TempPart`. The receiver writes the part's bytes
   into it and closes it.
2. The receiver reads and validates the header in a thread (``InstanceHeader``: UIDs
   already valid, Study UID already checked against the URL, transfer syntax accepted).
3. ``store(part_temp, header, ctx)`` — the backend validates nothing more; it places
   the file atomically (``stowpair.fsutil.place_atomically``: fsync file, rename,
   fsync directory) **in its thread pool** and returns a Deferred that fires with an
   :class:`InstanceResult` only once the instance is durable. It fails with
   :class:`StoreError` (a Table I.2-2 reason) or an ``OSError`` (ENOSPC → 0xA700).
   A re-sent instance replaces the stored one (``InstanceResult.replaced``).
4. ``discard(part_temp)`` — for a part that will not be stored: remove the temp file.
5. ``request_done(ctx)`` — once per request, after every store fired: drop any
   per-request state.

A backend may also offer ``place(part_temp, header, ctx)``: what ``store`` does, blocking,
returning the :class:`InstanceResult` (or raising as ``store`` fails). The receiver then
reads the header, checks it and places the part in one job of its thread pool (one
hand-off per part instead of two). stowrsd's backends offer it; the archive's does not
(it indexes on the reactor thread).

An archive backend implements the same five methods and indexes in ``store``.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from twisted.internet.defer import Deferred

from stowpair.fsutil import place_atomically
from stowpair.receiver.direct_io import DIRECT_FROM, DirectBuffers, DirectWriter, open_direct
from stowpair.receiver.instance import InstanceHeader

T = TypeVar("T")
#: Runs a blocking callable off the reactor thread (``deferToThreadPool`` in production,
#: a synchronous runner in unit tests).
BlockingRunner = Callable[[Callable[[], T]], "Deferred[T]"]

INCOMING = ".incoming"


@dataclass(frozen=True)
class RequestContext:
    """What a backend may know about the request a part belongs to."""

    #: Unique per process, e.g. ``"r12"``.
    request_id: str
    #: Reactor time (epoch seconds) when the request's headers arrived.
    received_at: float
    #: ``host:port`` of the client.
    peer: str
    #: Study Instance UID from the URL, when the request named one.
    study_uid: str | None = None
    #: Who sent it (archive: the AE title from the URL), free text.
    source: str = ""
    #: The AE title it was sent to, when the protocol names one (DIMSE: the Called AE
    #: Title); empty for STOW-RS, where ``source`` is the AE title of the URL.
    called_aet: str = ""


def prepare_temp_folder(directory: Path) -> int:
    """Create ``directory`` and delete the temp files (``*.part``) a crash left in it
    (blocking); returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for stale in directory.glob("*.part"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def remove_stale(directory: Path, pattern: str, keep: str = "") -> tuple[int, list[str]]:
    """Delete the files matching ``pattern`` in ``directory`` that a crash left, except
    those whose name starts with ``keep`` (this process's own, non-empty); blocking, for a
    thread. Returns how many were removed and, one line each, those that could not be:
    a stale file left behind is no reason to stop."""
    removed, problems = 0, []
    try:
        found = list(directory.glob(pattern))
    except OSError as e:
        return 0, [f"cannot list {directory}: {e.strerror}"]
    for stale in found:
        if keep and stale.name.startswith(keep):
            continue
        try:
            stale.unlink(missing_ok=True)
            removed += 1
        except OSError as e:
            problems.append(f"cannot remove {stale}: {e.strerror}")
    return removed, problems


class TempFiles:
    """Temp files created ahead of need in the thread pool.

    A part then starts without touching the file system on the reactor thread: creating
    a file waits for the file system journal while storage threads fsync, which took
    ~40% of the reactor thread's time when many small instances arrived. When no spare
    is ready, :meth:`take` creates one at once (and may raise ``OSError``).
    """

    def __init__(self, directory: Path, run_blocking: BlockingRunner, spares: int = 8):
        self.directory = directory
        self._run = run_blocking
        self._target = spares
        self._spares: deque[TempPart] = deque()
        self._refilling = False
        self._counter = itertools.count(1)

    def prepare(self) -> int:
        """Create the folder and delete temp files left by a crash (blocking, at start);
        returns how many were removed."""
        return prepare_temp_folder(self.directory)

    def take(self) -> TempPart:
        try:
            part = self._spares.popleft()
        except IndexError:
            part = self._create()
        self._refill()
        return part

    def _create(self) -> TempPart:
        path = self.directory / f"{os.getpid()}-{next(self._counter)}.part"
        try:
            return TempPart(path, path.open("xb"))
        except FileNotFoundError:  # the storage folder was removed under us: recreate it
            self.directory.mkdir(parents=True, exist_ok=True)
            return TempPart(path, path.open("xb"))

    def _refill(self) -> None:
        if self._refilling or len(self._spares) >= self._target:
            return
        self._refilling = True

        def fill() -> None:
            while len(self._spares) < self._target:
                self._spares.append(self._create())

        def done(_: object) -> None:
            self._refilling = False  # a failure (disk full) shows again in take()

        self._run(fill).addBoth(done)


#: A part's bytes are flushed to disk ahead (``fdatasync`` in the thread pool) every
#: this many bytes while it arrives, so that the fsync before its acknowledgement only
#: waits for the tail (S2, 50 MB instances: the flush overlaps the receiving).
SYNC_AHEAD = 8 * 1024 * 1024


@dataclass
class TempPart:
    """A part being received: a temp file open for writing, next to its destination.

    With ``sync_ahead`` (a runner of blocking calls), its bytes go to disk while it
    arrives (see :data:`SYNC_AHEAD`); the final fsync stays where it is (durability is
    decided there, and an error of the early flush shows again then). With ``direct``
    as well, the bytes past :data:`~stowpair.receiver.direct_io.DIRECT_FROM` are written
    with ``O_DIRECT`` by the thread pool (:mod:`stowpair.receiver.direct_io`);
    ``on_backlog(True)`` then asks to stop reading the socket while every buffer of the
    part is being written, ``on_backlog(False)`` to read on.

    The part ends with :meth:`finish` (a Deferred to wait for when writes are still in
    flight, else None) or is dropped with :meth:`close`.
    """

    path: Path
    file: IO[bytes]
    sync_ahead: BlockingRunner[Any] | None = None
    direct: DirectBuffers | None = None
    on_backlog: Callable[[bool], None] | None = None
    _unsynced: int = 0
    _syncing: bool = False
    _size: int = 0
    _writer: DirectWriter | None = None

    def write(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer.write(data)
            return
        if self.direct is not None and self._size + len(data) > DIRECT_FROM:
            cut = DIRECT_FROM - self._size
            self.file.write(data[:cut])
            self._size += cut
            if self._start_direct():
                assert self._writer is not None
                self._writer.write(memoryview(data)[cut:])
                return
            data = data[cut:]
        self.file.write(data)
        self._size += len(data)
        if self.sync_ahead is None:
            return
        self._unsynced += len(data)
        if self._unsynced >= SYNC_AHEAD and not self._syncing:
            self._start_sync(self.sync_ahead)

    def _start_direct(self) -> bool:
        """Write the rest direct, when the file system and the buffers allow it."""
        pool, self.direct = self.direct, None  # decided once per part
        run = self.sync_ahead
        if pool is None or not pool.supported or run is None:
            return False
        buffers = pool.reserve()
        if buffers is None:
            return False
        self.file.flush()  # an OSError here (disk full) is the write's
        try:
            fd = open_direct(self.path)
        except OSError:
            pool.release(buffers)
            raise
        folder = str(self.path.parent)
        if fd is None:
            pool.release(buffers)
            pool.refuse(folder, "the file system refuses O_DIRECT (EINVAL)")
            return False
        fallback = os.dup(self.file.fileno())
        self._writer = DirectWriter(
            fd, fallback, self._size, pool, buffers, run, self.on_backlog, folder
        )
        if not self._syncing:
            self._start_sync(run)  # the first bytes, buffered, go to disk meanwhile
        return True

    def _start_sync(self, run: BlockingRunner[None]) -> None:
        self.file.flush()  # an OSError here (disk full) is the write's
        self._unsynced, self._syncing = 0, True
        fd = os.dup(self.file.fileno())  # the part may be closed while it runs

        def sync() -> None:
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)

        def done(_: object) -> None:
            self._syncing = False  # a failure repeats in the fsync before the ack

        run(sync).addBoth(done)

    def finish(self) -> Deferred[None] | None:
        """The part's last byte came: close the file; with direct writes in flight, a
        Deferred that fires once they all returned (or fails with the first error)."""
        writer = self._writer
        if writer is None:
            self.close()
            return None
        try:
            drained = writer.finish()
        finally:
            if not self.file.closed:
                self.file.close()
        return drained

    def close(self) -> None:
        """Drop the part (or end it without direct writes): close the file."""
        if self._writer is not None:
            self._writer.abort()
        if not self.file.closed:
            self.file.close()


@dataclass
class HeadOnlyTempPart(TempPart):
    """A temp part that keeps only its first ``limit`` bytes: enough for the header
    (stop before Pixel Data) when the instance itself is discarded (``--ignore``)."""

    limit: int = 4 * 1024 * 1024
    written: int = 0

    def write(self, data: bytes) -> None:
        if self.written < self.limit:
            self.file.write(data[: self.limit - self.written])
        self.written += len(data)


@dataclass(frozen=True)
class InstanceResult:
    """A durably stored instance; ``path`` is None when the backend discards."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    path: Path | None
    size: int
    #: True when an instance with the same SOP Instance UID was replaced.
    replaced: bool = False
    #: Warning Reason (Table I.2-1) to report, e.g. 0xB000 after coercion.
    warning_reason: int | None = None


class StoreError(Exception):
    """A store that failed for a reason the client should see (Table I.2-2 code)."""

    def __init__(self, failure_reason: int, message: str) -> None:
        super().__init__(message)
        self.failure_reason = failure_reason
        self.message = message


class StorageUnavailable(Exception):
    """The backend cannot take instances now (its index's database cannot be reached):
    the whole request is answered 503 with ``Retry-After`` and may be sent again as is."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


#: ``place(part_temp, header, ctx)``: ``store`` without the thread hand-off (blocking).
BlockingPlace = Callable[[Path, InstanceHeader, RequestContext], "InstanceResult"]


class StorageBackend(Protocol):
    """Where received instances go; see the module docstring for the call sequence."""

    def open_part(self, ctx: RequestContext) -> TempPart: ...

    def store(
        self, part_temp: Path, header: InstanceHeader, ctx: RequestContext
    ) -> Deferred[InstanceResult]: ...

    def discard(self, part_temp: Path) -> Deferred[None]: ...

    def request_done(self, ctx: RequestContext) -> None: ...


class _DirectoryBackend:
    """Shared part: temp files in ``<directory>/.incoming``, discard, cleanup."""

    def __init__(self, directory: Path, run_blocking: BlockingRunner, fsync: bool = True):
        self.directory = directory
        self.incoming = directory / INCOMING
        self.fsync = fsync
        self._run = run_blocking
        self._temps = TempFiles(self.incoming, run_blocking)
        self._direct = DirectBuffers()

    def prepare(self) -> int:
        """Create the folders and delete temp files left by a crash (blocking).

        Returns how many stale temp files were removed.
        """
        return self._temps.prepare()

    def create_folders(self) -> None:
        """The first half of :meth:`prepare`: create the folders (blocking, OSError)."""
        self.incoming.mkdir(parents=True, exist_ok=True)

    def remove_stale(self) -> tuple[int, list[str]]:
        """The second half, for a thread once the listener is open: see
        :func:`remove_stale`."""
        return remove_stale(self.incoming, "*.part")

    def open_part(self, ctx: RequestContext) -> TempPart:
        # Creating an empty file is a metadata operation; writes land in the page
        # cache. fsync (the slow part) happens in store(), in the thread pool; large
        # parts are flushed ahead while they arrive (TempPart.sync_ahead) and written
        # direct past their first bytes (TempPart.direct).
        part = self._temps.take()
        if self.fsync:
            part.sync_ahead = self._run
            part.direct = self._direct
        return part

    def store(
        self, part_temp: Path, header: InstanceHeader, ctx: RequestContext
    ) -> Deferred[InstanceResult]:
        return self._run(lambda: self.place(part_temp, header, ctx))

    def place(self, part_temp: Path, header: InstanceHeader, ctx: RequestContext) -> InstanceResult:
        """``store`` without the thread hand-off (blocking): each layout's own."""
        raise NotImplementedError

    def discard(self, part_temp: Path) -> Deferred[None]:
        return self._run(lambda: part_temp.unlink(missing_ok=True))

    def request_done(self, ctx: RequestContext) -> None:
        pass

    def _place(self, temp: Path, dest: Path, header: InstanceHeader) -> InstanceResult:
        # Defence in depth (the UIDs naming ``dest`` are validated): a lexical check, as
        # resolving both paths cost two lstat per folder level for every instance.
        root = os.path.normpath(self.directory)
        if os.path.commonpath((root, os.path.normpath(dest))) != root or dest == self.directory:
            raise StoreError(0x0110, f"refusing to write outside {root}: {dest}")
        replaced = dest.exists()
        place_atomically(temp, dest, self.fsync)
        return InstanceResult(
            header.sop_class_uid,
            header.sop_instance_uid,
            header.study_uid,
            header.series_uid,
            dest,
            header.size,
            replaced,
        )


class UidLayoutStorage(_DirectoryBackend):
    """``<directory>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm`` (the default)."""

    def place(self, part_temp: Path, header: InstanceHeader, ctx: RequestContext) -> InstanceResult:
        dest = (
            self.directory / header.study_uid / header.series_uid / f"{header.sop_instance_uid}.dcm"
        )
        return self._place(part_temp, dest, header)


class UnpackStorage(_DirectoryBackend):
    """dcm4che ``stowrsd --unpack``: ``<directory>/<YYYYMMDDhhmmss.SSS>/<NNN>.dcm``.

    One folder per request, named from the request's local arrival time with
    milliseconds (+1 ms on a collision, as dcm4che does); NNN is the part number.
    """

    def __init__(self, directory: Path, run_blocking: BlockingRunner, fsync: bool = True):
        super().__init__(directory, run_blocking, fsync)
        self._folders: dict[str, Path] = {}
        self._lock = threading.Lock()

    def _folder(self, ctx: RequestContext) -> Path:
        with self._lock:
            folder = self._folders.get(ctx.request_id)
            millis = round(ctx.received_at * 1000)
            while folder is None:
                stamp = datetime.fromtimestamp(millis / 1000)
                candidate = self.directory / (
                    stamp.strftime("%Y%m%d%H%M%S.") + f"{stamp.microsecond // 1000:03d}"
                )
                try:
                    candidate.mkdir(parents=True)
                    folder = self._folders[ctx.request_id] = candidate
                except FileExistsError:
                    millis += 1
            return folder

    def place(self, part_temp: Path, header: InstanceHeader, ctx: RequestContext) -> InstanceResult:
        dest = self._folder(ctx) / f"{header.part_number:03d}.dcm"
        return self._place(part_temp, dest, header)

    def request_done(self, ctx: RequestContext) -> None:
        with self._lock:
            self._folders.pop(ctx.request_id, None)


class DiscardStorage(_DirectoryBackend):
    """dcm4che ``stowrsd --ignore``: validate and answer, keep nothing."""

    def open_part(self, ctx: RequestContext) -> TempPart:
        part = self._temps.take()
        return HeadOnlyTempPart(part.path, part.file)

    def place(self, part_temp: Path, header: InstanceHeader, ctx: RequestContext) -> InstanceResult:
        part_temp.unlink(missing_ok=True)
        return InstanceResult(
            header.sop_class_uid,
            header.sop_instance_uid,
            header.study_uid,
            header.series_uid,
            None,
            header.size,
        )


LAYOUTS: dict[str, type[_DirectoryBackend]] = {
    "uid": UidLayoutStorage,
    "unpack": UnpackStorage,
    "discard": DiscardStorage,
}


def make_storage(
    layout: str, directory: Path, run_blocking: BlockingRunner, fsync: bool = True
) -> _DirectoryBackend:
    """The backend for ``layout`` (``uid``, ``unpack`` or ``discard``)."""
    try:
        cls = LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})") from None
    return cls(directory, run_blocking, fsync)
