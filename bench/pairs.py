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


def _proc_mb(path: str, field: str) -> float:
    """A ``field: N kB`` line of a /proc file, in MB (NaN once the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a running process, in MB."""
    return _proc_mb(f"/proc/{pid}/status", "VmHWM:")


def pss_mb(pid: int) -> float:
    """Proportional set size (Pss of /proc/<pid>/smaps_rollup) now, in MB: the process's
    resident pages, each page shared with other processes counted as its share."""
    return _proc_mb(f"/proc/{pid}/smaps_rollup", "Pss:")


def receiver_rss(pid: int) -> dict[str, float]:
    """Peak RSS of a receiver and, when it has helper processes (stowrsd's header
    workers, the process that forks them, multiprocessing's resource tracker), the largest
    helper's peak RSS and the receiver's total: its own peak RSS plus the helpers' PSS at
    the end of the timed part. Adding the helpers' RSS would count the pages the workers
    share with the process they were forked from once per worker; the kernel keeps no
    peak of PSS, and the helpers' memory does not grow with the load."""
    out = {"receiver_rss_mb": peak_rss_mb(pid)}
    helpers = peers.descendants(pid)
    if helpers:
        out["header_worker_rss_mb"] = max(peak_rss_mb(p) for p in helpers)
        out["receiver_total_mb"] = out["receiver_rss_mb"] + sum(pss_mb(p) for p in helpers)
    return out


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process, its live descendants (stowpair's
    transcoding workers) and its waited-for children, from /proc."""
    if pid is None:
        return float("nan")
    total = 0.0
    for p in [pid, *peers.descendants(pid)]:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime are fields 14-17 of proc(5); fields[0] is field 3
        total += sum(int(x) for x in fields[11:15])
    return total / _TICKS


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

    # CPU seconds of the measured processes (None: not one we can see, or none)
    def sender_pid(self) -> int | None:
        peer = getattr(self, "sender", None) or getattr(self, "source", None)
        return peer.process.pid if peer is not None else None

    def receiver_pid(self) -> int | None:
        peer = getattr(self, "receiver", None) or getattr(self, "sink", None)
        return peer.process.pid if peer is not None else None

    def cpu_mark(self) -> tuple[float, float]:
        return cpu_seconds(self.sender_pid()), cpu_seconds(self.receiver_pid())

    def cpu_since(self, mark: tuple[float, float], instances: int) -> dict[str, float]:
        """CPU seconds per 1,000 instances of sender and receiver since ``mark``."""
        now = self.cpu_mark()
        out = {}
        for key, before, after in zip(("sender", "receiver"), mark, now, strict=True):
            if before == before and after == after:
                out[f"{key}_cpu_s_per_1k"] = (after - before) * 1000 / instances
        return out


class _StowrsdReceiver:
    """A ``twistd -n stowrsd`` receiver storing by UID (fsync on), emptied between runs."""

    ignore = False
    no_fsync = False

    def start_receiver(self, work: Path) -> peers.Peer:
        self.store = work / "received"
        self.store.mkdir(parents=True, exist_ok=True)
        port = peers.free_port()
        args = ["-b", f"127.0.0.1:{port}", "-d", str(self.store), "--json-log", "-"]
        args += ["--ignore"] if self.ignore else []
        args += ["--no-fsync"] if self.no_fsync else []
        self.receiver = peers.start_twistd(work, "stowrsd", args, port)
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
        self.mark = self.cpu_mark()
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
        cpu = self.cpu_since(self.mark, len(self.files))
        for study in peers.orthanc_call(self.sink, "GET", "/studies"):
            peers.orthanc_call(self.sink, "DELETE", f"/studies/{study}")
        return {
            **rate(seconds, self.files),
            **cpu,
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
        cpu = self.cpu_since(self.mark, len(self.files))
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        return {
            **rate(seconds, self.files),
            **cpu,
            "sender_rss_mb": peak_rss_mb(self.source.process.pid),
            **receiver_rss(self.receiver.process.pid),
        }


class DicomwebClientToStowrsd(Pair, _StowrsdReceiver):
    name = "dicomweb-client→stowrsd"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.start_receiver(work)

    def measure(self) -> dict[str, float]:
        argv = [sys.executable, str(HERE / "dwc_send.py"), self.url, *map(str, self.files)]
        mark = self.cpu_mark()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"dwc_send exited {proc.returncode}")
        seconds = float(out.decode().split()[-1])
        cpu = self.cpu_since(mark, len(self.files))
        # the client process's whole life (interpreter start-up and imports included)
        cpu["sender_cpu_s_per_1k"] = (usage.ru_utime + usage.ru_stime) * 1000 / len(self.files)
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        sender = usage.ru_maxrss / 1024
        return {
            **rate(seconds, self.files),
            **cpu,
            "sender_rss_mb": sender,
            **receiver_rss(self.receiver.process.pid),
        }

    def teardown(self) -> None:
        self.receiver.stop()


def run_measured(*commands: list[str], stdin: bytes | None = None) -> tuple[float, float]:
    """Run ``commands`` one after the other: wall seconds, and their CPU seconds (user +
    system, the children they waited for included)."""
    cpu = 0.0
    t0 = time.perf_counter()
    for argv in commands:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else None)
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}")
        cpu += usage.ru_utime + usage.ru_stime
    return time.perf_counter() - t0, cpu


class CurlToNginx(Pair):
    name = "curl→nginx sink"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        self.sink = peers.start_nginx_sink(work / "nginx")
        self.body = work / "body.bin"
        from bench.data import multipart_body

        multipart_body(files, self.body, "BENCHBOUNDARY")

    def measure(self) -> dict[str, float]:
        mark = self.cpu_mark()
        seconds, cpu = run_measured(
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
            ]
        )
        return {
            **rate(seconds, self.files),
            **self.cpu_since(mark, len(self.files)),
            "sender_cpu_s_per_1k": cpu * 1000 / len(self.files),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.sink.stop()


class CurlParallelToNginx(Pair):
    """The S1 loopback limit: one POST per file, by ``curl --parallel`` (keep-alive
    connections, ``connections`` at a time), into the nginx sink."""

    def __init__(self, connections: int = 4) -> None:
        self.connections = connections
        self.name = f"curl --parallel→nginx sink, 1 POST per instance, c{connections}"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        from bench.data import multipart_body

        self.sink = peers.start_nginx_sink(work / "nginx")
        bodies = work / "bodies"
        bodies.mkdir(exist_ok=True)
        media = 'multipart/related; type="application/dicom"; boundary=B'
        entries = []
        for f in files:
            body = bodies / f.name
            multipart_body([f], body, "B")
            entries.append(
                f'url = "http://127.0.0.1:{self.sink.port}/"\n'
                f'header = "Content-Type: {media.replace(chr(34), chr(92) + chr(34))}"\n'
                f'data-binary = "@{body}"\noutput = "/dev/null"\n'
                'write-out = "%{http_code}\\n"\n'
            )
        self.config = work / "curl.conf"
        self.config.write_text("next\n".join(entries))

    def measure(self) -> dict[str, float]:
        mark = self.cpu_mark()
        argv = ["curl", "-sS", "--no-progress-meter", "--parallel"]
        argv += ["--parallel-max", str(self.connections), "-K", str(self.config)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"curl exited {os.waitstatus_to_exitcode(status)}")
        answered = out.split().count("200")
        if answered != len(self.files):
            raise RuntimeError(f"nginx answered 200 to {answered} of {len(self.files)}")
        cpu = usage.ru_utime + usage.ru_stime
        return {
            **rate(seconds, self.files),
            **self.cpu_since(mark, len(self.files)),
            "sender_cpu_s_per_1k": cpu * 1000 / len(self.files),
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
        seconds, cpu = run_measured(
            ["cp", *map(str, self.files), str(dest)], ["sync", "-f", str(dest)]
        )
        return {**rate(seconds, self.files), "sender_cpu_s_per_1k": cpu * 1000 / len(self.files)}


class Dcmdjpeg(Pair):
    """dcmtk's decompressor over the files: one process per file, ``parallel`` at a time
    (``xargs -P``)."""

    def __init__(self, parallel: int = 1) -> None:
        self.parallel = parallel
        self.name = "dcmdjpeg" if parallel == 1 else f"dcmdjpeg, {parallel} at a time (xargs -P)"

    def measure(self) -> dict[str, float]:
        binary = shutil.which("dcmdjpeg")
        if binary is None:
            raise RuntimeError("dcmdjpeg is not installed (Debian package dcmtk)")
        dest = self.work / "out"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        jobs = "".join(f"{f}\n{dest / f.name}\n" for f in self.files).encode()
        seconds, cpu = run_measured(
            ["xargs", "-P", str(self.parallel), "-n", "2", binary], stdin=jobs
        )
        return {**rate(seconds, self.files), "sender_cpu_s_per_1k": cpu * 1000 / len(self.files)}


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
        no_fsync: bool = False,
        subset: slice | None = None,
    ) -> None:
        self.concurrency, self.batch, self.chunked, self.ts = concurrency, batch, chunked, ts
        self.ignore, self.no_fsync, self.subset = ignore, no_fsync, subset
        suffix = (" chunked" if chunked else "") + (" (--ignore)" if ignore else "")
        suffix += " (--no-fsync)" if no_fsync else ""
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
        self.mark = self.cpu_mark()
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=3600) as response:
            answer = json.loads(response.read())
        seconds = time.perf_counter() - t0
        if answer.get("completed") != len(self.files):
            raise RuntimeError(f"export answered {answer}")
        return seconds

    def sender_rss(self) -> dict[str, float]:
        out = {"sender_rss_mb": peak_rss_mb(self.sender.process.pid)}
        workers = [peak_rss_mb(pid) for pid in peers.descendants(self.sender.process.pid)]
        if workers:
            out["transcode_worker_rss_mb"] = max(workers)
        return out


class StowpairToStowrsd(_StowpairSender, _StowrsdReceiver):
    @property
    def name(self) -> str:  # type: ignore[override]
        return f"stowpair→stowrsd {self.label}"

    def setup(self, files: list[Path], work: Path) -> None:
        Pair.setup(self, files[self.subset] if self.subset else files, work)
        self.start_receiver(work)
        self.start_sender(self.url)

    def after_warm_up(self) -> None:
        self.clear()

    def measure(self) -> dict[str, float]:
        seconds = self.export()
        cpu = self.cpu_since(self.mark, len(self.files))
        if self.received() != len(self.files):
            raise RuntimeError(f"stowrsd holds {self.received()} of {len(self.files)}")
        self.clear()
        return {
            **rate(seconds, self.files),
            **cpu,
            **self.sender_rss(),
            **receiver_rss(self.receiver.process.pid),
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
        cpu = self.cpu_since(self.mark, len(self.files))
        stats = peers.orthanc_call(self.sink, "GET", "/statistics")
        if int(stats["CountInstances"]) != len(self.files):
            raise RuntimeError(f"Orthanc holds {stats['CountInstances']} of {len(self.files)}")
        for study in peers.orthanc_call(self.sink, "GET", "/studies"):
            peers.orthanc_call(self.sink, "DELETE", f"/studies/{study}")
        return {
            **rate(seconds, self.files),
            **cpu,
            **self.sender_rss(),
            "receiver_rss_mb": peak_rss_mb(self.sink.process.pid),
        }

    def teardown(self) -> None:
        self.sender.stop()
        self.sink.stop()


class ConcurrentClients(Pair, _StowrsdReceiver):
    """S8: ``clients`` HTTP clients (threads of this process, one connection each) POST
    one request of ``per_client`` instances each into stowrsd, all at once."""

    def __init__(self, clients: int = 200, per_client: int = 10) -> None:
        self.clients, self.per_client = clients, per_client
        self.name = f"{clients} clients × {per_client} instances→stowrsd"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files[: self.clients * self.per_client], work)
        if len(self.files) < self.clients * self.per_client:
            raise RuntimeError(f"S8 needs {self.clients * self.per_client} files")
        self.start_receiver(work)
        self.bodies = []
        for n in range(self.clients):
            chunk = self.files[n * self.per_client : (n + 1) * self.per_client]
            body = b"".join(
                b"--B\r\nContent-Type: application/dicom\r\n\r\n" + f.read_bytes() + b"\r\n"
                for f in chunk
            )
            self.bodies.append(body + b"--B--\r\n")

    def measure(self) -> dict[str, float]:
        import http.client
        import threading

        port = int(self.url.split(":")[2].split("/")[0])
        barrier = threading.Barrier(self.clients + 1)
        errors: list[str] = []
        headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=B'}

        def client(body: bytes) -> None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                conn.connect()
                barrier.wait()
                conn.request("POST", "/stowrs/studies", body, headers)
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    errors.append(f"HTTP {answer.status}")
                conn.close()
            except Exception as e:  # counted, as a client would see it
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(b,)) for b in self.bodies]
        for t in threads:
            t.start()
        mark = self.cpu_mark()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        cpu = self.cpu_since(mark, len(self.files))
        stored = self.received()
        self.clear()
        if errors:
            print(f"S8 errors: {errors[:5]}", file=sys.stderr)
        return {
            **rate(seconds, self.files),
            **cpu,
            "errors": float(len(errors)),
            "stored": float(stored),
            **receiver_rss(self.receiver.process.pid),
        }

    def teardown(self) -> None:
        self.receiver.stop()


class TaskStoreQueries(Pair):
    """S7: ``tasks`` export tasks in a stowpair's SQLite task store when it starts; the time of
    ``/monitor/export`` first pages and ``/count`` with filters (median of 5 each; the
    slowest filter is reported), after one untimed call of each."""

    QUERIES = {
        "page": [
            "?limit=20",
            "?status=FAILED&limit=20",
            "?ExporterID=Bench&status=COMPLETED&limit=20&orderby=-createdTime",
            "?StudyInstanceUID=1.2.3.4.77&limit=20",
        ],
        "count": [
            "/count",
            "/count?status=FAILED",
            "/count?ExporterID=Bench&status=COMPLETED",
            "/count?status=SCHEDULED&updatedTime=20200101-",
        ],
    }

    def __init__(self, tasks: int = 100_000) -> None:
        self.tasks = tasks
        self.name = f"{tasks:,} tasks: /monitor/export page, /count"

    def setup(self, files: list[Path], work: Path) -> None:
        super().setup(files, work)
        import sqlite3

        rest_port = peers.free_port()
        conf = work / "stowpair.toml"
        conf.write_text(
            STOWPAIR_CONFIG.format(
                rest_port=rest_port,
                url="http://127.0.0.1:9/dicom-web",
                concurrency=1,
                batch=1,
                chunked="false",
                ts="*",
            )
        )
        # started once to create the task store, stopped while the tasks are written, and
        # started again: a store that holds them when stowpair starts
        peers.start_twistd(work, "stowpair", ["-c", str(conf)], rest_port).stop()
        self.base = f"http://127.0.0.1:{rest_port}/dcm4chee-arc/monitor/export"
        db = sqlite3.connect(work / "var" / "stowpair-tasks.sqlite", timeout=60)
        now = time.time()
        statuses = ["COMPLETED"] * 8 + ["FAILED", "CANCELED"]
        rows = [
            (
                "bench",
                "Export1",
                statuses[n % 10],
                "Bench",
                "BENCH",
                f"1.2.3.4.{n}",
                now - n,
                now - n,
                now - n,
            )
            for n in range(self.tasks)
        ]
        with db:
            db.executemany(
                "INSERT INTO task (device_name, queue_name, task_status, exporter_id,"
                " local_aet, study_iuid, created_time, updated_time, scheduled_time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        db.close()
        self.sender = peers.start_twistd(work, "stowpair", ["-c", str(conf)], rest_port)
        import urllib.request

        for query in [q for queries in self.QUERIES.values() for q in queries]:
            with urllib.request.urlopen(self.base + query, timeout=120) as response:
                response.read()  # untimed: the process settles after its start

    def _ms(self, url: str) -> float:
        import urllib.request

        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as response:
                response.read()
            times.append((time.perf_counter() - t0) * 1000)
        return sorted(times)[2]

    def measure(self) -> dict[str, float]:
        out = {}
        for kind, queries in self.QUERIES.items():
            out[f"{kind}_ms"] = max(self._ms(self.base + q) for q in queries)
        out["sender_rss_mb"] = peak_rss_mb(self.sender.process.pid)
        return out

    def teardown(self) -> None:
        self.sender.stop()


#: S6: the study sizes exported, in the order their files are concatenated; S7's task
#: count; S8's clients (bench/run.py sets them from its sizes).
S6_SIZES = (1000, 5000, 10000)
S7_TASKS = 100_000
S8_CLIENTS = 200


def s6_pairs(sizes: tuple[int, ...]) -> list[Pair]:
    out: list[Pair] = []
    start = 0
    for n in sizes:
        label = f"c4 b10, {n:,}-instance study"
        out.append(StowpairToStowrsd(4, 10, label=label, subset=slice(start, start + n)))
        start += n
    return out


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
        ours += [StowpairToStowrsd(4, 10, ignore=True), StowpairToStowrsd(4, 10, no_fsync=True)]
        limits: list[Pair] = [CurlParallelToNginx(4), CopyToDisk()]
        return [*ours, StowpairToOrthanc(4, 10), *common, *limits]
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
        evrle = StowpairToStowrsd(4, 1, ts="ExplicitVRLittleEndian", label="EVRLE")
        return [evrle, Dcmdjpeg(), Dcmdjpeg(2)]
    if scenario == "S4":
        return [StowpairToStowrsd(1, 1), StowpairToStowrsd(1, 1, chunked=True)]
    if scenario == "S6":
        return s6_pairs(S6_SIZES)
    if scenario == "S7":
        return [TaskStoreQueries(S7_TASKS)]
    if scenario == "S8":
        return [ConcurrentClients(S8_CLIENTS)]
    return []
