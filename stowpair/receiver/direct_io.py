"""Large parts written with ``O_DIRECT``: past its first :data:`DIRECT_FROM` bytes, a
part's bytes are copied into page-aligned buffers on the reactor thread and each full
buffer is written by the thread pool, bypassing the page cache.

Why: a buffered ``write`` copies every byte into the page cache on the reactor thread,
and the fsync before the acknowledgement then writes it out; for S2's 50 MB instances
that copy was most of stowrsd's CPU (``copy_folio_from_iter_atomic``, 41 % of its
samples with ``perf``), and ``fdatasync`` flushed the same pages again. A direct write
goes from our buffer to the device, in a thread, while the next buffer fills.

Durability is unchanged: a direct write is not durable by itself either; the part is
still fsynced (file, then folder) before it is acknowledged, and that fsync now has only
the first bytes, the tail and the metadata to flush. A file system that refuses
``O_DIRECT`` (``EINVAL``) gets buffered writes, as before, from then on.

Memory stays bounded: :class:`DirectBuffers` lends at most ``parts`` sets of ``per_part``
buffers; a part that finds none free is written buffered, and a part whose buffers are
all being written asks its request to stop reading the socket (``on_backlog``) until one
comes back.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.logs import register_events

log = Logger()
register_events({"receiver.direct_io.refused": ("folder", "reason")})

T = TypeVar("T")
Runner = Callable[[Callable[[], T]], "Deferred[T]"]

#: A part's bytes up to here are written buffered (most instances end before: their
#: header is read back from the page cache); the rest go direct. A multiple of ALIGN.
DIRECT_FROM = 4 * 1024 * 1024
#: One direct write.
BLOCK = 1024 * 1024
#: Offsets and lengths of direct writes are multiples of this (the largest logical block
#: size of common devices); the tail shorter than it is written buffered.
ALIGN = 4096


class DirectBuffers:
    """Page-aligned buffers lent to the parts being written direct (reactor thread).

    At most ``parts`` parts hold a set of ``per_part`` buffers of :data:`BLOCK` bytes at
    once; buffers are created when first needed and kept for the next part.
    """

    def __init__(self, parts: int = 8, per_part: int = 4) -> None:
        self.per_part = per_part
        self.parts = parts
        self._sets_left = parts
        self._free: list[mmap.mmap] = []
        #: False once the file system refused O_DIRECT: parts are then written buffered.
        self.supported = True

    def reserve(self) -> list[mmap.mmap] | None:
        """A set of buffers, or None when every set is lent."""
        if self._sets_left == 0:
            return None
        self._sets_left -= 1
        taken = self._free[: self.per_part]
        del self._free[: self.per_part]
        while len(taken) < self.per_part:
            taken.append(mmap.mmap(-1, BLOCK))  # anonymous: page-aligned
        return taken

    def release(self, buffers: list[mmap.mmap]) -> None:
        self._free.extend(buffers)
        self._sets_left += 1

    def refuse(self, folder: str, reason: str) -> None:
        """The file system or device refused a direct write: large parts are written
        buffered from now on; said once, in the log (on the reactor thread)."""
        if not self.supported:
            return
        self.supported = False
        log.info(
            "large parts in {folder} are written through the page cache from now on: {reason}",
            folder=folder,
            reason=reason,
            event="receiver.direct_io.refused",
        )

    @property
    def lent(self) -> int:
        """Sets of buffers lent at this moment."""
        return self.parts - self._sets_left


def open_direct(path: Path) -> int | None:
    """A second descriptor on ``path`` for direct writes, or None when the file system
    refuses ``O_DIRECT`` (any other error is raised)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return None
        raise


def _pwrite_all(fd: int, fallback_fd: int, buffer: mmap.mmap, length: int, offset: int) -> bool:
    """In a thread: write ``buffer[:length]`` at ``offset``; True when it went direct.

    ``EINVAL`` (the device wants larger alignment than :data:`ALIGN`) writes the same
    bytes through ``fallback_fd`` (buffered) instead."""
    view = memoryview(buffer)[:length]
    try:
        try:
            _write_view(fd, view, offset)
            return True
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
        _write_view(fallback_fd, view, offset)
        return False
    finally:
        view.release()


