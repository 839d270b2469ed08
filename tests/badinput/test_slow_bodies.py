"""Slow and idle clients on real sockets: idle ones are dropped after the idle timeout
(0.5 s here, twisted.web's Site.timeOut; 60 s in production) leaving no temp or partial
file; slow but steady ones are served."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import pytest_twisted

from tests.badinput.servers import (
    SHORT_IDLE_TIMEOUT,
    Target,
    check_answer,
    check_storage,
    start_stowpair,
    start_stowrsd,
    valid_request,
)


@pytest.fixture(scope="module", params=["stowrsd", "ingest"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "stowrsd":
        yield from start_stowrsd(root, idle=SHORT_IDLE_TIMEOUT)
    else:
        yield from start_stowpair(root, idle=SHORT_IDLE_TIMEOUT)


def _head_and_body(target: Target, sop: str) -> tuple[bytes, bytes]:
    data = valid_request(target, sop)
    head, _, body = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", body


IDLE_CASES = {
    "half-body": lambda head, body: [head, body[: len(body) // 2]],
    "headers-unfinished": lambda head, body: [head[:-2]],
    "request-line-only": lambda head, body: [head.split(b"\r\n")[0] + b"\r\n"],
    "expect-then-silence": lambda head, body: [head[:-2] + b"Expect: 100-continue\r\n\r\n"],
    "chunk-cut": lambda head, body: [
        head.replace(b"Content-Length", b"X-Was-Length")[:-2]
        + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body)
        + body[:100]
    ],
}


@pytest.mark.parametrize("case", list(IDLE_CASES), ids=list(IDLE_CASES))
@pytest_twisted.ensureDeferred
async def test_idle_client_is_dropped(target: Target, case: str) -> None:
    """When a client goes silent mid-request, the server closes the connection after
    its idle timeout and no temp or partial file stays."""
    head, body = _head_and_body(target, "1.2.826.0.1.3680043.8.498.6.1")
    started = time.monotonic()
    r = await target.send(IDLE_CASES[case](head, body), timeout=SHORT_IDLE_TIMEOUT + 10)
    elapsed = time.monotonic() - started
    assert not r.timed_out and r.status in (0, 100), (r.status, r.body)
    assert SHORT_IDLE_TIMEOUT * 0.9 <= elapsed < SHORT_IDLE_TIMEOUT + 5, elapsed
    await target.settle(0.2)
    check_storage(target)
    assert not list(target.storage.rglob("*6.1.dcm"))


@pytest_twisted.ensureDeferred
async def test_slow_steady_client_is_served(target: Target) -> None:
    """When a body trickles in with pauses shorter than the idle timeout, it is stored."""
    head, body = _head_and_body(target, "1.2.826.0.1.3680043.8.498.6.2")
    step = len(body) // 4 + 1
    pieces: list[bytes | float] = [head]
    for i in range(0, len(body), step):
        pieces += [SHORT_IDLE_TIMEOUT * 0.4, body[i : i + step]]
    r = await target.send(pieces, timeout=SHORT_IDLE_TIMEOUT * 10)
    check_answer(r, "slow steady body")
    assert r.status == 200, r.body
    await target.settle()
    check_storage(target)
    assert list(target.storage.rglob("*6.2.dcm"))
