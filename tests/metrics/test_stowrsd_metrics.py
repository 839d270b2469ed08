"""``GET /metrics`` on the stowrsd listener: the receiver's metrics only."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Cooperator

from stowpair.archive.demo import generate_demo_study
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.metrics.registry import Metrics, MetricsService
from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from tests.metrics.test_service_metrics import samples


@pytest_twisted.ensureDeferred
async def test_stowrsd_counts_requests_and_instances(tmp_path: Path) -> None:
    """When stowrsd stores a request of 3 instances, its /metrics counts one 200 request
    and 3 stored instances, and has no exporter metrics."""
    metrics = Metrics(receiver_only=True)
    feed = MetricsService(metrics)
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    receiver = ReceiverService(
        reactor, endpoint, ReceiverSettings(), tmp_path / "d", fsync=False, metrics=metrics
    )
    feed.startService()
    receiver.startService()
    try:
        port = (await receiver.listening).getHost().port
        files = generate_demo_study(tmp_path / "src", 3, size_kb=8, seed=3)
        parts = [BodyPart(p, "1.2.840.10008.1.2.1", p.stat().st_size) for p in files]
        producer = MultipartRelatedProducer(parts, Cooperator())
        stored = await treq.post(
            f"http://127.0.0.1:{port}/stowrs/studies",
            data=producer,
            headers={"Content-Type": producer.content_type},
            reactor=reactor,
        )
        await stored.content()
        response = await treq.get(f"http://127.0.0.1:{port}/metrics", reactor=reactor)
        text = (await response.content()).decode()
    finally:
        await receiver.stopService()
        feed.stopService()
    assert (stored.code, response.code) == (200, 200)
    got = samples(text)
    requests = ("stowpair_receiver_requests_total", (("endpoint", "stowrsd"), ("status", "200")))
    assert got[requests] == 1
    assert got[("stowpair_receiver_instances_stored_total", (("endpoint", "stowrsd"),))] == 3
    assert not [name for name, _ in got if name.startswith("stowpair_export")]


def test_tap_serves_metrics(tmp_path: Path) -> None:
    """When `twistd -n stowrsd` builds its service, the listener's root has /metrics
    (the receiver's) beside /health, and the metrics are fed while it runs."""
    from stowpair import tap

    options = tap.StowrsdOptions()
    options.parseOptions(["-b", "0", "-d", str(tmp_path), "--json-log", "-"])
    top = tap.make_stowrsd_service(options)
    [receiver] = [s for s in top if isinstance(s, ReceiverService)]
    [feed] = [s for s in top if isinstance(s, MetricsService)]
    assert set(receiver.site.resource.children) == {b"health", b"metrics"}
    assert feed.metrics is receiver.site.resource.children[b"metrics"].metrics
