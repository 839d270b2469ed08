"""The receiver's ring of recent requests (stowpair.receiver.recent), behind the
console's emulator page."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stowpair.receiver.recent import ReceivedRequest, RecentRequests
from stowpair.receiver.settings import FaultSettings
from tests.receiver.conftest import Stub, answer
from tests.support.receiver import content_type, encode, make_dataset, multipart


def entry(n: int) -> ReceivedRequest:
    return ReceivedRequest(float(n), "POST", "/stowrs/studies", "p", 200)


def test_ring_keeps_the_newest_first_up_to_its_capacity() -> None:
    """When more requests come than the ring holds, the oldest are dropped, the newest
    is listed first and the total still counts every one."""
    ring = RecentRequests(capacity=3)
    for n in range(5):
        ring.add(entry(n))
    assert [e.time for e in ring.newest_first()] == [4.0, 3.0, 2.0]
    assert [e.time for e in ring.newest_first(2)] == [4.0, 3.0]
    assert ring.total == 5


def test_ring_needs_room_for_one() -> None:
    """When a ring of no capacity is asked for, it is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        RecentRequests(capacity=0)


def test_answered_request_is_recorded_with_its_counts(make_stub: Callable[..., Stub]) -> None:
    """When a request is answered, the ring holds its status, parts, stored, failed,
    bytes and the failure reasons per code."""
    stub = make_stub(faults=FaultSettings(fail_rate=1.0, fail_reason=0xA700))
    body = multipart([encode(make_dataset()), encode(make_dataset())])
    r = answer(stub, stub.post(body, content_type()))
    assert r.code == 409
    assert stub.resource is not None
    [seen] = stub.resource.recent.newest_first()
    assert (seen.method, seen.path, seen.status) == ("POST", "/stowrs/studies", 409)
    assert (seen.parts, seen.stored, seen.failed) == (2, 0, 2)
    assert seen.bytes == len(body)
    assert seen.failure_reasons == {0xA700: 2}


def test_refused_request_is_recorded_with_its_reason(make_stub: Callable[..., Stub]) -> None:
    """When a request is refused before its body is read (415), the ring holds the
    status and the reason."""
    stub = make_stub()
    r = answer(stub, stub.post(b"x", "text/plain"))
    assert r.code == 415
    assert stub.resource is not None
    [seen] = stub.resource.recent.newest_first()
    assert seen.status == 415 and seen.parts == 0
    assert seen.error is not None and "not supported" in seen.error
