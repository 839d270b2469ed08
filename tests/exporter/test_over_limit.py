"""The exporter against a stowrsd whose request size limit a batch passes (real socket):
the 413 lists what was stored, so those instances are done and only the rest is sent
again in smaller requests; nothing is stored twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import globalLogPublisher

from stowpair.exporter.outcome import TaskStatus
from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from tests.exporter.conftest import Run
from tests.exporter.support import make_study, webapp


@pytest.fixture
def receipts() -> Iterator[Counter[str]]:
    """SOP Instance UIDs stored by stowrsd, counted (one event per durable store)."""
    seen: Counter[str] = Counter()

    def observe(event: dict[str, Any]) -> None:
        if event.get("event") == "receiver.instance.stored":
            seen[event["sop_instance_uid"]] += 1

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


@pytest_twisted.ensureDeferred
async def test_413_listing_stored_instances_resends_only_the_rest(
    tmp_path: Path, run_export: Run, receipts: Counter[str]
) -> None:
    """When a chunked batch passes stowrsd's --max-request-size, the instances its 413
    lists as stored count as completed and only the others are sent again: every
    instance arrives exactly once."""
    records = make_study(tmp_path / "s", 8, padding=3000)
    limit = int(sum(r.size for r in records[:8]) * 0.6)
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    settings = ReceiverSettings(max_request_size=limit)
    service = ReceiverService(reactor, endpoint, settings, tmp_path / "dest", fsync=False)
    service.startService()
    port = (await service.listening).getHost().port
    try:
        wa = webapp(f"http://127.0.0.1:{port}/stowrs", chunked=True, max_instances_per_request=8)
        outcome = await run_export(records, [wa])
    finally:
        await service.stopService()
    assert outcome.status is TaskStatus.COMPLETED and outcome.completed == 8
    assert receipts == Counter({r.sop_instance_uid: 1 for r in records})
    first = [i for i in outcome.instances if i.http_status == 413]
    assert 0 < len(first) < 8  # some were acknowledged by the 413 itself
