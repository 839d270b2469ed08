"""The multipart/related body producer."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock, Cooperator
from twisted.web.iweb import UNKNOWN_LENGTH

from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from tests.exporter.support import split_parts

TS = "1.2.840.10008.1.2.1"


class Consumer:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)

    @property
    def body(self) -> bytes:
        return b"".join(self.data)


def parts_of(tmp_path: Path, sizes: list[int]) -> list[BodyPart]:
    parts = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"{i}.dcm"
        path.write_bytes(bytes([i % 251]) * size)
        parts.append(BodyPart(path, TS, size))
    return parts


def run(producer: MultipartRelatedProducer, clock: Clock, consumer: Consumer) -> list[object]:
    fired: list[object] = []
    producer.startProducing(consumer).addBoth(fired.append)
    for _ in range(10_000):
        if fired or not clock.getDelayedCalls():
            break
        clock.advance(1)
    return fired


def cooperator(clock: Clock) -> Cooperator:
    # One step per tick, so tests see the body in progress.
    return Cooperator(
        terminationPredicateFactory=lambda: lambda: True,
        scheduler=lambda f: clock.callLater(1, f),
    )


@pytest.mark.parametrize("sizes", [[0], [1], [1000], [10, 300_000, 7], [262_144, 262_145]], ids=str)
def test_exact_length_equals_bytes_written(tmp_path: Path, sizes: list[int]) -> None:
    """When chunked is false, length is exactly the number of bytes written."""
    clock = Clock()
    producer = MultipartRelatedProducer(parts_of(tmp_path, sizes), cooperator(clock))
    consumer = Consumer()
    assert run(producer, clock, consumer) == [None]
    assert producer.length == len(consumer.body) == producer.bytes_written


def test_chunked_has_unknown_length_and_same_body(tmp_path: Path) -> None:
    """When chunked is true, length is UNKNOWN_LENGTH and the body is unchanged."""
    clock = Clock()
    parts = parts_of(tmp_path, [5, 6])
    producer = MultipartRelatedProducer(parts, cooperator(clock), chunked=True, boundary="b")
    consumer = Consumer()
    run(producer, clock, consumer)
    assert producer.length is UNKNOWN_LENGTH
    assert len(consumer.body) == producer.exact_length


def test_parts_carry_transfer_syntax_and_files(tmp_path: Path) -> None:
    """When parsed back, every part has its transfer syntax and the file's exact bytes."""
    clock = Clock()
    parts = parts_of(tmp_path, [3, 70_000])
    producer = MultipartRelatedProducer(parts, cooperator(clock))
    consumer = Consumer()
    run(producer, clock, consumer)
    got = split_parts(producer.content_type.decode(), consumer.body)
    assert [h for h, _ in got] == [
        b"Content-Type: application/dicom; transfer-syntax=" + TS.encode()
    ] * 2
    assert [c for _, c in got] == [p.path.read_bytes() for p in parts]
    assert producer.content_type.startswith(b'multipart/related; type="application/dicom"; ')


def test_boundary_is_fresh_per_request(tmp_path: Path) -> None:
    """When two producers are made, their boundaries differ."""
    parts = parts_of(tmp_path, [1])
    coop = cooperator(Clock())
    assert (
        MultipartRelatedProducer(parts, coop).boundary
        != MultipartRelatedProducer(parts, coop).boundary
    )


def test_pause_stops_writes_until_resume(tmp_path: Path) -> None:
    """When paused, nothing is written until resumeProducing."""
    clock = Clock()
    producer = MultipartRelatedProducer(
        parts_of(tmp_path, [2_000_000]), cooperator(clock), chunk_size=1024 * 1024
    )
    consumer = Consumer()
    fired: list[object] = []
    producer.startProducing(consumer).addBoth(fired.append)
    clock.advance(1)
    producer.pauseProducing()
    written = producer.bytes_written
    for _ in range(20):
        clock.advance(1)
    assert producer.bytes_written == written and not fired
    producer.resumeProducing()
    for _ in range(3_000):
        if fired:
            break
        clock.advance(1)
    assert fired == [None] and producer.bytes_written == producer.length


def test_stop_producing_never_fires(tmp_path: Path) -> None:
    """When stopProducing is called mid-body, the Deferred never fires and writes stop."""
    clock = Clock()
    producer = MultipartRelatedProducer(
        parts_of(tmp_path, [2_000_000]), cooperator(clock), chunk_size=1024 * 1024
    )
    consumer = Consumer()
    fired: list[object] = []
    producer.startProducing(consumer).addBoth(fired.append)
    clock.advance(1)
    producer.stopProducing()
    written = producer.bytes_written
    for _ in range(20):
        clock.advance(1)
    assert fired == [] and producer.bytes_written == written
    producer.stopProducing()  # idempotent
    producer.pauseProducing()
    producer.resumeProducing()


def test_file_changed_size_fails_request(tmp_path: Path) -> None:
    """When a file is shorter than announced, the Deferred fails naming the file."""
    clock = Clock()
    parts = parts_of(tmp_path, [100])
    parts[0].path.write_bytes(b"x" * 50)
    producer = MultipartRelatedProducer(parts, cooperator(clock))
    fired = run(producer, clock, Consumer())
    assert "changed size" in str(fired[0].value)  # type: ignore[attr-defined]
