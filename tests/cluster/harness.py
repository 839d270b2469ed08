"""Several ``twistd -n stowpair`` nodes sharing one PostgreSQL database and one storage
folder, exporting to one ``twistd -n stowrsd``; what their JSON logs say.

Built on tests/reliability/harness.py (processes that can be SIGKILLed and restarted, the
destination's receipts). Blocking helpers: test code only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pydicom

from stowpair.archive.demo import generate_demo_study
from tests.reliability import harness as h
from tests.support.peers import free_port

AET = h.AET  # the reliability harness triggers exports on this AE title
EXPORTER = h.EXPORTER

CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "{name}"
ae_titles = ["{aet}"]
task_polling_interval = "{poll}"
[rest]
port = {rest_port}
[emulator]
enabled = false
[archive]
storage = "{storage}"
database = "local.sqlite"
[database]
url = "{url}"
lease = "{lease}"
heartbeat_interval = "{heartbeat}"
[logging]
json_file = "stowpair.json"
[webapps.dest]
url = "{dest}"
[webapps.dest.properties]
{properties}
[exporters.{exporter}]
uri = "stow:dest"
queue = "Export1"
ae_title = "{aet}"
[queues.Export1]
{queue}
{rules}
"""

QUEUE: dict[str, Any] = {
    "max_tasks_parallel": 2,
    "max_retries": 40,
    "retry_delay": "PT1S",
    "retry_delay_multiplier": 100,
    "max_retry_delay": "PT2S",
    "purge_completed_delay": "none",
}


def _toml(values: Mapping[str, Any]) -> str:
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())


@dataclass
class Node:
    name: str
    proc: h.Proc
    port: int
    workdir: Path
    config: Path

    @property
    def log(self) -> Path:
        return self.workdir / "stowpair.json"

    def pause(self) -> None:
        """SIGSTOP: the process and its threads stop where they are."""
        assert self.proc.process is not None
        os.kill(self.proc.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc.process is not None
        os.kill(self.proc.process.pid, signal.SIGCONT)

    def alive(self) -> bool:
        return self.proc.process is not None and self.proc.process.poll() is None


@dataclass
class Cluster:
    root: Path
    url: str
    dest_url: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def add_node(
        self,
        name: str,
        lease: str = "PT6S",
        heartbeat: str = "PT1S",
        poll: str = "PT1S",
        properties: Mapping[str, str] | None = None,
        queue: Mapping[str, Any] | None = None,
        rules: str = "",
    ) -> Node:
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = workdir / "stowpair.toml"
        config.write_text(
            CONFIG.format(
                name=name, aet=AET, poll=poll, rest_port=port, storage=self.storage,
                url=self.url, lease=lease, heartbeat=heartbeat, dest=self.dest_url,
                properties=_toml(properties or {}), exporter=EXPORTER,
                queue=_toml({**QUEUE, **(queue or {})}), rules=rules,
            )
        )  # fmt: skip
        argv = [str(h.BIN / "twistd"), "-n", "--pidfile=", "stowpair", "-c", str(config)]
        proc = h.Proc(name, argv, workdir, f"http://127.0.0.1:{port}/health")
        node = Node(name, proc, port, workdir, config)
        self.nodes.append(node)
        return node

    def start(self) -> None:
        for node in self.nodes:
            node.proc.start()

    def load(self, studies: int, instances: int, size_kb: int, seed: int) -> list[str]:
        """Generate studies and ``stowpair import`` them through the first node's
        configuration (shared storage, shared index); returns the Study UIDs."""
        src = self.root / "src"
        uids = []
        for n in range(studies):
            files = generate_demo_study(src, instances, size_kb=size_kb, seed=seed, study_no=n)
            uids.append(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        subprocess.run(
            [str(h.BIN / "stowpair"), "import", "--no-fsync", "-c", str(self.nodes[0].config),
             str(src)],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        return uids

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.alive()]

    def export(self, node: Node, study_uid: str) -> int:
        return h.export(node.port, study_uid)

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, as the REST API of a live node lists it."""
        return h.tasks(self.live()[0].port)

    def wait_done(self, count: int, timeout: float) -> list[dict[str, Any]]:
        return h.wait_done(self.live()[0].port, count, timeout)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()


def stow(port: int, files: list[Path]) -> int:
    """POST files to a node's ingest endpoint (STOW-RS); the HTTP status."""
    return stow_answer(port, files)[0]


def stow_answer(port: int, files: list[Path]) -> tuple[int, str | None]:
    """POST files to a node's ingest endpoint (STOW-RS); (HTTP status, Retry-After)."""
    boundary = "stowpair-cluster-boundary"
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + f.read_bytes()
            + b"\r\n"
            for f in files
        )
        + f"--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/dcm4chee-arc/aets/{AET}/rs/studies",
        data=body,
        method="POST",
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.headers.get("Retry-After")
    except urllib.error.HTTPError as e:
        return int(e.code), e.headers.get("Retry-After")


def rest_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return json.loads(response.read())


# -- the logs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    """One node's hold on a task, from its IN PROCESS log line to its next state line
    (or to when it was killed or lost the task)."""

    task_id: int
    device: str
    epoch: int
    start: float
    end: float


def state_events(logs: list[Path]) -> list[dict[str, Any]]:
    """Every node's ``queue.task.state`` and ``queue.task.taken_over`` events, by time."""
    found = [
        e
        for log in logs
        for name in ("queue.task.state", "queue.task.taken_over")
        for e in h.events(log, name)
    ]
    return sorted(found, key=lambda e: e["log_time"])


def holds(logs: list[Path], ended: Mapping[str, float] | None = None) -> list[Hold]:
    """Holds from every node's log: a node's IN PROCESS line opens one; its next state
    line for the task, or another node taking the task over from it, closes it. A hold
    still open (the node was killed holding it) ends at ``ended[device]``, else never."""
    open_holds: dict[tuple[int, str], tuple[int, float]] = {}
    result: list[Hold] = []
    for e in state_events(logs):
        if e["event"] == "queue.task.taken_over":
            key = (int(e["task_id"]), str(e["previous_device"]))
        else:
            key = (int(e["task_id"]), str(e["device"]))
        if e["event"] == "queue.task.state" and e["status"] == "IN PROCESS":
            open_holds[key] = (int(e["epoch"]), float(e["log_time"]))
        elif key in open_holds and (
            e["event"] != "queue.task.state" or e["previous"] == "IN PROCESS"
        ):
            epoch, start = open_holds.pop(key)
            result.append(Hold(key[0], key[1], epoch, start, float(e["log_time"])))
    for (task_id, device), (epoch, start) in open_holds.items():
        end = (ended or {}).get(device, float("inf"))
        result.append(Hold(task_id, device, epoch, start, end))
    return result


def overlaps(found: list[Hold]) -> list[tuple[Hold, Hold]]:
    """Pairs of holds of one task by two nodes at the same time."""
    by_task: dict[int, list[Hold]] = defaultdict(list)
    for hold in found:
        by_task[hold.task_id].append(hold)
    clashes = []
    for task_holds in by_task.values():
        ordered = sorted(task_holds, key=lambda x: x.start)
        for i, a in enumerate(ordered):
            clashes += [(a, b) for b in ordered[i + 1 :] if b.start < a.end]
    return clashes


def events_of(logs: list[Path], name: str) -> Iterator[dict[str, Any]]:
    for log in logs:
        yield from h.events(log, name)
