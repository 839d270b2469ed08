"""Real processes for the reliability suites: ``twistd -n stowpair`` and ``twistd -n stowrsd``.

Everything binds to 127.0.0.1 on free ports and lives in a temp folder. A :class:`Proc`
can be killed with SIGKILL and started again with the same arguments (same port, same
folders), which is what the crash suites do. Blocking helpers: test code only.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pydicom

from stowpair.archive.demo import generate_demo_study
from tests.support.peers import free_port

BIN = Path(sys.executable).parent
AET = "REL"
EXPORTER = "ToDest"
DONE = ("COMPLETED", "WARNING", "FAILED", "CANCELED")


#: Every Proc created; tests/reliability/conftest.py stops them after each test.
CREATED: list[Proc] = []


class Proc:
    """A twistd process that may be SIGKILLed and restarted with the same arguments."""

    def __init__(self, name: str, argv: list[str], workdir: Path, health_url: str) -> None:
        CREATED.append(self)
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.health_url = health_url
        self.log_path = workdir / f"{name}.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            # own session: kill9() can also reap helper children (multiprocessing)
            self.process = subprocess.Popen(
                self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        wait_until(lambda: self._healthy(), timeout, f"{self.name} /health")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}: {self.tail()}"
            )
        try:
            with urllib.request.urlopen(self.health_url, timeout=2):
                return True
        except (OSError, urllib.error.HTTPError):
            return False

    def kill9(self) -> None:
        """SIGKILL the twistd process (no shutdown code runs), then its leftovers."""
        p = self.process
        if p is None or p.poll() is not None:
            return
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
        try:
            os.killpg(p.pid, signal.SIGKILL)  # helper children in its session, if any
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        p = self.process
        if p is None or p.poll() is not None:
            self.kill9()
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            pass
        self.kill9()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)  # polling another process: there is no event to wait on
    raise AssertionError(f"{what}: not reached within {timeout:.0f}s")


# -- the destination: twistd -n stowrsd -------------------------------------------------


def stowrsd(workdir: Path, directory: Path, *options: str, port: int | None = None) -> Proc:
    port = port or free_port()
    argv = [str(BIN / "twistd"), "-n", "--pidfile=", "stowrsd", "-b", f"127.0.0.1:{port}"]
    argv += ["-d", str(directory), "--json-log", str(workdir / "stowrsd.json"), *options]
    proc = Proc("stowrsd", argv, workdir, f"http://127.0.0.1:{port}/health")
    proc.port = port  # type: ignore[attr-defined]
    return proc


def receipts(json_log: Path) -> Counter[str]:
    """How many times the destination durably stored each SOP Instance UID."""
    return Counter(e["sop_instance_uid"] for e in events(json_log, "receiver.instance.stored"))


def events(json_log: Path, name: str) -> Iterator[dict[str, Any]]:
    """Events named ``name``; a line cut by SIGKILL is skipped."""
    if not json_log.exists():
        return
    for line in json_log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            yield event


# -- the exporter: twistd -n stowpair -----------------------------------------------------

CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "rel"
ae_titles = ["{aet}"]
task_polling_interval = "PT1S"
[rest]
port = {rest_port}
[emulator]
enabled = false
[archive]
storage = "archive"
database = "stowpair.sqlite"
[logging]
json_file = "stowpair.json"
[webapps.dest]
url = "{url}"
[webapps.dest.properties]
{properties}
[exporters.{exporter}]
uri = "stow:dest"
queue = "Export1"
ae_title = "{aet}"
[queues.Export1]
{queue}
"""

QUEUE: dict[str, Any] = {
    "max_tasks_parallel": 2,
    "max_retries": 40,
    "retry_delay": "PT1S",
    "retry_delay_multiplier": 100,
    "max_retry_delay": "PT2S",
    "purge_completed_delay": "none",
    # dcm4chee ends an export whose instances all failed as WARNING (docs/dcm4chee.md);
    # without this, a destination that is down would never be retried.
    "retry_on_warning": True,
}


def _toml(values: Mapping[str, Any]) -> str:
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())


def stowpair(
    workdir: Path,
    dest_url: str,
    properties: Mapping[str, str] | None = None,
    queue: Mapping[str, Any] | None = None,
) -> Proc:
    """A stowpair process (emulator off) exporting to ``dest_url`` with exporter ToDest."""
    rest_port = free_port()
    conf = workdir / "stowpair.toml"
    conf.write_text(
        CONFIG.format(
            aet=AET,
            rest_port=rest_port,
            url=dest_url,
            exporter=EXPORTER,
            properties=_toml(properties or {}),
            queue=_toml({**QUEUE, **(queue or {})}),
        )
    )
    argv = [str(BIN / "twistd"), "-n", "--pidfile=", "stowpair", "-c", str(conf)]
    proc = Proc("stowpair", argv, workdir, f"http://127.0.0.1:{rest_port}/health")
    proc.port = rest_port  # type: ignore[attr-defined]
    return proc


