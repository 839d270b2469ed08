"""Fixtures: a STOW-RS sink on a loopback port 0, and an exporter factory."""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.web.server import Site

from stowpair.exporter.outcome import Cancellation, ExportRequest, Outcome
from stowpair.exporter.stow import StowExporter
from tests.exporter.support import FakeIndex, StowSink, exporter_for

reactor: Any = _reactor


class Sink:
    def __init__(self) -> None:
        self.resource = StowSink(reactor)
        self.site = Site(self.resource)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}/stowrs"

    def behave(self, **behaviour: Any) -> None:
        self.resource.behaviour = behaviour


@pytest.fixture
def sink() -> Generator[Sink, None, None]:
    s = Sink()
    yield s
    stopped = s.port.stopListening()
    if stopped is not None:
        pytest_twisted.blockon(stopped)


Run = Callable[..., Any]


@pytest.fixture
def run_export(tmp_path: Path) -> Generator[Run, None, None]:
    exporters: list[StowExporter] = []

    async def run(
        records: list[Any],
        webapps: list[Any],
        study: str | None = None,
        name: str = "sink",
        cancellation: Cancellation | None = None,
        **request: Any,
    ) -> Outcome:
        exp = StowExporter(
            reactor, FakeIndex(records), {w.name: w for w in webapps}, work_dir=tmp_path
        )
        exporters.append(exp)
        req = ExportRequest(exporter_for(name), study or records[0].study_uid, **request)
        return await exp.export(req, cancellation or Cancellation())

    yield run
    for exp in exporters:
        pytest_twisted.blockon(exp.close())
