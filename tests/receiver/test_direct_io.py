"""Large parts written with O_DIRECT (stowpair/receiver/direct_io.py), on real files.

The writes run through a runner the test drives: it finishes them in any order, so
these tests see the states the thread pool can produce (every buffer out, writes
returning out of order, a part dropped while writes are in flight).
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from stowpair.receiver import direct_io
from stowpair.receiver.direct_io import ALIGN, BLOCK, DIRECT_FROM, DirectBuffers
from stowpair.receiver.storage import TempPart
from tests.receiver.conftest import answer, leftover_parts, run_now
from tests.support.receiver import content_type, encode, make_dataset, multipart


class HeldRunner:
    """Runs nothing until told: ``finish(i)`` runs job ``i`` (in the test's thread) and
    fires its Deferred, as the thread pool and the reactor would."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[], Any], Deferred[Any]]] = []

    def __call__(self, job: Callable[[], Any]) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.jobs.append((job, d))
        return d

    def finish(self, index: int = 0) -> None:
        job, d = self.jobs.pop(index)
        try:
            result = job()
        except Exception:
            d.errback(Failure())
        else:
            d.callback(result)

    def finish_all(self, rng: random.Random | None = None) -> None:
        while self.jobs:
            self.finish(rng.randrange(len(self.jobs)) if rng else 0)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def new_part(path: Path, pool: DirectBuffers, run: Callable[..., Deferred[Any]]) -> TempPart:
    return TempPart(path, path.open("xb"), sync_ahead=run, direct=pool)


def feed(part: TempPart, data: bytes, sizes: Iterator[int]) -> None:
    at = 0
    while at < len(data):
        n = next(sizes)
        part.write(data[at : at + n])
        at += n


def chunk_sizes(rng: random.Random) -> Iterator[int]:
    while True:
        yield rng.choice([1, 100, 4096, 65536, 65537, 300_000, BLOCK, BLOCK + 7])


@pytest.mark.parametrize(
    "size",
    [0, 1, DIRECT_FROM - 1, DIRECT_FROM, DIRECT_FROM + 1, DIRECT_FROM + ALIGN,
     DIRECT_FROM + BLOCK, DIRECT_FROM + 3 * BLOCK + 5, DIRECT_FROM + 9 * BLOCK - 1],
)  # fmt: skip
def test_the_file_holds_exactly_the_bytes_written(tmp_path: Path, size: int) -> None:
    """Table: sizes around the switch to direct writes, a block and the alignment."""
    data = random.Random(size).randbytes(size)
    pool, run = DirectBuffers(), HeldRunner()
    part = new_part(tmp_path / "p.part", pool, run)
    feed(part, data, chunk_sizes(random.Random(1)))
    drained = part.finish()
    run.finish_all(random.Random(2))
    if size <= DIRECT_FROM:
        assert drained is None  # never went direct
    else:
        assert drained is not None and drained.called
    assert (tmp_path / "p.part").read_bytes() == data
    assert pool.lent == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    extra=st.integers(min_value=1, max_value=6 * BLOCK),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_order_of_write_completions_gives_the_same_file(
    tmp_path: Path, extra: int, seed: int
) -> None:
    """Writes returning in any order, some while more bytes arrive: the file is exact,
    the socket is held back only while every buffer of the part is out."""
    rng = random.Random(seed)
    data = rng.randbytes(DIRECT_FROM + extra)
    pool, run = DirectBuffers(per_part=2), HeldRunner()
    path = tmp_path / "p.part"
    path.unlink(missing_ok=True)  # hypothesis runs the examples in one folder
    part = new_part(path, pool, run)
    backlog: list[bool] = []
    part.on_backlog = backlog.append
    sizes = chunk_sizes(rng)
    at = 0
    while at < len(data):
        n = next(sizes)
        part.write(data[at : at + n])
        at += n
        while run.jobs and rng.random() < 0.5:
            run.finish(rng.randrange(len(run.jobs)))
    drained = part.finish()
    run.finish_all(rng)
    assert drained is not None and drained.called
    assert path.read_bytes() == data
    # alternating, starting held (a part that ends held is released by its request)
    assert backlog == [i % 2 == 0 for i in range(len(backlog))]
    assert pool.lent == 0


def test_backlog_is_signalled_when_every_buffer_is_out(tmp_path: Path) -> None:
    pool, run = DirectBuffers(per_part=2), HeldRunner()
    part = new_part(tmp_path / "p.part", pool, run)
    backlog: list[bool] = []
    part.on_backlog = backlog.append
    part.write(bytes(DIRECT_FROM + BLOCK))  # one buffer out
    assert backlog == []
    part.write(bytes(BLOCK))  # both out
    assert backlog == [True]
    part.write(b"x" * 1000)  # arrives anyway (the socket stops a little late): kept
    run.finish(len(run.jobs) - 1)  # a buffer comes back, takes the 1000 bytes, has room
    assert backlog == [True, False]
    run.finish_all()
    d = part.finish()
    run.finish_all()
    assert d is not None and d.called
    assert (tmp_path / "p.part").stat().st_size == DIRECT_FROM + 2 * BLOCK + 1000


def test_a_dropped_part_closes_its_descriptors_once_writes_return(tmp_path: Path) -> None:
    pool, run = DirectBuffers(), HeldRunner()
    before = open_fds()
    part = new_part(tmp_path / "p.part", pool, run)
    part.write(bytes(DIRECT_FROM + 3 * BLOCK))
    assert run.jobs  # direct writes in flight
    part.close()
    assert pool.lent == 1  # the buffers stay lent while the writes run
    run.finish_all()
    assert pool.lent == 0
    assert open_fds() == before


def test_the_pool_bounds_the_parts_written_direct(tmp_path: Path) -> None:
    """With every set of buffers lent, another large part is written buffered (and is
    still exact)."""
    pool = DirectBuffers(parts=2, per_part=2)
    parts = [new_part(tmp_path / f"{i}.part", pool, run_now) for i in range(3)]
    data = random.Random(3).randbytes(DIRECT_FROM + 2 * BLOCK + 11)
    for part in parts:
        part.write(data)
    assert pool.lent == 2
    drained = [part.finish() for part in parts]
    assert [d is not None for d in drained] == [True, True, False]
    assert pool.lent == 0
    for i in range(3):
        assert (tmp_path / f"{i}.part").read_bytes() == data


@pytest.fixture
def refusals() -> Iterator[list[dict[str, Any]]]:
    """``receiver.direct_io.refused`` events logged during the test."""
    from twisted.logger import globalLogPublisher

    seen: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("event") == "receiver.direct_io.refused":
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def test_a_file_system_without_o_direct_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusals: list[dict[str, Any]]
) -> None:
    real_open = os.open

    def no_direct(path: Any, flags: int, *args: Any) -> int:
        if flags & os.O_DIRECT:  # as open(2) answers on such a file system
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_io.os, "open", no_direct)
    pool = DirectBuffers()
    data = random.Random(4).randbytes(DIRECT_FROM + BLOCK)
    for name in ("p.part", "q.part"):
        part = new_part(tmp_path / name, pool, run_now)
        part.write(data)
        assert part.finish() is None
        assert (tmp_path / name).read_bytes() == data
    assert not pool.supported and pool.lent == 0
    # said once, naming the folder
    assert [(e["folder"], e["reason"]) for e in refusals] == [
        (str(tmp_path), "the file system refuses O_DIRECT (EINVAL)")
    ]