def load_archive(workdir: Path, studies: int, instances: int, size_kb: int, seed: int) -> list[str]:
    """Generate studies and ``stowpair import`` them; returns the Study UIDs."""
    src = workdir / "src"
    uids = []
    for n in range(studies):
        files = generate_demo_study(src, instances, size_kb=size_kb, seed=seed, study_no=n)
        uids.append(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    subprocess.run(
        [str(BIN / "stowpair"), "import", "--no-fsync", "-c", str(workdir / "stowpair.toml"),
         str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return uids


def rest(port: int, method: str, path: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def export(port: int, study_uid: str) -> int:
    """Queue an export of a study (dcm4chee's REST trigger); returns the task ID."""
    task = rest(port, "POST", f"/dcm4chee-arc/aets/{AET}/rs/studies/{study_uid}/export/{EXPORTER}")
    return int(task["taskID"])


def tasks(port: int) -> list[dict[str, Any]]:
    return list(rest(port, "GET", "/dcm4chee-arc/monitor/export?limit=10000"))


def wait_done(port: int, count: int, timeout: float) -> list[dict[str, Any]]:
    """Wait until ``count`` tasks exist and all are finished; returns them."""
    listing: list[dict[str, Any]] = []

    def done() -> bool:
        listing[:] = tasks(port)
        return len(listing) >= count and all(t["status"] in DONE for t in listing)

    try:
        wait_until(done, timeout, "all tasks finished")
    except AssertionError:
        states = Counter(t["status"] for t in listing)
        raise AssertionError(f"tasks not finished within {timeout:.0f}s: {dict(states)}") from None
    return listing


def instance_results(workdir: Path) -> list[tuple[int, int, str, str]]:
    """Per-instance results the queue stored: (task, attempt, SOP Instance UID, status)."""
    db = sqlite3.connect(f"file:{workdir / 'stowpair-tasks.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT task_pk, attempt, sop_iuid, status FROM task_instance")
        return [(int(t), int(a), str(s), str(st)) for t, a, s, st in rows]
    finally:
        db.close()


# -- checking the destination ---------------------------------------------------------------


def layout_files(root: Path) -> dict[Path, bytes]:
    """``<Study>/<Series>/<SOP>.dcm`` files under ``root`` (hidden folders excluded)."""
    return {
        p.relative_to(root): p.read_bytes()
        for p in root.glob("*/*/*.dcm")
        if not p.relative_to(root).parts[0].startswith(".")
    }


def stray_files(root: Path) -> list[Path]:
    """Anything in the layout that is not ``<Study>/<Series>/<SOP>.dcm`` (e.g. a temp file)."""
    stray = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if rel.parts[0].startswith(".") or p.is_dir():
            continue
        if len(rel.parts) != 3 or p.suffix != ".dcm":
            stray.append(rel)
    return stray


def unparseable(root: Path) -> list[Path]:
    """Layout files that pydicom cannot read completely (a partial file would be one)."""
    bad = []
    for rel in layout_files(root):
        try:
            ds = pydicom.dcmread(root / rel)
            ds.PixelData  # noqa: B018  (forces the read to the end of the data set)
            if f"{ds.SOPInstanceUID}.dcm" != rel.name:
                bad.append(rel)
        except Exception:
            bad.append(rel)
    return bad


def compare(archive: Path, dest: Path) -> tuple[list[Path], list[Path]]:
    """(missing at the destination, different bytes) for every archive instance."""
    want, got = layout_files(archive), layout_files(dest)
    missing = sorted(rel for rel in want if rel not in got)
    differ = sorted(rel for rel in want if rel in got and got[rel] != want[rel])
    return missing, differ


def report(name: str, counts: Mapping[str, Any]) -> None:
    """Print the suite's counts (run pytest with -s to see them) and append them to
    ``$STOWPAIR_RELIABILITY_REPORT`` when set (docs/reliability.md quotes them)."""
    line = json.dumps({"suite": name, **counts})
    print(f"\nRELIABILITY {line}")
    target = os.environ.get("STOWPAIR_RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def result_codes(workdir: Path) -> list[int | None]:
    """The Failure Reason codes the exporter recorded per instance (None when none)."""
    db = sqlite3.connect(f"file:{workdir / 'stowpair-tasks.sqlite'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT reason_code FROM task_instance")]
    finally:
        db.close()
