"""Decompress N JPEG Lossless SV1 files with our Transcoder and with dcmtk's dcmdjpeg.

Not a test. Usage: .venv/bin/python bench/transcode_bench.py [--count 200] [--size 512]
Inputs are 16-bit CT images (pydicom's CT_small tiled to SIZE x SIZE) compressed once with
``dcmcjpeg +e1``; every run decompresses the same files to Explicit VR Little Endian. For
our runs it also reports the worst reactor stall: how late a 5 ms LoopingCall fired.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from twisted.internet import defer, task

from stowpair.dicom.transcode import Transcoder
from stowpair.dicom.transfer_syntax import EXPLICIT_VR_LE

CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
TICK = 0.005


def make_inputs(folder: Path, count: int, size: int) -> list[Path]:
    ds = pydicom.dcmread(CT_SMALL)
    tiles = -(-size // ds.Rows)
    image = np.tile(ds.pixel_array, (tiles, tiles))[:size, :size]
    ds.Rows = ds.Columns = size
    ds.PixelData = np.ascontiguousarray(image).tobytes()
    native, base = folder / "native.dcm", folder / "sv1.dcm"
    ds.save_as(native)
    subprocess.run(["dcmcjpeg", "+e1", str(native), str(base)], check=True)
    paths = []
    for i in range(count):
        path = folder / f"in{i:04d}.dcm"
        shutil.copyfile(base, path)
        paths.append(path)
    return paths


async def run_ours(
    reactor: Any, paths: list[Path], out: Path, workers: int, procs: bool
) -> tuple[float, float]:
    """(seconds, worst reactor stall in seconds) for all files, after a warm-up job per worker."""
    transcoder = Transcoder(reactor, max_workers=workers, use_processes=procs)
    transcoder.start()
    worst = [0.0]
    last = [reactor.seconds()]

    def tick() -> None:
        now = reactor.seconds()
        worst[0] = max(worst[0], now - last[0] - TICK)
        last[0] = now

    probe = task.LoopingCall(tick)
    probe.clock = reactor
    try:
        warm = [
            transcoder.transcode(paths[0], EXPLICIT_VR_LE, out / f"w{i}") for i in range(workers)
        ]
        await defer.gatherResults(warm)
        last[0] = reactor.seconds()
        probe.start(TICK, now=False)
        start = time.perf_counter()
        jobs = [transcoder.transcode(p, EXPLICIT_VR_LE, out / p.name) for p in paths]
        await defer.gatherResults(jobs)
        return time.perf_counter() - start, worst[0]
    finally:
        if probe.running:
            probe.stop()
        await transcoder.stop()


def run_dcmdjpeg(paths: list[Path], out: Path, parallel: int) -> float:
    def one(p: Path) -> None:
        subprocess.run(["dcmdjpeg", str(p), str(out / p.name)], check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - start


async def bench(reactor: Any, count: int, size: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="transcode-bench-") as tmp:
        folder = Path(tmp)
        paths = make_inputs(folder, count, size)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{count} SV1 files of {size}x{size} 16-bit ({mb:.1f} MB compressed)")
        rows: list[tuple[str, float, str]] = []
        for label, n, procs in [
            (f"stowpair Transcoder, {workers} processes", workers, True),
            (f"stowpair Transcoder, {workers} threads", workers, False),
            ("stowpair Transcoder, 1 process", 1, True),
        ]:
            seconds, stall = await run_ours(
                reactor, paths, Path(tempfile.mkdtemp(dir=folder)), n, procs
            )
            rows.append((label, seconds, f"{stall * 1000:.0f} ms"))
        for parallel in sorted({1, workers}):
            seconds = run_dcmdjpeg(paths, Path(tempfile.mkdtemp(dir=folder)), parallel)
            rows.append((f"dcmdjpeg, {parallel} at a time", seconds, "-"))
        print(f"| {'decompressor':<38} | files/s | seconds | worst reactor stall |")
        print(f"|{'-' * 40}|---------|---------|---------------------|")
        for label, seconds, stall in rows:
            print(f"| {label:<38} | {count / seconds:7.1f} | {seconds:7.2f} | {stall:>19} |")


def main(reactor: Any, argv: list[str]) -> defer.Deferred[None]:
    parser = argparse.ArgumentParser(description="SV1 decompression: stowpair vs dcmdjpeg")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    return defer.ensureDeferred(bench(reactor, args.count, args.size, args.workers))


if __name__ == "__main__":
    task.react(main, (sys.argv[1:],))
