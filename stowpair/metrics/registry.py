"""The metrics of one process: registry, event observer, ``/metrics`` resource, service."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.application.service import Service
from twisted.logger import ILogObserver, LogPublisher, globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.server import Request
from zope.interface import provider

from stowpair import __version__
from stowpair.metrics.events import EventMetrics
from stowpair.metrics.tasks import TaskGauges


class Metrics:
    """A registry with process, platform and GC metrics, ``stowpair_build_info`` and the
    event metrics (:class:`EventMetrics`); ``receiver_only`` for ``twistd -n stowrsd``."""

    def __init__(self, receiver_only: bool = False) -> None:
        # No ``*_created`` series beside every counter and histogram: Prometheus has the
        # process start time (process_start_time_seconds), and they double the series.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        build = Gauge(
            "stowpair_build_info",
            "Always 1; the label says which stowpair version runs.",
            ["version"],
            registry=self.registry,
        )
        build.labels(__version__).set(1)
        self.events = EventMetrics(self.registry, receiver_only=receiver_only)

    def add_task_gauges(self, gauges: TaskGauges) -> None:
        self.registry.register(gauges)

    def text(self) -> bytes:
        """The Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)


class MetricsResource(Resource):
    """``GET /metrics``: Prometheus text format, generated from in-memory values only
    (task gauges are cached, see :class:`TaskGauges`), so a scrape never waits."""

    isLeaf = True
    #: The listener's authentication guard reads this: ``[rest.auth] metrics``.
    access = "metrics"

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_PLAIN_0_0_4.encode())
        request.setHeader(b"Cache-Control", b"no-store")
        return self.metrics.text()


class MetricsService(Service):
    """Feeds the log events to the metrics while the service runs, and refreshes the task
    gauges if there are any."""

    def __init__(
        self,
        metrics: Metrics,
        gauges: TaskGauges | None = None,
        publisher: LogPublisher = globalLogPublisher,
    ) -> None:
        self.metrics = metrics
        self.gauges = gauges
        self._publisher = publisher
        self._observer: Any = None
        if gauges is not None:
            metrics.add_task_gauges(gauges)

    def startService(self) -> None:
        super().startService()
        events = self.metrics.events

        @provider(ILogObserver)
        def observer(event: dict[str, Any]) -> None:
            events(event)

        self._observer = observer
        self._publisher.addObserver(observer)
        if self.gauges is not None:
            self.gauges.start()

    def stopService(self) -> None:
        super().stopService()
        if self.gauges is not None:
            self.gauges.stop()
        if self._observer is not None:
            self._publisher.removeObserver(self._observer)
            self._observer = None