def test_a_device_wanting_more_alignment_gets_the_same_bytes_buffered(
    tmp_path: Path, refusals: list[dict[str, Any]]
) -> None:
    """EINVAL from a direct write (here a real one: an unaligned offset) writes the same
    bytes buffered and stops direct writes for later parts."""
    path = tmp_path / "p.part"
    path.write_bytes(b"a" * 100)
    fd = direct_io.open_direct(path)
    assert fd is not None, "the test folder's file system refuses O_DIRECT"
    pool = DirectBuffers()
    buffers = pool.reserve()
    assert buffers is not None
    fallback = os.open(path, os.O_WRONLY)
    writer = direct_io.DirectWriter(fd, fallback, 100, pool, buffers, run_now, folder="f")
    writer.write(b"b" * (2 * BLOCK + 50))  # two writes refused, one log line
    d = writer.finish()
    assert d.called and not pool.supported
    assert [(e["folder"], e["reason"]) for e in refusals] == [
        ("f", "a direct write was refused (EINVAL: alignment)")
    ]
    assert path.read_bytes() == b"a" * 100 + b"b" * (2 * BLOCK + 50)


def test_a_failed_direct_write_is_raised_by_the_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    pool = DirectBuffers()
    part = new_part(tmp_path / "p.part", pool, run_now)
    part.write(bytes(DIRECT_FROM))
    monkeypatch.setattr(direct_io.os, "pwrite", full)
    part.write(bytes(BLOCK))  # the write fails in the "thread"
    with pytest.raises(OSError) as raised:
        part.write(b"more")
    assert raised.value.errno == errno.ENOSPC
    part.close()
    assert pool.lent == 0


