"""C1: the S1 instances (1,000 x 100 KB) as 20 studies, exported through the queue by
1, 2 or 3 ``twistd -n stowpair`` nodes sharing PostgreSQL, beside one node on SQLite.

Every node holds the same exporter (concurrency 4, 10 instances per request) and queue
(2 tasks at a time per node), shares one storage folder and sends to one ``twistd -n
stowrsd``. A run queues one export per study (spread over the nodes' REST APIs) and ends
when all 20 tasks are COMPLETED. Blocking code; benchmark only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench.pairs import Pair, _StowrsdReceiver, peak_rss_mb, rate
from stowpair import peers

#: The machine's PostgreSQL; a scratch database per pair (created and dropped here).
POSTGRES_URL = os.environ.get(
    "STOWPAIR_BENCH_POSTGRES_URL",
    os.environ.get("STOWPAIR_TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test"),
)
STUDIES = 20

NODE_CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "{name}"
ae_titles = ["BENCH"]
task_polling_interval = "PT1S"
[rest]
port = {rest_port}
[emulator]
enabled = false
[archive]
storage = "{storage}"
database = "{sqlite}"
{database}
[logging]
json_file = "-"
[webapps.dest]
url = "{url}"
[webapps.dest.properties]
concurrency = 4
max-instances-per-request = 10
[exporters.Bench]
uri = "stow:dest"
queue = "Export1"
ae_title = "BENCH"
[queues.Export1]
max_tasks_parallel = 2
"""


class QueuedExport(Pair, _StowrsdReceiver):
    """``nodes`` stowpair nodes on ``database`` (``sqlite`` or ``postgresql``)."""

    def __init__(self, nodes: int, database: str) -> None:
        self.count, self.database = nodes, database
        self.name = f"{nodes} node{'s' if nodes > 1 else ''}, {database}"
        self.nodes: list[peers.Peer] = []
        self.scratch: str | None = None
        self.round = 0

    def setup(self, files: list[Path], work: Path) -> None:
        Pair.setup(self, files, work)
        self.start_receiver(work)
        section = ""
        if self.database == "postgresql":
            self.scratch = _create_database()
            url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{self.scratch}"
            section = f'[database]\nurl = "{url}"'
        configs = []
        for n in range(1, self.count + 1):
            folder = work / f"node-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            port = peers.free_port()
            conf = folder / "stowpair.toml"
            conf.write_text(NODE_CONFIG.format(
                name=f"node-{n}", rest_port=port, storage=work / "storage",
                sqlite=work / "index.sqlite", database=section, url=self.url,
            ))  # fmt: skip
            configs.append(conf)
            self.nodes.append(peers.start_twistd(folder, "stowpair", ["-c", str(conf)], port))
        stowpair = str(Path(sys.executable).with_name("stowpair"))
        subprocess.run(
            [stowpair, "import", "-c", str(configs[0]), *map(str, files)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
        )  # fmt: skip
        from pydicom import dcmread

        self.studies = sorted({dcmread(f, stop_before_pixels=True).StudyInstanceUID for f in files})
        self._run_round()  # warm-up: connections, transcoder workers, first polls
        self.clear()

    def _run_round(self) -> float:
        self.round += 1
        batch = f"bench-{self.round}"
        t0 = time.perf_counter()
        for n, study in enumerate(self.studies):
            node = self.nodes[n % len(self.nodes)]
            _post(node.port, f"/aets/BENCH/rs/studies/{study}/export/Bench?batchID={batch}")
        port = self.nodes[0].port
        query = f"/monitor/export/count?batchID={batch}&status=COMPLETED"
        while _get(port, query)["count"] < len(self.studies):
            if time.perf_counter() - t0 > 3600:
                raise RuntimeError("exports did not complete within an hour")
            time.sleep(0.05)
        return time.perf_counter() - t0

    def measure(self) -> dict[str, float]:
        seconds = self._run_round()
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        return {
            **rate(seconds, self.files),
            "sender_rss_mb": max(peak_rss_mb(n.process.pid) for n in self.nodes),
            "receiver_rss_mb": peak_rss_mb(self.receiver.process.pid),
        }

    def teardown(self) -> None:
        for node in self.nodes:
            node.stop()
        self.receiver.stop()
        if self.scratch is not None:
            _drop_database(self.scratch)


def _post(port: int, path: str) -> Any:
    url = f"http://127.0.0.1:{port}/dcm4chee-arc{path}"
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/dcm4chee-arc{path}", timeout=60) as r:
        return json.loads(r.read())


def _admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        raise RuntimeError(f"PostgreSQL at {POSTGRES_URL} is not reachable: {e}") from None


def _create_database() -> str:
    name = f"cluster_bench_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cluster_pairs() -> list[Pair]:
    return [
        QueuedExport(1, "sqlite"),
        QueuedExport(1, "postgresql"),
        QueuedExport(2, "postgresql"),
        QueuedExport(3, "postgresql"),
    ]
