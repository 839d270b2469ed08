"""The STOW-RS request body: multipart/related streamed from PS3.10 files on disk.

PS3.18 §10.5.1.2 / RFC 2387: ``multipart/related; type="application/dicom"`` with one
part per SOP Instance, each ``Content-Type: application/dicom; transfer-syntax=<uid>``
holding a whole PS3.10 file. Files are read in bounded chunks, so memory does not grow
with instance size; with ``chunked`` false the exact ``Content-Length`` is known in
advance from the file sizes (no buffering, unlike dcm4chee's RESTEasy engine).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer
from twisted.internet.task import (
    CooperativeTask,
    Cooperator,
    NotPaused,
    TaskFinished,
    TaskStopped,
)
from twisted.python.failure import Failure
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

#: Bytes read from a file per step: large enough for throughput, small enough for memory.
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class BodyPart:
    """One part: a PS3.10 file and the transfer syntax it is encoded in."""

    path: Path
    transfer_syntax: str
    size: int


def part_header(boundary: bytes, transfer_syntax: str | None) -> bytes:
    """The delimiter line and part headers that precede one file (PS3.18 §8.7.3.5.2:
    ``transfer-syntax`` parameter; None leaves it out, for peers that ignore such parts)."""
    ctype = b"application/dicom"
    if transfer_syntax is not None:
        ctype += b"; transfer-syntax=" + transfer_syntax.encode("ascii")
    return b"--" + boundary + b"\r\nContent-Type: " + ctype + b"\r\n\r\n"


@implementer(IBodyProducer)
class MultipartRelatedProducer:
    """Streams the parts of one request; reports every write to ``on_progress``.

    ``length`` is exact when ``chunked`` is false (the files must not change size while
    sending: a size mismatch fails the request instead of sending a wrong length) and
    ``UNKNOWN_LENGTH`` when true, which makes twisted.web send
    ``Transfer-Encoding: chunked``. After ``stopProducing`` the Deferred returned by
    ``startProducing`` never fires (IBodyProducer contract; otherwise a TLS failure is
    masked as ``RequestGenerationFailed([TaskStopped])``).
    """

    def __init__(
        self,
        parts: Sequence[BodyPart],
        cooperator: Cooperator,
        *,
        chunked: bool = False,
        chunk_size: int = CHUNK_SIZE,
        boundary: str | None = None,
        on_progress: Callable[[int], None] | None = None,
        transfer_syntax_parameter: bool = True,
    ) -> None:
        self.parts = tuple(parts)
        self._ts_param = transfer_syntax_parameter
        self.boundary = (boundary or uuid.uuid4().hex).encode("ascii")
        self._cooperator = cooperator
        self._chunk_size = chunk_size
        self._on_progress = on_progress
        self._tail = b"--" + self.boundary + b"--\r\n"
        self.exact_length = sum(self.part_length(p) for p in self.parts) + len(self._tail)
        self.length: int | object = UNKNOWN_LENGTH if chunked else self.exact_length
        self.bytes_written = 0
        self._task: CooperativeTask | None = None
        self._file: IO[bytes] | None = None

    @property
    def content_type(self) -> bytes:
        return b'multipart/related; type="application/dicom"; boundary=' + self.boundary

    def part_length(self, part: BodyPart) -> int:
        """Bytes one part occupies on the wire (header, file, CRLF)."""
        return len(self._header(part)) + part.size + 2

    def _header(self, part: BodyPart) -> bytes:
        return part_header(self.boundary, part.transfer_syntax if self._ts_param else None)

    def _write(self, consumer: IConsumer, data: bytes) -> None:
        consumer.write(data)
        self.bytes_written += len(data)
        if self._on_progress is not None:
            self._on_progress(len(data))

    def _steps(self, consumer: IConsumer) -> Iterator[None]:
        for part in self.parts:
            self._write(consumer, self._header(part))
            yield None
            sent = 0
            with part.path.open("rb") as self._file:
                while chunk := self._file.read(self._chunk_size):
                    sent += len(chunk)
                    if sent > part.size:
                        break
                    self._write(consumer, chunk)
                    yield None
            self._file = None
            if sent != part.size:
                raise OSError(
                    f"{part.path} changed size while being sent "
                    f"({part.size} bytes expected, {sent} read); the request was aborted"
                )
            self._write(consumer, b"\r\n")
        self._write(consumer, self._tail)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._task = self._cooperator.cooperate(self._steps(consumer))
        done: Deferred[None] = Deferred()

        def finished(_: object) -> None:
            done.callback(None)

        def failed(reason: Failure) -> Failure | None:
            if reason.check(TaskStopped):
                return None  # stopped: ``done`` stays unfired, as the contract demands
            done.errback(reason)
            return None

        self._task.whenDone().addCallbacks(finished, failed)
        return done

    def pauseProducing(self) -> None:
        if self._task is not None:
            try:
                self._task.pause()
            except TaskFinished:
                pass

    def resumeProducing(self) -> None:
        if self._task is not None:
            try:
                self._task.resume()
            except (TaskFinished, NotPaused):
                pass

    def stopProducing(self) -> None:
        if self._task is not None:
            try:
                self._task.stop()
            except TaskFinished:
                pass
        if self._file is not None:
            self._file.close()
            self._file = None
