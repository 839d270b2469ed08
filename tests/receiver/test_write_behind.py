"""Write-behind: a large part is written by a storage thread, in order, one piece at a
time, with the request paused while too much waits (stowpair.receiver.storage.TempPart)."""

from __future__ import annotations

import errno
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, maybeDeferred

from stowpair.dicom.response import parse_json
from stowpair.receiver import storage
from stowpair.receiver.storage import WRITE_BACKLOG, WRITE_BEHIND, WRITE_PIECE, TempPart
from tests.receiver.conftest import Stub, answer, leftover_parts
from tests.support.receiver import content_type, encode, make_dataset, multipart


class Jobs:
    """A runner whose jobs run only when the test says (a storage thread, by hand)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Callable[[], Any], Deferred[Any]]] = []

    def __call__(self, f: Callable[[], Any]) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.waiting.append((f, d))
        return d

    def run_one(self) -> None:
        f, d = self.waiting.pop(0)
        maybeDeferred(f).chainDeferred(d)

    def run_all(self) -> None:
        while self.waiting:
            self.run_one()


class Disk(io.BytesIO):
    """A file that records which writes reached it, and can fail them."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after = fail_after
        self.closed_content = b""

    def write(self, data: Any) -> int:
        if self.fail_after is not None and self.tell() + len(data) > self.fail_after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        if not self.closed:
            self.closed_content = self.getvalue()
        super().close()


def _part(jobs: Jobs, disk: Disk, backlog: list[bool]) -> TempPart:
    return TempPart(Path("/nonexistent"), disk, write_behind=jobs, on_backlog=backlog.append)


def test_small_part_is_written_at_once() -> None:
    jobs, disk, backlog = Jobs(), Disk(), []  # type: list[bool]
    part = _part(jobs, disk, backlog)
    part.write(b"x" * (WRITE_BEHIND - 1))
    assert disk.getvalue() == b"x" * (WRITE_BEHIND - 1) and not jobs.waiting
    done = part.finish()
    assert done.called and disk.closed and not jobs.waiting


def test_large_part_is_written_by_the_runner_in_order() -> None:
    jobs, disk, backlog = Jobs(), Disk(), []  # type: list[bool]
    part = _part(jobs, disk, backlog)
    chunks = [bytes([n % 251]) * 65536 for n in range(64)]  # 4 MB
    for n, chunk in enumerate(chunks):
        part.write(chunk)
        if n % 5 == 0:
            jobs.run_all()
    assert disk.tell() < len(b"".join(chunks))  # some bytes are still queued
    done = part.finish()
    assert not done.called
    jobs.run_all()
    assert done.called and disk.closed
    assert disk.closed_content == b"".join(chunks)


def test_reading_pauses_while_too_much_waits_and_resumes() -> None:
    jobs, disk, backlog = Jobs(), Disk(), []  # type: list[bool]
    part = _part(jobs, disk, backlog)
    part.write(b"a" * WRITE_BEHIND)  # written at once; the rest goes behind
    piece = b"b" * 65536
    while not backlog:
        part.write(piece)
    assert backlog == [True]
    assert len(jobs.waiting) == 1  # one piece at a time
    jobs.run_all()  # the writer catches up
    assert backlog == [True, False]
    finished = part.finish()
    jobs.run_all()
    assert finished.called
    assert len(disk.closed_content) > WRITE_BEHIND + WRITE_BACKLOG


def test_a_failed_piece_fails_the_next_write_and_finish() -> None:
    jobs, disk, backlog = Jobs(), Disk(fail_after=WRITE_BEHIND + WRITE_PIECE // 2), []  # type: list[bool]
    part = _part(jobs, disk, backlog)
    part.write(b"a" * WRITE_BEHIND)
    part.write(b"b" * WRITE_PIECE)
    jobs.run_all()  # the piece fails: disk full
    with pytest.raises(OSError) as e:
        part.write(b"c")
    assert e.value.errno == errno.ENOSPC
    failures: list[Any] = []
    part.finish().addErrback(failures.append)
    jobs.run_all()
    assert failures and failures[0].value.errno == errno.ENOSPC
    assert disk.closed


def test_abandon_waits_for_the_piece_being_written_then_closes() -> None:
    jobs, disk, backlog = Jobs(), Disk(), []  # type: list[bool]
    part = _part(jobs, disk, backlog)
    part.write(b"a" * WRITE_BEHIND)
    part.write(b"b" * WRITE_PIECE)
    assert len(jobs.waiting) == 1
    gone = part.abandon()
    assert not gone.called and not disk.closed  # never closed under a running write
    jobs.run_all()
    assert gone.called and disk.closed


def _padded(ds: Any, size: int) -> bytes:
    """``ds`` encoded with a private OB element of ``size`` bytes (a large instance)."""
    ds.add_new(0x00091010, "LO", "STOWPAIR")
    ds.add_new(0x00091011, "OB", b"\x5a" * size)
    return encode(ds)


def test_large_parts_are_stored_whole_through_the_resource(
    make_stub: Callable[..., Stub],
) -> None:
    stub = make_stub()
    small = encode(make_dataset(source="MR_small.dcm"))
    big = _padded(make_dataset(), 3 * WRITE_BEHIND + 12345)
    r = answer(stub, stub.post(multipart([big, small]), content_type()))
    assert r.code == 200, r.body
    stored = sorted(Path(stub.directory).rglob("*.dcm"), key=lambda p: p.stat().st_size)
    assert [p.read_bytes() for p in stored] == [small, big]
    assert leftover_parts(stub.directory) == []


class _FullAfter:
    """A temp file on a disk that is full after ``budget`` bytes."""

    def __init__(self, file: Any, budget: int) -> None:
        self._file, self._left = file, budget

    def write(self, data: bytes) -> int:
        if len(data) > self._left:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= len(data)
        return int(self._file.write(data))

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def test_full_disk_behind_fails_the_part_with_a700(
    make_stub: Callable[..., Stub], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails in the storage thread (disk full): the part is listed with A700
    under its UIDs, the other part is stored, and no temp file keeps data."""
    real_create = storage.TempFiles._create

    def create(self: storage.TempFiles) -> TempPart:
        part = real_create(self)
        part.file = _FullAfter(part.file, WRITE_BEHIND + WRITE_PIECE)  # type: ignore[assignment]
        return part

    monkeypatch.setattr(storage.TempFiles, "_create", create)
    stub = make_stub()
    small, big = make_dataset(source="MR_small.dcm"), make_dataset()
    big_bytes = _padded(big, 3 * WRITE_BEHIND)
    r = answer(stub, stub.post(multipart([encode(small), big_bytes]), content_type()))
    assert r.code == 202, r.body
    failed = parse_json(r.body).failed
    assert [(f.sop_instance_uid, f.failure_reason) for f in failed] == [
        (big.SOPInstanceUID, 0xA700)
    ]
    assert len(list(Path(stub.directory).rglob("*.dcm"))) == 1
    assert leftover_parts(stub.directory) == []
