"""The logs of real ``twistd -n stowpair`` and ``twistd -n stowrsd`` processes under
hostile request lines, and the JSON log through shutdown.

Request lines with raw non-ASCII bytes once made Twisted print "MESSAGE LOST" and
"Temporarily disabling observer" (a request's repr failed inside a log event), and the
JSON log stopped at the ``shutdown`` event while the drain went to stdout only.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stowpair.web.errors import request_line_problem
from tests.badinput.rawhttp import STATUSES
from tests.reliability import harness

HOSTILE_LINES = [
    b"HEAD /health\x99 HTTP/1.1",
    b"GET /health\x99\xff HTTP/1.1",
    b"GET /dcm4chee-arc/monitor/export/\x99/a/b HTTP/1.1",
    b"DELETE /dcm4chee-arc/monitor/export/%ff HTTP/1.1",
    b"G\xffT /health HTTP/1.1",
    b"GET /health HTTP/2.0",
    b"GET /health?x=%C3%28 HTTP/1.1",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"HEAD /dcm4chee-arc/ctrl/reload HTTP/1.1",
    b"PUT /stowrs/studies/\x80 HTTP/1.1",
    b"GET /\x1b[31mred HTTP/1.1",
]
#: The lines refused as request lines (the others are routed, then refused).
LINE_REFUSALS = [line for line in HOSTILE_LINES if request_line_problem(line)]
BAD_OUTPUT = ("Temporarily disabling observer", "MESSAGE LOST", "Traceback", "Unhandled")


def _raw(port: int, line: bytes, target: str) -> int:
    """Send one request line (and an empty header block); the status answered, 0 if none."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(line + b"\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data:
                    break
        except TimeoutError:
            pass
    status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else 0
    STATUSES[target, status] += 1
    return status


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[harness.Proc, harness.Proc, list[str]]]:
    dest = harness.stowrsd(tmp_path, tmp_path / "received", "--delay", "2")
    sender_dir = tmp_path / "sender"
    sender_dir.mkdir()
    sender = harness.stowpair(sender_dir, f"http://127.0.0.1:{dest.port}/stowrs")  # type: ignore[attr-defined]
    uids = harness.load_archive(sender_dir, studies=1, instances=3, size_kb=8, seed=7)
    try:
        dest.start()
        sender.start()
        yield dest, sender, uids
    finally:
        while harness.CREATED:
            harness.CREATED.pop().stop()


def test_hostile_request_lines_leave_the_logs_working(
    processes: tuple[harness.Proc, harness.Proc, list[str]],
) -> None:
    """When hostile request lines reach both taps, each gets a 4xx, no observer is
    disabled or message lost, and later events still reach the JSON files."""
    dest, sender, uids = processes
    for proc, name in ((sender, "twistd-stowpair"), (dest, "twistd-stowrsd")):
        port = proc.port  # type: ignore[attr-defined]
        for line in HOSTILE_LINES:
            status = _raw(port, line, name)
            assert 400 <= status < 500, (name, line, status)
    task = harness.export(sender.port, uids[0])  # type: ignore[attr-defined]
    harness.wait_done(sender.port, 1, 60)  # type: ignore[attr-defined]
    sender.stop()
    dest.stop()
    for proc, log in (
        (sender, sender.workdir / "stowpair.json"),
        (dest, dest.workdir / "stowrsd.json"),
    ):
        output = proc.log_path.read_text(errors="replace")
        assert not [b for b in BAD_OUTPUT if b in output], proc.tail(60)
        names = [e["event"] for e in _events(log)]
        refused = names.index("http.refused")
        assert names.count("http.refused") == len(LINE_REFUSALS), names
        assert "receiver.request" in names[refused:] or "api.export.requested" in names[refused:]
    states = [
        e for e in _events(sender.workdir / "stowpair.json") if e["event"] == "queue.task.state"
    ]
    assert states and states[-1]["task_id"] == task and states[-1]["status"] == "COMPLETED"


def test_json_log_holds_the_drain(processes: tuple[harness.Proc, harness.Proc, list[str]]) -> None:
    """When stowpair stops while an export runs, the JSON log holds everything after the
    ``shutdown`` event: the drain, the task's last state change, the transcoder stopping
    and twistd's own last line."""
    _, sender, uids = processes
    port = sender.port  # type: ignore[attr-defined]
    harness.export(port, uids[0])
    harness.wait_until(
        lambda: any(t["status"] == "IN PROCESS" for t in harness.tasks(port)), 30, "IN PROCESS"
    )
    assert sender.process is not None
    sender.process.send_signal(signal.SIGTERM)
    # twistd ends by re-raising the signal it stopped for (exit status -SIGTERM)
    assert sender.process.wait(60) in (0, -signal.SIGTERM)
    events = _events(sender.workdir / "stowpair.json")
    names = [e["event"] for e in events]
    after = names[names.index("shutdown") + 1 :]
    for expected in ("queue.drain", "queue.task.state", "transcode.pool.stopped"):
        assert expected in after, (expected, after)
    assert any("Server Shut Down" in e.get("text", "") for e in events[-5:]), names[-5:]
    assert "config.loaded" in names and names.index("config.loaded") < names.index("startup")


def test_import_writes_json_events(
    processes: tuple[harness.Proc, harness.Proc, list[str]],
) -> None:
    """When ``stowpair import`` runs, its events go to stowpair-import.json beside the
    service's JSON log."""
    _, sender, _ = processes
    names = [e["event"] for e in _events(sender.workdir / "stowpair-import.json")]
    assert "archive.index.opened" in names and "archive.import.done" in names, names