def _write_view(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        written = os.pwrite(fd, view[done:], offset + done)
        if written <= 0:
            raise OSError(errno.EIO, "writing the temp file wrote nothing")
        done += written


class DirectWriter:
    """The rest of one part, from ``offset`` on (reactor thread, except the writes).

    ``fd`` is the ``O_DIRECT`` descriptor and ``fallback_fd`` a buffered one on the same
    file; both are closed here once the last write returned.
    """

    def __init__(
        self,
        fd: int,
        fallback_fd: int,
        offset: int,
        pool: DirectBuffers,
        buffers: list[mmap.mmap],
        run: Runner[bool],
        on_backlog: Callable[[bool], None] | None = None,
        folder: str = "",
    ) -> None:
        self._folder = folder  # for the log line when direct writes are refused
        self._fd, self._fallback_fd = fd, fallback_fd
        self._offset = offset  # where the next submitted buffer goes
        self._pool, self._buffers = pool, buffers
        self._free = list(buffers)
        self._run = run
        self.on_backlog = on_backlog
        self._current: mmap.mmap | None = None
        self._fill = 0
        self._overflow = bytearray()  # bytes that came while every buffer was out
        self._in_flight = 0
        self._backlogged = False
        self._closed = False
        self._drained: Deferred[None] | None = None
        #: The first write error; later writes raise it.
        self.error: OSError | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Take ``data`` (raises the first write error, if one happened)."""
        if self.error is not None:
            raise self.error
        view = memoryview(data)
        while view:
            if self._current is None:
                if not self._free:
                    self._overflow += view
                    return
                self._current, self._fill = self._free.pop(), 0
            n = min(len(view), BLOCK - self._fill)
            self._current[self._fill : self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == BLOCK:
                full, self._current = self._current, None
                self._submit(full, BLOCK)

    def finish(self) -> Deferred[None]:
        """The part ended: write what is left (the aligned part direct, the short tail
        buffered, here); the Deferred fires once every write returned, or fails with the
        first write error."""
        if self.error is not None:
            raise self.error
        tail = b""
        if self._current is not None:
            aligned = self._fill - self._fill % ALIGN
            tail = bytes(self._current[aligned : self._fill])
            last, self._current = self._current, None
            if aligned:
                self._submit(last, aligned)
            else:
                self._free.append(last)
        tail += self._overflow  # only one of the two is ever non-empty
        self._overflow = bytearray()
        self.on_backlog = None
        self._closed = True
        d = self._drained = Deferred()
        if tail:
            try:
                _write_view(self._fallback_fd, memoryview(tail), self._offset)
            except OSError as e:
                self.error = self.error or e
        self._maybe_done()
        return d

    def abort(self) -> None:
        """The part is dropped: write nothing more; the descriptors close once the
        writes in flight return."""
        self.on_backlog = None
        self._closed = True
        self._overflow = bytearray()
        if self._current is not None:
            self._free.append(self._current)
            self._current = None
        self._maybe_done()

    # -- internals -----------------------------------------------------------

    def _submit(self, buffer: mmap.mmap, length: int) -> None:
        offset, self._offset = self._offset, self._offset + length
        self._in_flight += 1
        fd, fallback_fd = self._fd, self._fallback_fd
        d = self._run(lambda: _pwrite_all(fd, fallback_fd, buffer, length, offset))
        d.addBoth(self._written, buffer)
        if not self._can_take() and not self._backlogged and self.on_backlog is not None:
            self._backlogged = True
            self.on_backlog(True)

    def _written(self, result: bool | Failure, buffer: mmap.mmap) -> None:
        self._in_flight -= 1
        self._free.append(buffer)
        if isinstance(result, Failure):
            error = result.value
            if not isinstance(error, OSError):
                error = OSError(errno.EIO, f"direct write failed: {error!r}")
            self.error = self.error or error
        elif result is False:  # the device wants more alignment: buffered from now on
            self._pool.refuse(self._folder, "a direct write was refused (EINVAL: alignment)")
        if not self._closed and self._overflow and self.error is None:
            pending, self._overflow = self._overflow, bytearray()
            self.write(pending)
        if self._backlogged and (self._can_take() or self._closed):
            self._backlogged = False
            if self.on_backlog is not None:
                self.on_backlog(False)
        self._maybe_done()

    def _can_take(self) -> bool:
        """A buffer has room for more bytes (the one being filled is never full)."""
        return bool(self._free) or self._current is not None

    def _maybe_done(self) -> None:
        if not self._closed or self._in_flight:
            return
        if self._fd >= 0:
            os.close(self._fd)
            os.close(self._fallback_fd)
            self._fd = self._fallback_fd = -1
            self._pool.release(self._buffers)
        d, self._drained = self._drained, None
        if d is not None:
            if self.error is not None:
                d.errback(Failure(self.error))
            else:
                d.callback(None)
