"""Seeded hostile requests against stowrsd on a real loopback socket (port 0).

Each test is one batch; after it a valid request must still be stored, nothing may
have appeared outside the storage folder and no traceback may have been logged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from twisted.internet.defer import Deferred

from tests.badinput.conftest import LogWatcher
from tests.badinput.hostile import RawRequest, stow_requests
from tests.badinput.servers import Target, batch_guard, check_answer, fuzz, start_stowrsd

PREFIX = "/stowrs"


@pytest.fixture(scope="module")
def stowrsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    # with header workers, as ``twistd -n stowrsd`` runs on a machine of two cores or more:
    # a part that ends while others are in flight is read by a worker, the others in a thread
    yield from start_stowrsd(tmp_path_factory.mktemp("stowrsd"), header_workers=2)


@pytest.fixture(autouse=True)
def batch(stowrsd: Target, log_watcher: LogWatcher) -> Iterator[None]:
    yield from batch_guard(stowrsd, log_watcher)


async def exchange(target: Target, request: RawRequest, watcher: LogWatcher) -> None:
    r = await target.send(request.pieces, half_close=request.half_close)
    check_answer(r, request.label, incomplete=request.half_close)
    failures = watcher.take()
    assert not failures, (request.label, failures)


@fuzz(900)
@given(request=stow_requests(PREFIX, "multipart"))
def test_malformed_multipart(
    stowrsd: Target, log_watcher: LogWatcher, request: RawRequest
) -> Deferred[None]:
    """When multipart bodies are malformed, each answer is documented and never 5xx."""
    return Deferred.fromCoroutine(exchange(stowrsd, request, log_watcher))


@fuzz(700)
@given(request=stow_requests(PREFIX, "dicom"))
def test_bad_dicom(stowrsd: Target, log_watcher: LogWatcher, request: RawRequest) -> Deferred[None]:
    """When parts are truncated, garbage or carry hostile UIDs, each answer is documented."""
    return Deferred.fromCoroutine(exchange(stowrsd, request, log_watcher))


@fuzz(800)
@given(request=stow_requests(PREFIX, "headers"))
def test_hostile_headers(
    stowrsd: Target, log_watcher: LogWatcher, request: RawRequest
) -> Deferred[None]:
    """When headers, framing, methods and versions are hostile, answers stay 4xx or STOW."""
    return Deferred.fromCoroutine(exchange(stowrsd, request, log_watcher))


@fuzz(400)
@given(request=stow_requests(PREFIX, "paths"))
def test_hostile_paths(
    stowrsd: Target, log_watcher: LogWatcher, request: RawRequest
) -> Deferred[None]:
    """When paths carry traversal, over-long or invalid study UIDs, answers stay 4xx."""
    return Deferred.fromCoroutine(exchange(stowrsd, request, log_watcher))
