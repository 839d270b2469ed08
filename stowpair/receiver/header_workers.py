"""Reading part headers in worker processes, so that stowrsd's parsing uses more than
the one core its Python interpreter can (the GIL).

A storage thread hands a part's first bytes (the 16 KB the receiver keeps) and the path
of its temp file (read only when the header goes on past them) to an idle worker over a
pipe and waits for the answer: the UIDs, or the reason the part is refused, exactly as
:func:`~stowpair.receiver.instance.read_part_header` gives them in the thread. The
waiting thread holds no lock, so the reactor thread and the other storage threads run
meanwhile. Workers are forked from Python's ``forkserver``, which has loaded this module
(and pydicom with it). The forkserver is one per process and is shared with stowpair's
transcoding workers when a process has both: what it loads must suit both.

Nothing is lost when a worker is gone (killed, out of memory): the part is read in the
thread as before and a new worker takes its place. A worker ends when its pipe closes,
which is also what happens when stowrsd is killed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from pydicom.dataset import Dataset

from stowpair.receiver.instance import InstanceError, InstanceHeader, read_part_header

T = TypeVar("T")

#: What a worker is asked: head bytes, temp file path, size, part number, part's
#: transfer-syntax parameter.
_Request = tuple[bytes, str, int, int, str | None]


def _serve(conn: Connection) -> None:
    """A worker: answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops stowrsd; stowrsd stops us
    # pydicom's warnings about odd input would go to the terminal, not stowrsd's log:
    # the verdict (a refusal with its reason) is what the answer and the log carry
    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.ERROR + 1)
    while True:
        try:
            request: _Request = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        conn.send_bytes(pickle.dumps(_answer(*request), protocol=pickle.HIGHEST_PROTOCOL))


def _answer(head: bytes, path: str, size: int, number: int, ts: str | None) -> tuple[Any, ...]:
    try:
        h = read_part_header(head, Path(path), size, number, ts)
    except InstanceError as e:
        return ("refused", e.failure_reason, e.message, e.sop_class_uid, e.sop_instance_uid)
    except Exception:  # e.g. the temp file could not be read: the thread reads it again
        return ("unanswered",)  # and fails it as it fails any part it cannot read
    # plain str: pydicom's UID (a str subclass) validates itself again when unpickled,
    # which was most of the receiving thread's cost of a hand-off
    uids = (h.sop_class_uid, h.sop_instance_uid, h.study_uid, h.series_uid, h.transfer_syntax_uid)
    return ("ok", *map(str, uids))


@dataclass
class _Worker:
    process: Any
    conn: Connection


def default_count() -> int:
    """``--header-workers auto``: one worker per core the process may run on, none on a
    single core (a worker would compete with the process it relieves)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores if cores and cores > 1 else 0


def parse_count(text: str, option: str = "--header-workers") -> int:
    """``auto`` or a whole number 0-64; ValueError saying what is wrong."""
    if text == "auto":
        return default_count()
    if not (text.isascii() and text.isdigit()) or int(text) > 64:
        raise ValueError(f"{option} {text!r}: expected auto or a whole number 0-64 (0: none)")
    return int(text)


class HeaderWorkers:
    """``count`` worker processes reading part headers; :meth:`read` is blocking (call it
    from a storage thread). Before :meth:`start` and after :meth:`stop`, headers are read
    in the calling thread."""

    def __init__(
        self, count: int, on_replaced: Callable[[int, int | None], None] | None = None
    ) -> None:
        """``on_replaced(pid, exit code)`` is called (in the storage thread) when a worker
        was found gone and a new one started."""
        if count < 0:
            raise ValueError(f"the number of header workers cannot be negative, got {count}")
        self.count = count
        self._on_replaced = on_replaced
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._running = False
        #: Headers read by a worker, and workers replaced after they were gone.
        self.offloaded = 0
        self.replaced = 0
        #: Requests whose body is being received, and parts being read or placed
        #: (counted on the reactor thread).
        self.receiving = 0
        self.parts = 0

    def start(self) -> None:
        """Start the workers (blocking: run it in a thread)."""
        with self._lock:
            if self._running or self.count == 0:
                return
            self._running = True
        for _ in range(self.count):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        mine, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs,), daemon=True, name="stowrsd-header")
        process.start()
        theirs.close()
        worker = _Worker(process, mine)
        with self._lock:
            self._all.append(worker)
        return worker

    def stop(self) -> None:
        """Close the pipes; the workers end (blocking)."""
        with self._lock:
            self._running = False
            workers, self._all = self._all, []
        for w in workers:
            w.conn.close()
        for w in workers:
            w.process.join(5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()

    def busy(self, body_complete: bool) -> bool:
        """Whether a part that just ended should be read by a worker (on the reactor
        thread, before the part is counted): yes when this process has other work meanwhile
        (more of this body, other requests, other parts). The last part of the only
        request is read in the storage thread: a worker's round trip would only add to
        the time that request waits."""
        return not body_complete or self.receiving > 1 or self.parts > 0

    def settled(self, result: T) -> T:
        """A part counted in ``parts`` was placed or refused (a Deferred callback)."""
        self.parts -= 1
        return result

    def read(
        self, head: bytes, path: Path, size: int, number: int, ts: str | None
    ) -> InstanceHeader:
        """The part's header as :func:`read_part_header` reads it (without the data set:
        stowrsd's layouts need only the UIDs)."""
        if not self._running:
            return read_part_header(head, path, size, number, ts)
        return self._in_worker(head, path, size, number, ts)

    def _in_worker(
        self, head: bytes, path: Path, size: int, number: int, ts: str | None
    ) -> InstanceHeader:
        worker = self._idle.get()
        self.offloaded += 1
        try:
            worker.conn.send_bytes(pickle.dumps((head, str(path), size, number, ts)))
            answer = pickle.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            self._idle.put(self._replace(worker))
            return read_part_header(head, path, size, number, ts)
        self._idle.put(worker)
        if answer[0] == "unanswered":
            return read_part_header(head, path, size, number, ts)
        if answer[0] == "refused":
            raise InstanceError(*answer[1:])
        _, sop_class, sop_instance, study, series, ts_uid = answer
        return InstanceHeader(
            sop_class, sop_instance, study, series, ts_uid, number, size, Dataset()
        )

    def _replace(self, worker: _Worker) -> _Worker:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            running = self._running
        worker.conn.close()
        worker.process.join(1)
        if not running:
            return worker
        self.replaced += 1
        if self._on_replaced is not None:
            self._on_replaced(worker.process.pid, worker.process.exitcode)
        return self._spawn()
