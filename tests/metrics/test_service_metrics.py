"""``GET /metrics`` of the running stowpair service (real loopback sockets): an ingested
study exported by its rule shows in the counters and, after a refresh, the task gauges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.task import deferLater

from stowpair.archive.demo import generate_demo_study
from tests.service.test_end_to_end import (
    post_study,
    start_receiver,
    start_stowpair,
    tasks,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(service: Any) -> tuple[Any, str]:
    port = service.rest_port.getHost().port
    response = await treq.get(f"http://127.0.0.1:{port}/metrics", reactor=reactor)
    return response, (await response.content()).decode()


@pytest_twisted.ensureDeferred
async def test_export_shows_in_metrics(tmp_path: Path) -> None:
    """When a study of 4 instances is ingested and exported, /metrics counts 4 exported
    instances, one ingest request, and the task gauges one COMPLETED task."""
    receiver, dest_port = await start_receiver(tmp_path / "received")
    service = await start_stowpair(tmp_path, dest_port)
    try:
        await post_study(service, generate_demo_study(tmp_path / "src", 4, size_kb=8, seed=11))
        listing: list[dict[str, Any]] = []

        async def completed() -> bool:
            listing[:] = await tasks(service)
            return [t["status"] for t in listing] == ["COMPLETED"]

        for _ in range(300):
            if await completed():
                break
            await deferLater(reactor, 0.1, lambda: None)
        assert [t["status"] for t in listing] == ["COMPLETED"]
        await service.task_gauges.refresh()
        response, text = await scrape(service)
    finally:
        await service.stopService()
        await receiver.stopService()
    assert response.code == 200
    assert response.headers.getRawHeaders("Content-Type") == [
        "text/plain; version=0.0.4; charset=utf-8"
    ]
    got = samples(text)
    exported = ("stowpair_exported_instances_total",
                (("exporter", "ToDest"), ("outcome", "completed")))  # fmt: skip
    assert got[exported] == 4
    assert got[("stowpair_receiver_requests_total", (("endpoint", "ingest"), ("status", "200")))]
    assert got[("stowpair_tasks", (("queue", "Export1"), ("status", "COMPLETED")))] == 1
    assert got[("stowpair_tasks", (("queue", "Export1"), ("status", "SCHEDULED")))] == 0
    assert got[("stowpair_queue_oldest_due_task_age_seconds", (("queue", "Export1"),))] == 0
    assert got[("stowpair_exports_total", (("exporter", "ToDest"), ("status", "COMPLETED")))]
    assert ("process_resident_memory_bytes", ()) in got
    assert not [name for name, _ in got if name.endswith("_created")]
