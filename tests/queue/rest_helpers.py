"""An in-memory dcm4chee REST API over StubTreq, with a fake scheduler."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair.api.dcm4chee import Dcm4cheeApi, Dcm4cheeArcResource
from stowpair.config.model import Exporter
from stowpair.queue.manager import TaskManager
from stowpair.queue.store import SQLiteTaskStore
from tests.queue.helpers import clock_at, make_config, memory_store, result_of

BASE = "http://stowpair.test/dcm4chee-arc"


@dataclass
class FakeScheduling:
    kicks: int = 0
    cancelled: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def kick(self) -> None:
        self.kicks += 1

    def cancel(self, task_id: int, reason: str = "user") -> bool:
        self.cancelled.append(task_id)
        self.reasons.append(reason)
        return True


class FakeIngest(Resource):
    isLeaf = True

    def __init__(self, aet: str) -> None:
        super().__init__()
        self.aet = aet

    def render_POST(self, request: Request) -> bytes:
        path = b"/".join(request.postpath or []).decode()
        return json.dumps({"ingest": self.aet, "path": path}).encode()


@dataclass
class Response:
    code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """The resource with its store, a fake scheduler, and hooks the test can set."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or clock_at()
        self.store: SQLiteTaskStore = memory_store(self.clock)
        self.scheduler = FakeScheduling()
        self.manager = TaskManager(self.store, self.scheduler, self.clock)
        other = Exporter("Other", "stow:other", "Export1", ae_title="OTHER")
        self.sync_calls: list[tuple[str, ...]] = []
        self.reload_errors: list[str] | None = None
        self.api = Dcm4cheeApi(
            make_config(exporters={"Other": other}),
            self.manager,
            sync_export=self._sync,
            ingest_resource_for=lambda aet: FakeIngest(aet),
            reload=self._reload,
        )
        root = Resource()
        root.putChild(b"dcm4chee-arc", Dcm4cheeArcResource(self.api))
        self.stub = StubTreq(root)

    def _sync(self, *args: str) -> Deferred[tuple[int, dict[str, Any]]]:
        self.sync_calls.append(args)
        return succeed((206, {"completed": 1, "failed": 1}))

    def _reload(self) -> Deferred[list[str]]:
        return succeed(list(self.reload_errors or []))

    def call(self, method: str, path: str, **kw: Any) -> Response:
        d = self.stub.request(method, BASE + path, **kw)
        self.stub.flush()
        response = result_of(d)
        body = self.stub.content(response)
        self.stub.flush()
        headers = {
            k.decode().lower(): v[-1].decode() for k, v in response.headers.getAllRawHeaders()
        }
        return Response(response.code, headers, result_of(body))

    def export(self, entity: str = "studies/1.2.3", exporter: str = "StowExporter",
               query: str = "") -> Response:  # fmt: skip
        return self.call("POST", f"/aets/STOWPAIR/rs/{entity}/export/{exporter}{query}")
