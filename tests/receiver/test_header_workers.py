"""stowrsd's header workers (stowpair.receiver.header_workers): processes that read part
headers so that parsing is not held to the one core of stowrsd's interpreter.

A worker must give every part the verdict the storage thread gives it (the same UIDs, or
the same Failure Reason and message), lose nothing when it is killed, and end when
stowrsd ends, even by SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.receiver.header_workers import HeaderWorkers, default_count, parse_count
from stowpair.receiver.instance import InstanceError, read_part_header
from stowpair.receiver.transaction import HEAD_BYTES
from tests.badinput.dicomparts import CT_IMAGE, Uids, element, instance
from tests.support.peers import descendants, free_port

_ROOT = "1.2.826.0.1.3680043.8.498.57"


def _part(n: int, extra: bytes = b"") -> bytes:
    return instance(Uids(CT_IMAGE, f"{_ROOT}.1.{n}", f"{_ROOT}.1", f"{_ROOT}.1.2"), extra=extra)


@pytest.fixture(scope="module")
def workers() -> Iterator[HeaderWorkers]:
    pool = HeaderWorkers(1)
    pool.start()
    yield pool
    pool.stop()


def _verdict(read: object, data: bytes, folder: Path, head: int = HEAD_BYTES) -> tuple:
    """What ``read`` makes of ``data`` stored at a temp path, given its first ``head``
    bytes as the receiver keeps them."""
    path = folder / "part"
    path.write_bytes(data)
    try:
        h = read(data[:head], path, len(data), 3, None)  # type: ignore[operator]
    except InstanceError as e:
        return ("refused", e.failure_reason, e.message, e.sop_class_uid, e.sop_instance_uid)
    uids = (h.sop_class_uid, h.sop_instance_uid, h.study_uid, h.series_uid)
    return ("read", *uids, h.transfer_syntax_uid, h.part_number, h.size)


@pytest.mark.parametrize(
    ("text", "count"),
    [("0", 0), ("1", 1), ("4", 4), ("64", 64), ("auto", default_count())],
)
def test_counts(text: str, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["-1", "65", "1.5", "two", "", " 2", "٣"])
def test_bad_counts_are_refused_with_the_option_named(text: str) -> None:
    with pytest.raises(ValueError, match=r"--header-workers .*expected auto or a whole number"):
        parse_count(text)


def test_auto_is_one_per_core_and_none_on_one_core() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_count() == (cores if cores > 1 else 0)


@pytest.mark.parametrize(
    ("complete", "receiving", "parts", "busy"),
    [
        (True, 1, 0, False),  # the last part of the only request: read in the thread
        (False, 1, 0, True),  # more of this body to receive meanwhile
        (True, 2, 0, True),  # another request is being received
        (True, 1, 1, True),  # another part is being read or placed
        (False, 3, 5, True),
    ],
)
def test_when_a_worker_reads(complete: bool, receiving: int, parts: int, busy: bool) -> None:
    pool = HeaderWorkers(1)
    pool.receiving, pool.parts = receiving, parts
    assert pool.busy(complete) is busy


def test_a_worker_reads_what_the_thread_reads(workers: HeaderWorkers, tmp_path: Path) -> None:
    before = workers.offloaded
    data = _part(1)
    got = _verdict(workers.read, data, tmp_path)
    assert got == _verdict(read_part_header, data, tmp_path)
    assert got[0] == "read" and got[2] == f"{_ROOT}.1.1"
    assert workers.offloaded == before + 1
    # plain str crosses the pipe: pydicom's UID validates itself again when unpickled
    assert all(type(uid) is str for uid in got[1:6])


def test_a_header_longer_than_what_is_sent_is_read_from_the_file(
    workers: HeaderWorkers, tmp_path: Path
) -> None:
    """A worker gets the first 16 KB; a 40 KB header (a long comment) is read from the
    temp file, as the thread does."""
    comments = element(0x0020, 0x4000, "LT", b"x" * 40_000)
    data = _part(2, comments) + element(0x7FE0, 0x0010, "OW", b"\0" * 200_000)
    got = _verdict(workers.read, data, tmp_path)
    assert got == _verdict(read_part_header, data, tmp_path)
    assert got[0] == "read"


def test_a_header_cut_at_what_is_sent_is_not_taken_for_a_whole_one(
    workers: HeaderWorkers, tmp_path: Path
) -> None:
    """The part is complete on disk but the head ends inside its header: the answer
    comes from the file, not from the head."""
    data = _part(3, element(0x0020, 0x4000, "LT", b"y" * 20_000))
    for head in (HEAD_BYTES, len(data) - 1):
        assert _verdict(workers.read, data, tmp_path, head) == _verdict(
            read_part_header, data, tmp_path
        )


_VALID = _part(7, element(0x0028, 0x0010, "US", b"\x00\x02"))


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(_VALID)
    at = draw(st.integers(0, len(data) - 2))
    data[at : at + draw(st.integers(1, 4))] = draw(st.binary(min_size=0, max_size=4))
    cut = draw(st.integers(len(data) // 2, len(data)))
    return bytes(data[:cut])


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(damaged())
def test_a_damaged_part_gets_the_same_verdict_in_a_worker(
    workers: HeaderWorkers, tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    """Failure Reason, message and UIDs are the storage thread's, for any damage."""
    folder = tmp_path_factory.mktemp("damaged")
    assert _verdict(workers.read, data, folder) == _verdict(read_part_header, data, folder)


