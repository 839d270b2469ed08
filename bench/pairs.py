"""The sender → receiver pairs the benchmark compares. Blocking code; benchmark only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support import peers

HERE = Path(__file__).resolve().parent


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a running process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rate(seconds: float, files: list[Path]) -> dict[str, float]:
    size = sum(f.stat().st_size for f in files)
    return {
        "seconds": seconds,
        "instances_per_s": len(files) / seconds,
        "mb_per_s": size / 1e6 / seconds,
    }


class Pair:
    name = ""

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.name)

    def setup(self, files: list[Path], work: Path) -> None:
        self.files, self.work = files, work
        work.mkdir(parents=True, exist_ok=True)

    def measure(self) -> dict[str, float]:
        raise NotImplementedError

    def teardown(self) -> None:
        pass


class _StowrsdReceiver:
    """A ``twistd -n stowrsd`` receiver storing by UID (fsync on), emptied between runs."""

    ignore = False

    def start_receiver(self, work: Path) -> peers.Peer:
        self.store = work / "received"
        self.store.mkdir(parents=True, exist_ok=True)
        port = peers.free_port()
        args = ["-b", f"127.0.0.1:{port}", "-d", str(self.store), "--json-log", "-"]
        self.receiver = peers.start_twistd(
            work, "stowrsd", [*args, "--ignore"] if self.ignore else args, port
        )
        self.url = f"http://127.0.0.1:{port}/stowrs"
        return self.receiver

    def received(self) -> int:
        if self.ignore:  # nothing is stored; the export's answer counted every instance
            return len(self.files)  # type: ignore[attr-defined]
        return sum(1 for _ in self.store.rglob("*.dcm"))

    def clear(self) -> None:
        for child in self.store.iterdir():
            if not child.name.startswith("."):  # keep stowrsd's .incoming folder
                shutil.rmtree(child)


class _OrthancSource(Pair):
    """An Orthanc holding the study, pushing it with POST /dicom-web/servers/{name}/stow."""

    def start_source(self, server: dict[str, Any]) -> None:
        settings = peers.OrthancServer(servers={"dest": server})
        self.source = peers.start_orthanc(self.work / "source", settings)
        for f in self.files:
            peers.orthanc_call(
                self.source, "POST", "/instances", f.read_bytes(), "application/dicom"
            )
        self.study = peers.orthanc_call(self.source, "GET", "/studies")[0]

    def push(self) -> float:
        body = json.dumps({"Resources": [self.study], "Synchronous": True}).encode()
        t0 = time.perf_counter()
        peers.orthanc_call(self.source, "POST", "/dicom-web/servers/dest/stow", body)
        return time.perf_counter() - t0

    def teardown(self) -> None:
        for attr in ("source", "sink", "receiver"):
            peer = getattr(self, attr, None)
            if peer is not None:
                peer.stop()


class OrthancToOrthanc(_OrthancSource):
    name = "orthanc→orthanc"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = peers.start_orthanc(work / "sink")
        self.start_source({"Url": f"http://127.0.0.1:{self.sink.port}/dicom-web/"})

    def measure(self) -> dict[str, float]:
        seconds = self.push()
        stats = peers.orthanc_call(self.sink, "GET", "/statistics")
        if int(stats["CountInstances"]) != len(self.files):
            raise RuntimeError(f"sink holds {stats['CountInstances']} of {len(self.files)}")
        for study in peers.orthanc_call(self.sink, "GET", "/studies"):
            peers.orthanc_call(self.sink, "DELETE", f"/studies/{study}")
        return {
            **rate(seconds, self.files),
            "sender_rss_mb": peak_rss_mb(self.source.process.pid),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }


class OrthancToStowrsd(_OrthancSource, _StowrsdReceiver):
    name = "orthanc→stowrsd"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.start_receiver(work)
        self.start_source({"Url": self.url + "/"})

    def measure(self) -> dict[str, float]:
        seconds = self.push()
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        return {
            **rate(seconds, self.files),
            "sender_rss_mb": peak_rss_mb(self.source.process.pid),
            "receiver_rss_mb": peak_rss_mb(self.receiver.process.pid),
        }


class DicomwebClientToStowrsd(Pair, _StowrsdReceiver):
    name = "dicomweb-client→stowrsd"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.start_receiver(work)

    def measure(self) -> dict[str, float]:
        argv = [sys.executable, str(HERE / "dwc_send.py"), self.url, *map(str, self.files)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"dwc_send exited {proc.returncode}")
        seconds = float(out.decode().split()[-1])
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        sender = usage.ru_maxrss / 1024
        return {
            **rate(seconds, self.files),
            "sender_rss_mb": sender,
            "receiver_rss_mb": peak_rss_mb(self.receiver.process.pid),
        }

    def teardown(self) -> None:
        self.receiver.stop()


class CurlToNginx(Pair):
    name = "curl→nginx sink"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = peers.start_nginx_sink(work / "nginx")
        self.body = work / "body.bin"
        from bench.data import multipart_body

        multipart_body(files, self.body, "BENCHBOUNDARY")

    def measure(self) -> dict[str, float]:
        t0 = time.perf_counter()
        subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                "-T",
                str(self.body),
                "-H",
                'Content-Type: multipart/related; type="application/dicom"; boundary=BENCHBOUNDARY',
                f"http://127.0.0.1:{self.sink.port}/",
            ],
            check=True,
        )
        return {
            **rate(time.perf_counter() - t0, self.files),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.sink.stop()


class CopyToDisk(Pair):
    name = "cp + sync (same disk)"

    def measure(self) -> dict[str, float]:
        dest = self.work / "copy"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        t0 = time.perf_counter()
        subprocess.run(["cp", *map(str, self.files), str(dest)], check=True)
        subprocess.run(["sync", "-f", str(dest)], check=True)
        return rate(time.perf_counter() - t0, self.files)


class Dcmdjpeg(Pair):
    name = "dcmdjpeg"

    def measure(self) -> dict[str, float]:
        binary = shutil.which("dcmdjpeg")
        if binary is None:
            raise RuntimeError("dcmdjpeg is not installed (Debian package dcmtk)")
        dest = self.work / "out"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        t0 = time.perf_counter()
        for f in self.files:
            subprocess.run([binary, str(f), str(dest / f.name)], check=True)
        return rate(time.perf_counter() - t0, self.files)


STOWPAIR_CONFIG = """
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
[webapps.dest]
url = "{url}"
[webapps.dest.properties]
concurrency = {concurrency}
max-instances-per-request = {batch}
chunked = {chunked}
transfer-syntax = "{ts}"
[exporters.Bench]
uri = "stow:dest"
queue = "Export1"
ae_title = "BENCH"
[queues.Export1]
"""


class _StowpairSender(Pair):
    """``twistd -n stowpair`` holding the study in its archive (``stowpair import``),
    exporting it with a synchronous ``POST .../export/stowrs:dest`` (the same exporter and
    Web Application properties as queued exports, timed without queue polling)."""

    def __init__(
        self,
        concurrency: int = 1,
        batch: int = 1,
        chunked: bool = False,
        ts: str = "*",
        label: str = "",
        ignore: bool = False,
    ) -> None:
        self.concurrency, self.batch, self.chunked, self.ts = concurrency, batch, chunked, ts
        self.ignore = ignore
        suffix = (" chunked" if chunked else "") + (" (--ignore)" if ignore else "")
        self.label = label or f"c{concurrency} b{batch}{suffix}"

    def start_sender(self, url: str) -> None:
        rest_port = peers.free_port()
        conf = self.work / "stowpair.toml"
        conf.write_text(
            STOWPAIR_CONFIG.format(
                rest_port=rest_port,
                url=url,
                concurrency=self.concurrency,
                batch=self.batch,
                chunked=str(self.chunked).lower(),
                ts=self.ts,
            )
        )
        self.sender = peers.start_twistd(self.work, "stowpair", ["-c", str(conf)], rest_port)
        stowpair = str(Path(sys.executable).with_name("stowpair"))
        subprocess.run(
            [stowpair, "import", "-c", str(conf), *map(str, self.files)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.work,
        )
        from pydicom import dcmread

        self.study = dcmread(self.files[0], stop_before_pixels=True).StudyInstanceUID
        self.warm_up(rest_port)
        self.trigger = (
            f"http://127.0.0.1:{rest_port}/dcm4chee-arc/aets/BENCH/rs/studies/"
            f"{self.study}/export/stowrs:dest"
        )

    def warm_up(self, rest_port: int) -> None:
        """One untimed single-instance export: connections and transcoder workers start."""
        import urllib.request

        from pydicom import dcmread

        ds = dcmread(self.files[0], stop_before_pixels=True)
        url = (
            f"http://127.0.0.1:{rest_port}/dcm4chee-arc/aets/BENCH/rs/studies/"
            f"{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
            f"{ds.SOPInstanceUID}/export/stowrs:dest"
        )
        request = urllib.request.Request(url, method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
        self.after_warm_up()

    def after_warm_up(self) -> None:
        pass

    def export(self) -> float:
        import urllib.request

        request = urllib.request.Request(self.trigger, method="POST")
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=3600) as response:
            answer = json.loads(response.read())
        seconds = time.perf_counter() - t0
        if answer.get("completed") != len(self.files):
            raise RuntimeError(f"export answered {answer}")
        return seconds

    def sender_rss(self) -> dict[str, float]:
        out = {"sender_rss_mb": peak_rss_mb(self.sender.process.pid)}
        workers = [peak_rss_mb(pid) for pid in _descendants(self.sender.process.pid)]
        if workers:
            out["transcode_worker_rss_mb"] = max(workers)
        return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        todo += [int(c) for c in children]
    return found


class StowpairToStowrsd(_StowpairSender, _StowrsdReceiver):
    @property
    def name(self) -> str:  # type: ignore[override]
        return f"stowpair→stowrsd {self.label}"

    def setup(self, files: list[Path], work: Path) -> None:
        Pair.setup(self, files, work)
        self.start_receiver(work)
        self.start_sender(self.url)

    def after_warm_up(self) -> None:
        self.clear()

    def measure(self) -> dict[str, float]:
        seconds = self.export()
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        return {
            **rate(seconds, self.files),
            **self.sender_rss(),
            "receiver_rss_mb": peak_rss_mb(self.receiver.process.pid),
        }

    def teardown(self) -> None:
        self.sender.stop()
        self.receiver.stop()


class StowpairToOrthanc(_StowpairSender):
    @property
    def name(self) -> str:  # type: ignore[override]
        return f"stowpair→orthanc {self.label}"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = peers.start_orthanc(work / "sink")
        self.start_sender(f"http://127.0.0.1:{self.sink.port}/dicom-web")

    def after_warm_up(self) -> None:
        for study in peers.orthanc_call(self.sink, "GET", "/studies"):
            peers.orthanc_call(self.sink, "DELETE", f"/studies/{study}")

    def measure(self) -> dict[str, float]:
        seconds = self.export()
        stats = peers.orthanc_call(self.sink, "GET", "/statistics")
        if int(stats["CountInstances"]) != len(self.files):
            raise RuntimeError(f"Orthanc holds {stats['CountInstances']} of {len(self.files)}")
        for study in peers.orthanc_call(self.sink, "GET", "/studies"):
            peers.orthanc_call(self.sink, "DELETE", f"/studies/{study}")
        return {
            **rate(seconds, self.files),
            **self.sender_rss(),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.sender.stop()
        self.sink.stop()


def pairs_for(scenario: str) -> list[Pair]:
    if scenario.startswith("D"):  # DICOM (DIMSE): bench/dimse_pairs.py
        from bench.dimse_pairs import dimse_pairs_for

        return dimse_pairs_for(scenario)
    if scenario == "C1":  # nodes sharing PostgreSQL: bench/cluster_pairs.py
        from bench.cluster_pairs import cluster_pairs

        return cluster_pairs()
    common: list[Pair] = [OrthancToOrthanc(), OrthancToStowrsd(), DicomwebClientToStowrsd()]
    if scenario == "S1":
        ours: list[Pair] = [StowpairToStowrsd(c, b) for c in (1, 4) for b in (1, 10)]
        return [*ours, StowpairToOrthanc(4, 10), *common]
    if scenario == "S2":
        return [
            StowpairToStowrsd(1, 1),
            StowpairToStowrsd(1, 1, chunked=True),
            StowpairToStowrsd(1, 1, ignore=True),
            StowpairToOrthanc(1, 1),
            *common,
            CurlToNginx(),
            CopyToDisk(),
        ]
    if scenario == "S3":
        return [StowpairToStowrsd(4, 1, ts="ExplicitVRLittleEndian", label="EVRLE"), Dcmdjpeg()]
    if scenario == "S4":
        return [StowpairToStowrsd(1, 1), StowpairToStowrsd(1, 1, chunked=True)]
    return []
