"""One STOW-RS request's body: parts streamed to temp files, checked, stored.

:class:`StowTransaction` is fed the body as it arrives (reactor thread). Each part is
written to a temp file from the storage backend; when it ends, its header is read in
a thread, checked (Study UID from the URL, accepted transfer syntax, part size,
injected faults) and handed to the backend. :meth:`StowTransaction.finish` fires
once every part is settled, with a :class:`TransactionResult`.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.receiver.instance import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    TRANSFER_SYNTAX_NOT_SUPPORTED,
    InstanceError,
    InstanceHeader,
    PartHeaderReader,
    read_head_header,
    read_part_header,
)
from stowpair.receiver.mpr_parser import (
    ContentTypeError,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnded,
    PartStarted,
    parse_content_type,
)
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import (
    BlockingPlace,
    BlockingRunner,
    InstanceResult,
    RequestContext,
    StorageBackend,
    StorageUnavailable,
    StoreError,
    TempPart,
)

log = Logger()

#: Pause reading the socket when this many parts wait for their header read or fsync.
MAX_PENDING = 4
#: The first bytes of each part are also kept in memory until its header is read: the
#: header is read from them (from the temp file only when it is longer), and when the
#: temp file cannot be written (full disk) they still name the failed instance. Headers
#: are a few KB; 16 KB (64 KB until the fourth session's S8 runs, where the heads of the
#: parts in flight of 200 clients took about 35 MB of stowrsd's peak RSS).
HEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class PartFailure:
    """A part that was not stored, with its Table I.2-2 reason and a message."""

    part_number: int
    failure_reason: int
    message: str
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None


@dataclass
class TransactionResult:
    stored: list[tuple[int, InstanceResult]] = field(default_factory=list)
    failed: list[PartFailure] = field(default_factory=list)
    #: Where the body broke (multipart syntax), or None.
    syntax_error: str | None = None
    #: Why the rest of the body was not read: it passed the request size limit (413).
    limit_error: str | None = None
    #: The backend could not take instances (503 with Retry-After), or None.
    unavailable: StorageUnavailable | None = None
    parts: int = 0
    bytes: int = 0


@dataclass
class _Part:
    number: int
    #: None when the temp file could not even be created (see ``write_error``).
    temp: TempPart | None
    transfer_syntax: str | None
    problem: InstanceError | None = None
    size: int = 0
    roll: float = 1.0
    header: InstanceHeader | None = None
    head: bytearray = field(default_factory=bytearray)
    #: Set when writing the temp file failed; the rest of the part is then dropped.
    write_error: OSError | None = None


class StowTransaction:
    """The body of one request; see the module docstring."""

    def __init__(
        self,
        ctx: RequestContext,
        boundary: str,
        storage: StorageBackend,
        settings: ReceiverSettings,
        run_blocking: BlockingRunner,
        rng: random.Random,
        pause: Callable[[], None] = lambda: None,
        resume: Callable[[], None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.result = TransactionResult()
        self._parser = MultipartParser(boundary, settings.limits)
        self._storage = storage
        self._run = run_blocking
        self._rng = rng
        self._pause, self._resume = pause, resume
        self._part: _Part | None = None
        self._pending: list[Deferred[Any]] = []
        self._in_flight = 0
        self._holds: set[str] = set()  # why the socket is not read: "pending", "direct"
        self._stopped = False
        self._workers = settings.header_workers
        if self._workers is not None:
            self._workers.receiving += 1

    def feed(self, data: bytes) -> None:
        """Consume body bytes; syntax errors are recorded, never raised."""
        if self._stopped:
            return
        self.result.bytes += len(data)
        try:
            events = self._parser.feed(data)
        except MultipartError as e:
            self._syntax_error(e)
            return
        for event in events:
            if isinstance(event, PartStarted):
                self._start_part(event)
            elif isinstance(event, PartData):
                self._write(event.data)
            elif isinstance(event, PartEnded):
                self._end_part()

    def finish(self) -> Deferred[TransactionResult]:
        """The body ended: check the close delimiter, wait for every part to settle."""
        if not self._stopped:
            try:
                self._parser.close()
            except MultipartError as e:
                self._syntax_error(e)
            self._stop()
        result = self.result
        if result.syntax_error is None and result.limit_error is None and result.parts == 0:
            result.syntax_error = "the multipart body holds no parts"
        d: Deferred[Any] = DeferredList(list(self._pending), consumeErrors=True)
        return d.addCallback(lambda _: self._done())

    def abort(self) -> None:
        """Stop: drop the part being received (parts already ended still settle)."""
        self._stop()
        self._drop_current()

    def _stop(self) -> None:
        if not self._stopped and self._workers is not None:
            self._workers.receiving -= 1
        self._stopped = True

    def stop_at_limit(self, limit: int) -> None:
        """The body passes ``limit`` bytes: drop the part being received and read no
        more; the parts that ended before stay stored and are listed (docs/conformance.md)."""
        if self._stopped:
            return
        where = f"in part {self._part.number}" if self._part is not None else "between parts"
        option = self.settings.max_request_size_option
        self.result.limit_error = (
            f"the request body passed {limit} bytes ({option}) {where}; the rest of the"
            " body was not read and nothing in it was stored"
        )
        self.abort()

    # -- parts -------------------------------------------------------------

    def _syntax_error(self, e: MultipartError) -> None:
        self.result.syntax_error = str(e)
        self.abort()

    def _drop_current(self) -> None:
        part, self._part = self._part, None
        if part is not None and part.temp is not None:
            part.temp.close()
            self._storage.discard(part.temp.path)

    def _hold(self, reason: str) -> None:
        """Stop reading the socket for ``reason`` (until :meth:`_release`)."""
        if not self._holds:
            self._pause()
        self._holds.add(reason)

    def _release(self, reason: str) -> None:
        if reason in self._holds:
            self._holds.discard(reason)
            if not self._holds:
                self._resume()

    def _direct_backlog(self, full: bool) -> None:
        """The part being received has all its direct-write buffers out (True) or one
        back (False)."""
        if full:
            self._hold("direct")
        else:
            self._release("direct")

    def _start_part(self, event: PartStarted) -> None:
        self.result.parts += 1
        content_type = event.headers.get("Content-Type") or "application/dicom"
        problem, ts = None, None
        try:
            media, params = parse_content_type(content_type)
            ts = params.get("transfer-syntax")
            if media != "application/dicom":
                problem = f"has Content-Type {media}; only application/dicom parts are accepted"
        except ContentTypeError as e:
            problem = f"has a malformed Content-Type: {e}"
        try:
            part = _Part(event.number, self._storage.open_part(self.ctx), ts)
        except OSError as e:  # e.g. no space left even for an empty file
            part = _Part(event.number, None, ts)
            self._write_failed(part, e)
        if problem and part.problem is None:
            part.problem = InstanceError(CANNOT_UNDERSTAND, f"part {event.number} {problem}")
        if part.temp is not None:
            part.temp.on_backlog = self._direct_backlog
        self._part = part

    def _write(self, data: bytes) -> None:
        part = self._part
        if part is None:
            return
        limit = self.settings.max_part_size
        if limit is not None and part.size + len(data) > limit:
            # keep the head (it holds the UIDs for the response), drop the rest
            data = data[: max(limit - part.size, 0)]
            if part.problem is None:
                part.problem = InstanceError(
                    OUT_OF_RESOURCES, f"part {part.number} is larger than {limit} bytes"
                )
        part.size += len(data)
        if len(part.head) < HEAD_BYTES:
            part.head += data[: HEAD_BYTES - len(part.head)]
        if part.write_error is None and part.temp is not None:
            try:
                part.temp.write(data)
            except OSError as e:
                self._write_failed(part, e)

    def _write_failed(self, part: _Part, error: OSError) -> None:
        """The temp file could not be written: fail the part (0xA700 when the disk is
        full, PS3.18 Table I.2-2), free the space its bytes took, read on."""
        part.write_error = error
        if part.problem is None:
            full = error.errno in (errno.ENOSPC, errno.EDQUOT)
            part.problem = InstanceError(
                OUT_OF_RESOURCES if full else PROCESSING_FAILURE,
                f"part {part.number}: "
                + ("storage is full" if full else f"could not be written ({error.strerror})"),
            )
        if part.temp is None:
            return
        try:
            part.temp.close()  # flushing the buffer fails again: the file goes anyway
        except OSError:
            pass
        self._storage.discard(part.temp.path)

    def _end_part(self) -> None:
        part, self._part = self._part, None
        if part is None:
            return
        writing: Deferred[None] | None = None
        if part.write_error is None and part.temp is not None:
            try:
                writing = part.temp.finish()  # flushes the last buffered bytes
            except OSError as e:
                self._write_failed(part, e)
        self._release("direct")  # this part takes no more bytes
        part.roll = self._rng.random()  # drawn in part order: repeatable with --seed
        self._in_flight += 1
        if self._in_flight > MAX_PENDING:
            self._hold("pending")
        head, part.head = bytes(part.head), bytearray()
        d: Deferred[InstanceResult]
        if writing is None:
            d = self._settle_part(part, head)
        else:  # direct writes still in flight: their end (or error) first
            writing.addErrback(self._direct_write_failed, part)
            d = writing.addCallback(lambda _: self._settle_part(part, head))
        d.addCallbacks(self._stored, self._failed, callbackArgs=(part,), errbackArgs=(part,))
        d.addBoth(self._settled)
        self._pending.append(d)
        if self._workers is not None:
            self._workers.parts += 1
            d.addBoth(self._workers.settled)

    def _direct_write_failed(self, failure: Failure, part: _Part) -> Failure | None:
        """A direct write failed: the part fails as a failed buffered write does (0xA700
        when the disk is full); anything but an OSError goes on to :meth:`_failed`."""
        error = failure.value
        if not isinstance(error, OSError):
            return failure
        self._write_failed(part, error)
        return None

    def _settle_part(self, part: _Part, head: bytes) -> Deferred[InstanceResult]:
        """Read, check and store a part whose bytes are all written (or failed)."""
        # a failed write always set part.problem: _check refuses before anything is stored
        temp = part.temp if part.write_error is None else None
        place = getattr(self._storage, "place", None)
        if temp is not None and place is not None:
            # One thread job reads, checks and places the part: a hand-off to the thread
            # pool and back less per part than the three steps below.
            placing = temp
            workers = self._workers
            read: PartHeaderReader = read_part_header
            if workers is not None and workers.busy(self._parser.complete):
                read = workers.read
            return self._run(lambda: self._read_check_place(head, part, placing, place, read))
        d = self._run(lambda: self._read(head, part, temp))
        d.addCallback(self._check, part)
        d.addCallback(self._store, temp)
        return d

    def _read(
        self,
        head: bytes,
        part: _Part,
        temp: TempPart | None,
        read: PartHeaderReader = read_part_header,
    ) -> InstanceHeader:
        """In a thread: the part's header (from its first bytes alone when its temp file
        failed). A header that cannot be read because the part was already refused (cut
        at --max-part-size, disk full) keeps the reason it was refused for."""
        try:
            if temp is None:
                return read_head_header(head, part.size, part.number, part.transfer_syntax)
            return read(head, temp.path, part.size, part.number, part.transfer_syntax)
        except InstanceError as e:
            if part.problem is None:
                raise
            problem = part.problem
            uids = (e.sop_class_uid, e.sop_instance_uid)
            raise InstanceError(problem.failure_reason, problem.message, *uids) from None

    def _read_check_place(
        self, head: bytes, part: _Part, temp: TempPart, place: BlockingPlace, read: PartHeaderReader
    ) -> InstanceResult:
        """In a thread: read (with ``read``), check and place, for a backend that places
        blocking (these need only the UIDs: the header may be read by a worker process)."""
        return place(temp.path, self._check(self._read(head, part, temp, read), part), self.ctx)

    def _store(self, header: InstanceHeader, temp: TempPart | None) -> Deferred[InstanceResult]:
        assert temp is not None, "a part without a temp file never passes _check"
        return self._storage.store(temp.path, header, self.ctx)

    def _check(self, header: InstanceHeader, part: _Part) -> InstanceHeader:
        """Checks that need the header; raise InstanceError to refuse (Table I.2-2)."""
        part.header = header
        uids = (header.sop_class_uid, header.sop_instance_uid)
        expected = self.ctx.study_uid
        if part.problem is not None:
            raise InstanceError(part.problem.failure_reason, part.problem.message, *uids)
        if expected is not None and header.study_uid != expected:
            raise InstanceError(
                DOES_NOT_MATCH_SOP_CLASS,
                f"part {part.number}: Study Instance UID {header.study_uid} does not match"
                f" {expected} in the request URL",
                *uids,
            )
        accepted = self.settings.accept_transfer_syntaxes
        if accepted is not None and header.transfer_syntax_uid not in accepted:
            raise InstanceError(
                TRANSFER_SYNTAX_NOT_SUPPORTED,
                f"part {part.number}: transfer syntax {header.transfer_syntax_uid} is not"
                " accepted by this server",
                *uids,
            )
        faults = self.settings.faults
        if part.roll < faults.fail_rate:
            raise InstanceError(
                faults.fail_reason,
                f"part {part.number}: injected failure {faults.fail_reason:04X}"
                f" (--fail-rate {faults.fail_rate})",
                *uids,
            )
        return header

    def _stored(self, result: InstanceResult, part: _Part) -> None:
        self.result.stored.append((part.number, result))

    def _failed(self, failure: Failure, part: _Part) -> None:
        if isinstance(failure.value, StorageUnavailable):
            self.result.unavailable = self.result.unavailable or failure.value
            failure = Failure(StoreError(OUT_OF_RESOURCES, failure.value.message))
        self.result.failed.append(_as_part_failure(failure, part))
        if part.temp is not None:
            self._storage.discard(part.temp.path)

    def _settled(self, _: object) -> None:
        self._in_flight -= 1
        if self._in_flight <= MAX_PENDING // 2:
            self._release("pending")

    def _done(self) -> TransactionResult:
        self.result.stored.sort(key=lambda item: item[0])
        self.result.failed.sort(key=lambda f: f.part_number)
        self._storage.request_done(self.ctx)
        return self.result


def _as_part_failure(failure: Failure, part: _Part) -> PartFailure:
    e, number = failure.value, part.number
    if isinstance(e, InstanceError):
        return PartFailure(number, e.failure_reason, e.message, e.sop_class_uid, e.sop_instance_uid)
    uids = (part.header.sop_class_uid, part.header.sop_instance_uid) if part.header else ()
    if isinstance(e, StoreError):
        return PartFailure(number, e.failure_reason, f"part {number}: {e.message}", *uids)
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return PartFailure(number, OUT_OF_RESOURCES, f"part {number}: storage is full", *uids)
    log.failure(
        "part {part} could not be stored", failure, part=number, event="receiver.store.error"
    )
    return PartFailure(number, PROCESSING_FAILURE, f"part {number}: {type(e).__name__}: {e}", *uids)
