"""Seeded hostile requests against the archive's STOW-RS ingest endpoint
(``/dcm4chee-arc/aets/{AET}/rs/studies``) of the whole stowpair service, on a real
loopback socket (port 0).

Each test is one batch; after it a valid request must still be stored, nothing may
have appeared outside the archive storage (the SQLite files excepted, which change
by design) and no traceback may have been logged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from twisted.internet.defer import Deferred

from tests.badinput.conftest import LogWatcher
from tests.badinput.hostile import RawRequest, stow_requests
from tests.badinput.servers import AET, Target, batch_guard, check_answer, fuzz, start_stowpair

PREFIX = f"/dcm4chee-arc/aets/{AET}/rs"


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from start_stowpair(tmp_path_factory.mktemp("ingest"))


@pytest.fixture(autouse=True)
def batch(ingest: Target, log_watcher: LogWatcher) -> Iterator[None]:
    yield from batch_guard(ingest, log_watcher)


async def exchange(target: Target, request: RawRequest, watcher: LogWatcher) -> None:
    r = await target.send(request.pieces, half_close=request.half_close)
    check_answer(r, request.label, incomplete=request.half_close)
    failures = watcher.take()
    assert not failures, (request.label, failures)


@fuzz(600)
@given(request=stow_requests(PREFIX, "multipart"))
def test_malformed_multipart(
    ingest: Target, log_watcher: LogWatcher, request: RawRequest
) -> Deferred[None]:
    """When multipart bodies are malformed, each answer is documented and never 5xx."""
    return Deferred.fromCoroutine(exchange(ingest, request, log_watcher))


@fuzz(500)
@given(request=stow_requests(PREFIX, "dicom"))
def test_bad_dicom(ingest: Target, log_watcher: LogWatcher, request: RawRequest) -> Deferred[None]:
    """When parts are truncated, garbage or carry hostile UIDs, each answer is documented."""
    return Deferred.fromCoroutine(exchange(ingest, request, log_watcher))


@fuzz(700)
@given(request=stow_requests(PREFIX, "headers"))
def test_hostile_headers(
    ingest: Target, log_watcher: LogWatcher, request: RawRequest
) -> Deferred[None]:
    """When headers, framing, methods and versions are hostile, answers stay 4xx or STOW."""
    return Deferred.fromCoroutine(exchange(ingest, request, log_watcher))


@fuzz(400)
@given(request=stow_requests(PREFIX, "paths"))
def test_hostile_paths(
    ingest: Target, log_watcher: LogWatcher, request: RawRequest
) -> Deferred[None]:
    """When paths carry traversal, unknown AE titles or bad study UIDs, answers stay 4xx."""
    return Deferred.fromCoroutine(exchange(ingest, request, log_watcher))
