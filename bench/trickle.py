"""Slowloris against a real tap: N connections trickle their headers or their body, one
byte every few seconds, while ordinary requests keep coming; prints the figures as JSON.

    .venv/bin/python bench/trickle.py stowrsd                      # the defaults (60 s)
    .venv/bin/python bench/trickle.py stowpair --bound 10          # [rest] bounds of 10 s
    .venv/bin/python bench/trickle.py stowrsd --connections 400 --every 3

Figures: connections opened, closed by the server (and how many got the 408), time from
connect to close, bytes each sent, and the latency of ``GET /health`` (sent every 0.5 s)
during the attack. The test suite asserts the behaviour (tests/badinput/test_trickle.py);
this script measures it on ``twistd -n stowrsd`` / ``twistd -n stowpair`` as run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# the peers rig is tests/support/peers.py: the repository root must be importable
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.peers import free_port, start_twistd

STOWPAIR_CONFIG = """
base_dir = "."
demo_on_empty = false
[rest]
port = {port}
{bounds}
[emulator]
enabled = false
[archive]
storage = "archive"
database = "stowpair.sqlite"
[logging]
json_file = "stowpair.json"
"""
STOW_TYPE = b'multipart/related; type="application/dicom"; boundary=B'


def _heads(target: str, port: int) -> list[tuple[str, bytes, bytes]]:
    """(kind, sent at once, trickled): the headers never end, or the body never does."""
    path = b"/stowrs/studies" if target == "stowrsd" else b"/dcm4chee-arc/aets/STOWPAIR/rs/studies"
    host = b"Host: 127.0.0.1:%d\r\n" % port
    headers = (b"GET /health HTTP/1.1\r\n" + host, b"X-Slow: " + b"s" * 10_000)
    body_head = (
        b"POST " + path + b" HTTP/1.1\r\n" + host + b"Content-Type: " + STOW_TYPE + b"\r\n"
        b"Content-Length: 10000000\r\n\r\n"
    )
    return [("headers", *headers), ("body", body_head, b"--B\r\n" + b"b" * 10_000)]


async def _trickle(port: int, head: bytes, drip: bytes, every: float) -> dict[str, Any]:
    opened = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connected = time.monotonic()
    writer.write(head)
    sent = 0
    status = 0
    answer = b""
    try:
        while True:
            writer.write(drip[sent % len(drip) : sent % len(drip) + 1])
            sent += 1
            try:
                chunk = await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
    except (ConnectionError, OSError):
        pass
    closed = time.monotonic()
    if answer.startswith(b"HTTP/1.1 "):
        status = int(answer.split(b" ")[1])
    writer.close()
    return {"opened": opened, "connect": connected - opened, "closed": closed - connected,
            "sent": sent, "status": status}  # fmt: skip


async def _ordinary(port: int, stop: asyncio.Event) -> list[tuple[float, int]]:
    results = []
    while not stop.is_set():
        started = time.monotonic()
        status = 0
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 30)
            status = int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/1.1 ") else 0
            writer.close()
        except (OSError, TimeoutError):
            pass
        results.append((time.monotonic() - started, status))
        await asyncio.sleep(0.5)
    return results


async def attack(port: int, connections: int, every: float, limit: float) -> dict[str, Any]:
    kinds = _heads_cache[port]
    stop = asyncio.Event()
    ordinary = asyncio.create_task(_ordinary(port, stop))
    tasks = []
    started = time.monotonic()
    for i in range(connections):
        _, head, drip = kinds[i % 2]
        tasks.append(asyncio.create_task(_trickle(port, head, drip, every)))
        await asyncio.sleep(0.005)
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    stop.set()
    latencies = await ordinary
    results = [t.result() for t in done]
    close = [r["closed"] for r in results] or [0.0]
    lat = [s for s, _ in latencies] or [0.0]
    spread = {"min": round(min(close), 2), "median": round(statistics.median(close), 2),
              "max": round(max(close), 2)}  # fmt: skip
    return {
        "connections opened": connections,
        "closed by the server": len(results),
        "still open at the limit": len(pending),
        "answered 408": sum(1 for r in results if r["status"] == 408),
        "time to close, s": spread,
        "bytes trickled per connection, max": max((r["sent"] for r in results), default=0),
        "ordinary GET /health": len(latencies),
        "ordinary answered 200": sum(1 for _, s in latencies if s == 200),
        "ordinary latency, s": {"median": round(statistics.median(lat), 4),
                                "max": round(max(lat), 4)},
        "attack duration, s": round(time.monotonic() - started, 1),
    }  # fmt: skip


_heads_cache: dict[int, list[tuple[str, bytes, bytes]]] = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tap", choices=["stowrsd", "stowpair"])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between bytes")
    parser.add_argument(
        "--bound", type=float, default=None, help="header and body timeouts, s (default 60)"
    )
    args = parser.parse_args()
    bound = args.bound or 60.0
    with tempfile.TemporaryDirectory(prefix="trickle-") as tmp:
        work = Path(tmp)
        port = free_port()
        if args.tap == "stowrsd":
            options = ["-b", f"127.0.0.1:{port}", "-d", str(work / "store"), "--json-log",
                       str(work / "stowrsd.json")]  # fmt: skip
            if args.bound:
                options += ["--header-timeout", str(bound), "--body-timeout", str(bound)]
        else:
            bounds = (
                f'header_timeout = "PT{bound:g}S"\nbody_timeout = "PT{bound:g}S"'
                if args.bound
                else ""
            )
            (work / "stowpair.toml").write_text(STOWPAIR_CONFIG.format(port=port, bounds=bounds))
            options = ["-c", str(work / "stowpair.toml")]
        peer = start_twistd(work, args.tap, options, port)
        try:
            _heads_cache[port] = _heads(args.tap, port)
            figures = asyncio.run(attack(port, args.connections, args.every, bound + 60))
        finally:
            peer.stop()
    figures = {"tap": args.tap, "bound, s": bound, "byte every, s": args.every, **figures}
    print(json.dumps(figures, indent=1))
    return 0 if figures["still open at the limit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