def test_a_failed_last_write_fails_the_drain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = HeldRunner()
    part = new_part(tmp_path / "p.part", DirectBuffers(), run)
    part.write(bytes(DIRECT_FROM + BLOCK))
    drained = part.finish()
    assert drained is not None
    failures: list[Failure] = []
    drained.addErrback(failures.append)
    monkeypatch.setattr(direct_io.os, "pwrite", lambda *a: 0)  # wrote nothing
    run.finish_all()
    assert [f.value.errno for f in failures] == [errno.EIO]  # type: ignore[attr-defined]


# -- through the receiver --------------------------------------------------------------


def large_dataset(pixel_bytes: int) -> Any:
    """An instance of about ``pixel_bytes`` (the receiver reads only up to Pixel Data)."""
    ds = make_dataset()
    ds.PixelData = random.Random(pixel_bytes).randbytes(pixel_bytes)
    return ds


def test_a_large_instance_is_stored_exactly(make_stub: Callable[..., Any]) -> None:
    """A 9 MB instance and a small one in one request: both stored byte for byte."""
    stub = make_stub()
    large = encode(large_dataset(9 * 1024 * 1024))
    small = encode(make_dataset())
    r = answer(stub, stub.post(multipart([large, small]), content_type()))
    assert r.code == 200
    stored = sorted(p.read_bytes() for p in Path(stub.directory).rglob("*.dcm"))
    assert stored == sorted([large, small])
    assert leftover_parts(stub.directory) == []


def test_a_full_disk_past_the_direct_threshold_fails_a700(
    make_stub: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stowpair.dicom.response import parse_json

    real = os.pwrite

    def full_after_one(fd: int, data: Any, offset: int) -> int:
        if offset >= DIRECT_FROM + BLOCK:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(direct_io.os, "pwrite", full_after_one)
    stub = make_stub()
    ds = large_dataset(8 * 1024 * 1024)
    small = encode(make_dataset())
    r = answer(stub, stub.post(multipart([encode(ds), small]), content_type()))
    assert r.code == 202
    failed = parse_json(r.body).failed
    assert [(f.sop_instance_uid, f.failure_reason) for f in failed] == [(ds.SOPInstanceUID, 0xA700)]
    assert [p.read_bytes() for p in Path(stub.directory).rglob("*.dcm")] == [small]
    assert leftover_parts(stub.directory) == []


def test_the_request_stops_reading_while_a_parts_buffers_are_out(tmp_path: Path) -> None:
    """StowTransaction: the socket is paused when every direct buffer of the part being
    received is out, resumed when one is back, and the part is stored once its writes
    returned."""
    from stowpair.receiver.settings import ReceiverSettings
    from stowpair.receiver.storage import RequestContext, make_storage
    from stowpair.receiver.transaction import StowTransaction

    run = HeldRunner()
    storage = make_storage("uid", tmp_path / "store", run)
    storage.prepare()
    calls: list[str] = []
    tx = StowTransaction(
        RequestContext("r1", 0.0, "127.0.0.1:1"), "XBOUNDARYX", storage, ReceiverSettings(),
        run, random.Random(1), lambda: calls.append("pause"), lambda: calls.append("resume"),
    )  # fmt: skip
    instance = encode(large_dataset(DIRECT_FROM + 5 * BLOCK))
    body = multipart([instance])
    for at in range(0, len(body), 65536):
        tx.feed(body[at : at + 65536])
        if calls == ["pause"]:
            break
    assert calls == ["pause"]  # four buffers out, the rest of the body waits
    while calls == ["pause"]:
        run.finish(len(run.jobs) - 1)
    assert calls == ["pause", "resume"]
    tx.feed(body[at + 65536 :])
    done = tx.finish()
    while not done.called:
        run.finish()
    assert [i.path.read_bytes() for _, i in done.result.stored] == [instance]  # type: ignore[union-attr]
    assert calls[-1] == "resume"
