"""A real Prometheus server (Debian ``prometheus``) scrapes a real ``twistd -n stowpair``
every second, with HTTP Basic credentials (``/metrics`` is protected by ``[rest.auth]``),
while it exports a study; Prometheus' HTTP API then holds an exported instances counter
equal to the instances the destination received. The example alert rules
(conf/prometheus/alerts.yml) pass ``promtool check rules`` and load."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from stowpair.archive.demo import generate_demo_study
from stowpair.auth.passwords import hash_password
from tests.interop.conftest import peers_installed
from tests.support import peers
from tests.support.peers import Peer

pytestmark = pytest.mark.interop

N = 20
ALERTS = Path(__file__).resolve().parents[2] / "conf" / "prometheus" / "alerts.yml"
QUERY = 'stowpair_exported_instances_total{exporter="StowExporter",outcome="completed"}'

CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "prom"
ae_titles = ["PROM"]
task_polling_interval = "PT1S"
[rest]
port = {rest}
[emulator]
port = {emulator}
directory = "received"
fsync = false
[archive]
storage = "archive"
database = "index.sqlite"
[logging]
json_file = "stowpair.json"
[webapps.stowrsd]
url = "http://127.0.0.1:{emulator}/stowrs"
[exporters.StowExporter]
uri = "stow:stowrsd"
queue = "Export1"
ae_title = "PROM"
[queues.Export1]
[rest.auth]
type = "basic"
[rest.auth.users]
ops = "{hash}"
"""
USER, PASSWORD = "ops", "pr0metheus"


def eventually(check: Callable[[], Any], seconds: float = 60.0) -> Any:
    """``check()``'s first truthy answer, asked every 0.2 s within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def rest(port: int, method: str, path: str) -> Any:
    pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/dcm4chee-arc{path}",
        method=method,
        headers={"Authorization": f"Basic {pair}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture
def stowpair(tmp_path: Path) -> Iterator[tuple[Peer, str]]:
    """``twistd -n stowpair`` with a study of N instances in its archive (imported before
    start), no export rule, the built-in emulator as destination; (peer, study UID)."""
    work = tmp_path / "stowpair"
    work.mkdir()
    rest_port, emulator_port = peers.free_port(), peers.free_port()
    config = CONFIG.format(
        rest=rest_port, emulator=emulator_port, hash=hash_password(PASSWORD, ln=10)
    )
    (work / "stowpair.toml").write_text(config)
    files = generate_demo_study(tmp_path / "study", N, size_kb=16, seed=14)
    stowpair_cli = str(Path(sys.executable).with_name("stowpair"))
    subprocess.run(
        [
            stowpair_cli,
            "import",
            "-c",
            str(work / "stowpair.toml"),
            "--no-fsync",
            str(tmp_path / "study"),
        ],
        check=True,
        capture_output=True,
    )
    peer = peers.start_twistd(work, "stowpair", ["-c", "stowpair.toml"], rest_port)
    yield peer, str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    peer.stop()


def test_prometheus_counts_the_delivered_instances(
    tmp_path: Path, stowpair: tuple[Peer, str]
) -> None:
    """When Prometheus scrapes stowpair every second during an export of 20 instances,
    its query of the exported-instances counter answers 20, the number the destination
    holds, and the two example alert rules are loaded and healthy."""
    service, study = stowpair
    with peers_installed():
        subprocess.run([peers.require("promtool", "prometheus"), "check", "rules", str(ALERTS)],
                       check=True, capture_output=True)  # fmt: skip
        prometheus = peers.start_prometheus(
            tmp_path / "prometheus",
            f"127.0.0.1:{service.port}",
            rule_files=[ALERTS],
            basic_auth=(USER, PASSWORD),
        )
    try:
        up = eventually(lambda: peers.prometheus_query(prometheus, 'up{job="stowpair"} == 1'))
        assert up, prometheus.log_tail()
        task = rest(service.port, "POST", f"/aets/PROM/rs/studies/{study}/export/StowExporter")

        def finished() -> str | None:
            status = rest(service.port, "GET", f"/monitor/export/{task['taskID']}")["status"]
            return status if status in ("COMPLETED", "WARNING", "FAILED") else None

        assert eventually(finished) == "COMPLETED"
        delivered = len(list((service.workdir / "received").rglob("*.dcm")))

        def counted() -> list[dict[str, Any]]:
            result = peers.prometheus_query(prometheus, QUERY)
            return result if result and float(result[0]["value"][1]) == delivered else []

        result = eventually(counted, 30)
        print(f"\nPrometheus query: {QUERY}\nanswer: {json.dumps(result)}")
        assert delivered == N
        assert [float(r["value"][1]) for r in result] == [N]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{prometheus.port}/api/v1/rules", timeout=10
        ) as response:
            groups = json.loads(response.read())["data"]["groups"]
        rules = {r["name"]: r["health"] for g in groups for r in g["rules"]}
        assert rules == {"StowpairQueueBacklog": "ok", "StowpairDestinationFailing": "ok"}
    finally:
        prometheus.stop()
