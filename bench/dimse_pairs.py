"""DICOM (DIMSE) pairs: C-STORE into stowpair, Orthanc and storescp; C-STORE out of them.

D1: dcmtk ``storescu`` → stowpair's C-STORE SCP (archive: fsync, index, rules) /
Orthanc's DICOM port / dcmtk ``storescp``. D2: the same study sent to ``storescp`` by
stowpair's ``dicom:`` exporter (a queued export) and by Orthanc's C-STORE SCU
(``POST /modalities/{id}/store``). dcmtk programs (and Orthanc, built on dcmtk) run with
``TCP_NODELAY=1``: without it a C-STORE of 100 KB waits ~40 ms on Nagle's algorithm and
delayed ACKs (measured: storescu → storescp took 9.7 s for 200 instances instead of 1.6 s).
Blocking code; benchmark only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pydicom import dcmread

from bench.pairs import Pair, peak_rss_mb, rate
from tests.support import peers

NODELAY = {"TCP_NODELAY": "1"}

STOWPAIR_DIMSE = """
base_dir = "."
demo_on_empty = false
[device]
name = "bench"
ae_titles = ["BENCH"]
[rest]
port = {rest_port}
[emulator]
enabled = false
[logging]
json_file = "-"
[archive]
storage = "{storage}"
database = "{database}"
[dimse]
listen = "127.0.0.1:{dimse_port}"
ae_title = "BENCH"
[remote_aes.SINK]
host = "127.0.0.1"
port = {sink_port}
[exporters.ToSink]
uri = "dicom:SINK"
queue = "Export1"
ae_title = "BENCH"
[queues.Export1]
max_retries = 0
"""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian package dcmtk)")
    return path


def storescu(files: list[Path], aec: str, port: int) -> float:
    """Send ``files`` in one association; seconds taken (exits non-zero on any failure)."""
    argv = [_binary("storescu"), "-aet", "BENCHSCU", "-aec", aec, "127.0.0.1", str(port)]
    t0 = time.perf_counter()
    subprocess.run(
        [*argv, *map(str, files)],
        check=True,
        env={**os.environ, **NODELAY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


class Storescp:
    """dcmtk storescp writing what it receives under a folder (emptied between runs)."""

    def __init__(self, work: Path, ae_title: str = "SINK") -> None:
        self.folder = work / "storescp"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = peers.free_port()
        log = (work / "storescp.log").open("wb")
        self.process = subprocess.Popen(
            [_binary("storescp"), "-aet", ae_title, "-od", str(self.folder), str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **NODELAY},
        )
        log.close()
        peers.wait_port(self.port)

    def count(self) -> int:
        return sum(1 for _ in self.folder.iterdir())

    def clear(self) -> None:
        for child in self.folder.iterdir():
            child.unlink()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _orthanc(work: Path, modalities: dict[str, list[object]] | None = None) -> peers.Peer:
    dicom_port = peers.free_port()
    extra: dict[str, object] = {
        "DicomServerEnabled": True,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "DicomModalities": modalities or {},
    }
    os.environ.update(NODELAY)  # Orthanc's DICOM layer is dcmtk's
    peer = peers.start_orthanc(work, peers.OrthancServer(extra=extra))
    peer.dicom_port = dicom_port  # type: ignore[attr-defined]
    return peer


def _clear_orthanc(peer: peers.Peer) -> int:
    stats = peers.orthanc_call(peer, "GET", "/statistics")
    for study in peers.orthanc_call(peer, "GET", "/studies"):
        peers.orthanc_call(peer, "DELETE", f"/studies/{study}")
    return int(stats["CountInstances"])


class _Stowpair:
    """A fresh ``twistd -n stowpair`` per run (an empty archive: no duplicate fast path)."""

    def start_stowpair(self, work: Path, sink_port: int = 9) -> None:
        self.rest_port, self.dimse_port = peers.free_port(), peers.free_port()
        storage = work / "archive"
        shutil.rmtree(storage, ignore_errors=True)
        for db in work.glob("stowpair*.sqlite*"):
            db.unlink()
        conf = work / "stowpair.toml"
        conf.write_text(
            STOWPAIR_DIMSE.format(
                rest_port=self.rest_port,
                dimse_port=self.dimse_port,
                sink_port=sink_port,
                storage=storage,
                database=work / "stowpair.sqlite",
            )
        )
        self.sender = peers.start_twistd(work, "stowpair", ["-c", str(conf)], self.rest_port)
        self.storage = storage

    def stored(self) -> int:
        return sum(1 for _ in self.storage.glob("*/*/*.dcm"))


class StorescuToStowpair(Pair, _Stowpair):
    name = "storescu→stowpair SCP"

    def measure(self) -> dict[str, float]:
        self.start_stowpair(self.work)
        try:
            seconds = storescu(self.files, "BENCH", self.dimse_port)
            if self.stored() != len(self.files):
                raise RuntimeError(f"archive holds {self.stored()} of {len(self.files)}")
            rss = peak_rss_mb(self.sender.process.pid)
        finally:
            self.sender.stop()
        return {**rate(seconds, self.files), "receiver_rss_mb": rss}


class StorescuToOrthanc(Pair):
    name = "storescu→orthanc"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = _orthanc(work / "orthanc")

    def measure(self) -> dict[str, float]:
        seconds = storescu(self.files, "ORTHANC", self.sink.dicom_port)  # type: ignore[attr-defined]
        count = _clear_orthanc(self.sink)
        if count != len(self.files):
            raise RuntimeError(f"Orthanc holds {count} of {len(self.files)}")
        return {**rate(seconds, self.files), "receiver_rss_mb": peak_rss_mb(self.sink.process.pid)}

    def teardown(self) -> None:
        self.sink.stop()


class StorescuToStorescp(Pair):
    name = "storescu→storescp"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = Storescp(work)

    def measure(self) -> dict[str, float]:
        seconds = storescu(self.files, "SINK", self.sink.port)
        count = self.sink.count()
        self.sink.clear()
        if count != len(self.files):
            raise RuntimeError(f"storescp wrote {count} of {len(self.files)}")
        return {
            **rate(seconds, self.files),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.sink.stop()


class DicomExporterToStorescp(Pair, _Stowpair):
    """A queued ``dicom:`` export of the study (stored by storescu first, untimed), timed
    from the REST trigger until the task is COMPLETED."""

    name = "stowpair dicom: exporter→storescp"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = Storescp(work)
        self.start_stowpair(work, self.sink.port)
        storescu(files, "BENCH", self.dimse_port)
        self.study = dcmread(files[0], stop_before_pixels=True).StudyInstanceUID

    def measure(self) -> dict[str, float]:
        base = f"http://127.0.0.1:{self.rest_port}/dcm4chee-arc"
        url = f"{base}/aets/BENCH/rs/studies/{self.study}/export/ToSink"
        t0 = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, method="POST")) as r:
            task_id = json.loads(r.read())["taskID"]
        while True:
            with urllib.request.urlopen(f"{base}/monitor/export?taskID={task_id}") as r:
                (task,) = json.loads(r.read())
            if task["status"] not in ("SCHEDULED", "IN PROCESS"):
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - t0
        count = self.sink.count()
        self.sink.clear()
        if task["status"] != "COMPLETED" or count != len(self.files):
            raise RuntimeError(f"task {task['status']}, storescp wrote {count}: {task}")
        return {
            **rate(seconds, self.files),
            "sender_rss_mb": peak_rss_mb(self.sender.process.pid),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.sender.stop()
        self.sink.stop()


class OrthancScuToStorescp(Pair):
    name = "orthanc C-STORE SCU→storescp"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = Storescp(work)
        self.source = _orthanc(work / "orthanc", {"sink": ["SINK", "127.0.0.1", self.sink.port]})
        for f in files:
            peers.orthanc_call(
                self.source, "POST", "/instances", f.read_bytes(), "application/dicom"
            )
        self.study = peers.orthanc_call(self.source, "GET", "/studies")[0]

    def measure(self) -> dict[str, float]:
        body = json.dumps({"Resources": [self.study], "Synchronous": True}).encode()
        t0 = time.perf_counter()
        peers.orthanc_call(self.source, "POST", "/modalities/sink/store", body)
        seconds = time.perf_counter() - t0
        count = self.sink.count()
        self.sink.clear()
        if count != len(self.files):
            raise RuntimeError(f"storescp wrote {count} of {len(self.files)}")
        return {
            **rate(seconds, self.files),
            "sender_rss_mb": peak_rss_mb(self.source.process.pid),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.source.stop()
        self.sink.stop()


def dimse_pairs_for(scenario: str) -> list[Pair]:
    if scenario == "D1":
        return [StorescuToStowpair(), StorescuToOrthanc(), StorescuToStorescp()]
    if scenario == "D2":
        return [DicomExporterToStorescp(), OrthancScuToStorescp()]
    return []


if __name__ == "__main__":  # pragma: no cover - run through bench/run.py
    sys.exit("run: python bench/run.py --only D1 D2")