def test_a_killed_worker_is_replaced_and_its_part_still_read(tmp_path: Path) -> None:
    pool = HeaderWorkers(1)
    pool.start()
    try:
        data = _part(4)
        expected = _verdict(read_part_header, data, tmp_path)
        assert _verdict(pool.read, data, tmp_path) == expected
        (worker,) = pool._all
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join(10)
        assert _verdict(pool.read, data, tmp_path) == expected  # read in the thread
        assert pool.replaced == 1
        (new,) = pool._all
        assert new.process.pid != worker.process.pid and new.process.is_alive()
        offloaded = pool.offloaded
        assert _verdict(pool.read, data, tmp_path) == expected
        assert pool.offloaded == offloaded + 1
    finally:
        pool.stop()


def test_stopped_workers_end_and_headers_are_read_in_the_thread(tmp_path: Path) -> None:
    pool = HeaderWorkers(2)
    pool.start()
    processes = [w.process for w in pool._all]
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    pool.stop()
    assert not any(p.is_alive() for p in processes)
    offloaded = pool.offloaded
    data = _part(5)
    assert _verdict(pool.read, data, tmp_path) == _verdict(read_part_header, data, tmp_path)
    assert pool.offloaded == offloaded


def test_no_workers_means_no_processes() -> None:
    pool = HeaderWorkers(0)
    pool.start()
    assert pool._all == []
    pool.stop()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_end_when_stowrsd_is_killed(tmp_path: Path) -> None:
    """SIGKILL to ``twistd -n stowrsd`` alone (not its process group): its header
    workers and the process that forked them end by themselves."""
    port = free_port()
    twistd = str(Path(sys.executable).with_name("twistd"))
    argv = [twistd, "-n", "--pidfile=", "stowrsd", "-b", f"127.0.0.1:{port}"]
    argv += ["-d", str(tmp_path / "store"), "--json-log", "-", "--header-workers", "2"]
    process = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        helpers: set[int] = set()
        while len(helpers) < 3 and time.monotonic() < deadline:  # forkserver + 2 workers
            assert process.poll() is None, "stowrsd exited"
            time.sleep(0.1)  # polling another process: there is no event to wait on
            helpers = set(descendants(process.pid))
        assert len(helpers) >= 3, helpers
        process.kill()
        process.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in helpers if _alive(p)]
    finally:
        if process.poll() is None:
            process.kill()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_part_the_worker_cannot_answer_for_is_read_in_the_thread(
    workers: HeaderWorkers, tmp_path: Path
) -> None:
    """The header goes on past the head and the temp file is gone: the worker cannot
    read it, the thread reads it again and fails the same way as without workers."""
    data = _part(6, element(0x0020, 0x4000, "LT", b"z" * 30_000))
    missing = tmp_path / "gone"
    with pytest.raises(FileNotFoundError):
        read_part_header(data[:16384], missing, len(data), 1, None)
    with pytest.raises(FileNotFoundError):
        workers.read(data[:16384], missing, len(data), 1, None)
    assert workers._all[0].process.is_alive()


def test_a_replaced_worker_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    pool = HeaderWorkers(1, lambda pid, code: seen.append((pid, code)))
    pool.start()
    try:
        (worker,) = pool._all
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join(10)
        data = _part(8)
        assert _verdict(pool.read, data, tmp_path) == _verdict(read_part_header, data, tmp_path)
        assert seen == [(worker.process.pid, -signal.SIGKILL)]
    finally:
        pool.stop()
