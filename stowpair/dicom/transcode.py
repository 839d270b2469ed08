"""Decompress or re-encode one stored instance to a native Transfer Syntax, off the reactor.

:func:`transcode_file` is the blocking worker: pydicom reads the file, the pylibjpeg plugins
decode encapsulated pixel data (chosen explicitly, so python-gdcm is never used even when it
is installed: it can abort the process), Big Endian values are byte-swapped, the File Meta
Information is regenerated for the output syntax (PS3.10 §7.1), and the result is written to
a temporary name next to ``dest`` and renamed. :class:`Transcoder` runs it in a bounded
process pool (default) or thread pool and returns Deferreds.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, cast

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filewriter import correct_ambiguous_vr
from pydicom.pixels import decompress
from pydicom.pixels.decoders.base import _PIXEL_DATA_DECODERS
from pydicom.uid import UID
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from stowpair import __version__
from stowpair.dicom import transfer_syntax as ts
from stowpair.fsutil import place_atomically
from stowpair.logs import register_events

#: Our (0002,0012) Implementation Class UID: a UUID-derived UID (PS3.5 §B.2), fixed forever.
IMPLEMENTATION_CLASS_UID = "2.25.225419705053713212906681195375047334016"
#: (0002,0013) Implementation Version Name, at most 16 characters (SH).
IMPLEMENTATION_VERSION_NAME = f"STOWPAIR_{__version__}"[:16]

#: Output syntaxes we can write. Compression is never done (dcm4chee never re-compresses).
TARGETS = frozenset(
    {ts.EXPLICIT_VR_LE, ts.IMPLICIT_VR_LE, ts.DEFLATED_EXPLICIT_VR_LE, ts.EXPLICIT_VR_BE}
)

#: Decoding plugin per compressed syntax, in order of preference. Never "gdcm" or "pillow":
#: the pylibjpeg family is what we test against dcmtk, and gdcm can SIGABRT the process.
_PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    uid: ("pylibjpeg", "pydicom") if uid == ts.RLE_LOSSLESS else ("pylibjpeg",)
    for uid in _PIXEL_DATA_DECODERS
    if not ts.is_native(uid)
}

#: Lossy JPEG keeps colour as YCbCr inside the codec; convert to RGB on decode as dcmtk's
#: dcmdjpeg does. Every other syntax keeps its stored values and Photometric Interpretation.
_AS_RGB = frozenset({ts.JPEG_BASELINE_8BIT, ts.JPEG_EXTENDED_12BIT})

# PS3.5 §7.3: byte order applies per word of these VRs; OB, UN and strings have none.
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_PIXEL_DATA = 0x7FE00010


register_events(
    {
        "transcode.pool.started": ("mode", "workers"),
        "transcode.pool.stopped": ("mode",),
        "transcode.completed": ("src", "target_ts", "bytes", "elapsed"),
        "transcode.failed": ("src", "target_ts", "error"),
    }
)


class TranscodeError(Exception):
    """One sentence naming the file, the source syntax and the cause."""


def _cause(exc: BaseException) -> str:
    """The exception on one line (pydicom's plugin errors span several)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def decoding_plugin(uid: str) -> str:
    """The pydicom decoding plugin we use for ``uid``; raises when none is available."""
    decoder = _PIXEL_DATA_DECODERS.get(UID(uid))
    for name in _PREFERRED_PLUGINS.get(uid, ()):
        if decoder is not None and name in decoder[0].available_plugins:
            return name
    raise TranscodeError(f"no decoder for {ts.describe(uid)}: {_why_not(uid)}")


def can_decompress(uid: str) -> bool:
    """True when :func:`transcode_file` can turn ``uid`` into a native syntax."""
    if ts.is_native(uid):
        return True
    try:
        decoding_plugin(uid)
    except TranscodeError:
        return False
    return True


def _why_not(uid: str) -> str:
    info = ts.BY_UID.get(uid)
    if info is None:
        return "it is not a standard transfer syntax pydicom can read"
    if info.kind is ts.Kind.VIDEO:
        return "video streams are never decompressed; list the syntax in transfer-syntax"
    if info.kind is ts.Kind.REFERENCED:
        return "the pixel data is not inside the object"
    if info.kind is ts.Kind.OTHER:
        return "it is a retired encoding pydicom cannot read"
    if uid in _PREFERRED_PLUGINS:
        return "install pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg and pylibjpeg-rle"
    return "pydicom has no decoder for it"


def transcode_file(src: Path, target_ts: str, dest: Path, *, fsync: bool = False) -> int:
    """Write ``src`` to ``dest`` in native ``target_ts``; return the bytes written. Blocking.

    SOP Class/Instance UIDs are kept; the FMI is regenerated with our implementation UID.
    ``dest`` appears complete or not at all (temp file + rename). Raises
    :class:`TranscodeError` for every failure, with the file, syntaxes and cause.
    """
    if target_ts not in TARGETS:
        raise TranscodeError(
            f"cannot transcode {src} to {ts.describe(target_ts)}: only native syntaxes "
            "(Explicit/Implicit VR Little Endian, Deflated, Big Endian) are written, "
            "the archive never compresses"
        )
    ds = _read(src)
    source_ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    try:
        _to_native(ds, src, source_ts)
        source_le = source_ts != ts.EXPLICIT_VR_BE  # decompressed data is little endian
        if source_le != (target_ts != ts.EXPLICIT_VR_BE):
            correct_ambiguous_vr(ds, source_le)
            _swap_byte_order(ds, ds.get("BitsAllocated"))
        ds.file_meta = _file_meta(ds, target_ts, src)
        ds.preamble = b"\x00" * 128
        return _write(ds, dest, fsync)
    except TranscodeError:
        raise
    except Exception as exc:
        raise TranscodeError(
            f"cannot transcode {src} from {ts.describe(source_ts)} to "
            f"{ts.describe(target_ts)}: {_cause(exc)}"
        ) from exc


def _read(src: Path) -> FileDataset:
    try:
        ds = pydicom.dcmread(src)
    except Exception as exc:
        raise TranscodeError(f"cannot read {src} as DICOM: {_cause(exc)}") from exc
    if not ds.file_meta.get("TransferSyntaxUID"):
        raise TranscodeError(f"cannot transcode {src}: it has no (0002,0010) Transfer Syntax UID")
    return ds


def _to_native(ds: Dataset, src: Path, source_ts: str) -> None:
    """Decode encapsulated pixel data in place; native data sets are left for re-encoding."""
    if ts.is_native(source_ts):
        return
    info = ts.BY_UID.get(source_ts)
    if info is None:
        raise TranscodeError(
            f"cannot transcode {src}: its transfer syntax {source_ts} is private or unknown"
        )
    if "PixelData" not in ds:
        return  # e.g. an SR filed under a JPEG syntax: the data set itself is Explicit VR LE
    try:
        plugin = decoding_plugin(source_ts)
    except TranscodeError:
        why = _why_not(source_ts)
        raise TranscodeError(f"cannot decode {ts.describe(source_ts)} in {src}: {why}") from None
    try:
        decompress(
            ds,
            decoding_plugin=plugin,
            as_rgb=source_ts in _AS_RGB,
            generate_instance_uid=False,  # the receiver must acknowledge the stored UID
        )
    except Exception as exc:
        raise TranscodeError(
            f"cannot decode {info.name} in {src} with {plugin}: {_cause(exc)}"
        ) from exc


def _swap_byte_order(ds: Dataset, bits_allocated: object) -> None:
    """Flip the byte order of every word-typed binary value, recursing into sequences.

    Numbers (US, SS, UL, FL, ...) are decoded by pydicom and re-encoded by the writer; only
    raw OW/OF/OL/OD/OV bytes need swapping. Pixel Data in OW swaps per pixel sample
    (16/32/64-bit), and per 16-bit word for 8-bit data (PS3.5 §A.2). UN stays untouched.
    """
    for elem in ds:  # iterating converts raw elements into decoded ones
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_byte_order(item, item.get("BitsAllocated", bits_allocated))
            continue
        width = _SWAP_WIDTH.get(elem.VR)
        if not width or not isinstance(elem.value, bytes | bytearray) or not elem.value:
            continue
        if elem.tag == _PIXEL_DATA and isinstance(bits_allocated, int) and bits_allocated > 16:
            width = bits_allocated // 8
        elem.value = _swapped(bytes(elem.value), width)


def _swapped(data: bytes, width: int) -> bytes:
    import numpy as np

    usable = len(data) - len(data) % width
    words = np.frombuffer(data, dtype=f"<u{width}", count=usable // width)
    return words.byteswap().tobytes() + data[usable:]


def _file_meta(ds: Dataset, target_ts: str, src: Path) -> FileMetaDataset:
    """PS3.10 §7.1 group 0002 for the output: keep the SOP UIDs, name ourselves."""
    old = ds.file_meta
    class_uid = old.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID")
    instance_uid = old.get("MediaStorageSOPInstanceUID") or ds.get("SOPInstanceUID")
    if not class_uid or not instance_uid:
        raise TranscodeError(f"cannot transcode {src}: it has no SOP Class or Instance UID")
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(class_uid)
    meta.MediaStorageSOPInstanceUID = UID(instance_uid)
    meta.TransferSyntaxUID = UID(target_ts)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _write(ds: Dataset, dest: Path, fsync: bool) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    # O_EXCL and a random name, like mkstemp, but mode 0o666 & ~umask like any new file.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            pydicom.dcmwrite(out, ds, enforce_file_format=True)
        size = temp.stat().st_size
        place_atomically(temp, dest, fsync=fsync)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


class Transcoder(Service):
    """Runs :func:`transcode_file` in a bounded pool and answers with Deferreds.

    ``use_processes`` (default) uses a ``forkserver`` process pool: the pylibjpeg decoders
    hold the GIL for a whole frame (a 512x512 SV1 frame stalled a 1 ms ticker thread for
    21 ms), so threads would both stall the reactor and not scale; two processes ran about
    twice as fast as two threads (docs/transcoding.md). ``use_processes=False`` uses a Twisted
    ``ThreadPool`` (less memory, no child processes). Each worker handles one instance at a
    time, so memory is bounded by ``max_workers`` decoded instances. Use :meth:`start` /
    :meth:`stop`, or attach it to a ``MultiService``.
    """

    log = Logger()

    def __init__(
        self, reactor: IReactorThreads, max_workers: int = 2, use_processes: bool = True
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._reactor = reactor
        self._clock = cast(IReactorTime, reactor)  # a real reactor provides both
        self.max_workers = max_workers
        self.use_processes = use_processes
        self.mode = "processes" if use_processes else "threads"
        self._executor: ProcessPoolExecutor | None = None
        self._threads: ThreadPool | None = None

    def start(self) -> None:
        """Create the pool; a second call does nothing."""
        if self._executor or self._threads:
            return
        if self.use_processes:
            self._executor = self._new_executor()
        else:
            self._threads = ThreadPool(0, self.max_workers, name="stowpair-transcode")
            self._threads.start()
        self.log.info(
            "Transcoder started: {workers} {mode}",
            event="transcode.pool.started",
            mode=self.mode,
            workers=self.max_workers,
        )

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # Workers fork from a server that already imported pydicom and the codecs.
        context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(self.max_workers, mp_context=context)

    def stop(self) -> Deferred[None]:
        """Let running jobs finish, drop queued ones; fires when the workers are gone."""
        executor, threads = self._executor, self._threads
        self._executor = self._threads = None
        if executor is None and threads is None:
            return succeed(None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            join: Any = executor.shutdown
        else:
            join = threads.stop  # type: ignore[union-attr]
        # Joining blocks, so it happens on the reactor's own thread pool.
        d = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), join)
        d.addCallback(lambda _: self._stopped())
        return d

    def _stopped(self) -> None:
        self.log.info("Transcoder stopped", event="transcode.pool.stopped", mode=self.mode)

    def startService(self) -> None:
        super().startService()
        self.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.stop()

    def transcode(self, src: Path, target_ts: str, dest: Path) -> Deferred[int]:
        """Transcode in the pool; fires with the bytes written or fails with TranscodeError."""
        started = self._clock.seconds()
        if self._threads is not None:
            d: Deferred[int] = deferToThreadPool(
                self._reactor, self._threads, transcode_file, src, target_ts, dest
            )
        elif self._executor is not None:
            d = self._submit(src, target_ts, dest)
        else:
            return fail(TranscodeError(f"cannot transcode {src}: the transcoder is not started"))
        d.addCallbacks(
            self._completed,
            self._failed,
            callbackArgs=(src, target_ts, started),
            errbackArgs=(src, target_ts),
        )
        return d

    def _submit(self, src: Path, target_ts: str, dest: Path) -> Deferred[int]:
        assert self._executor is not None
        try:
            future = self._executor.submit(transcode_file, src, target_ts, dest)
        except BrokenProcessPool:
            # A worker died earlier (OOM killer, signal): its jobs failed; start a new pool.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            future = self._executor.submit(transcode_file, src, target_ts, dest)

        def cancel(_: Deferred[int]) -> None:
            future.cancel()  # only a queued job can be cancelled; a running one completes

        d: Deferred[int] = Deferred(cancel)

        def deliver(done: Future[int]) -> None:  # runs on the executor's thread
            self._reactor.callFromThread(_fire, d, done, src)

        future.add_done_callback(deliver)
        return d

    def _completed(self, size: int, src: Path, target_ts: str, started: float) -> int:
        self.log.debug(
            "Transcoded {src} to {target_ts}: {bytes} bytes in {elapsed:.3f}s",
            event="transcode.completed",
            src=str(src),
            target_ts=target_ts,
            bytes=size,
            elapsed=self._clock.seconds() - started,
        )
        return size

    def _failed(self, failure: Failure, src: Path, target_ts: str) -> Failure:
        self.log.warn(
            "Transcoding {src} to {target_ts} failed: {error}",
            event="transcode.failed",
            src=str(src),
            target_ts=target_ts,
            error=failure.getErrorMessage(),
        )
        return failure


def _fire(d: Deferred[int], done: Future[int], src: Path) -> None:
    if d.called or done.cancelled():
        return  # the caller cancelled; nobody is waiting for the result
    exc = done.exception()
    if exc is None:
        d.callback(done.result())
    elif isinstance(exc, TranscodeError):
        d.errback(Failure(exc))
    else:  # BrokenProcessPool and the like: a worker died (e.g. killed by the OOM killer)
        d.errback(TranscodeError(f"cannot transcode {src}: worker failed: {exc!r}"))
