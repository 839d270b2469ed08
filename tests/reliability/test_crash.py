"""Crash suite: SIGKILL ``twistd -n stowpair`` at seeded random moments during exports.

Between kills the service is restarted with the same configuration; new exports keep
being queued so most kills land while requests are in flight. Afterwards every task is
COMPLETED, every archive instance is at the destination byte for byte, and the
destination's ``receiver.instance.stored`` events count the duplicates (instances
stored more than once: sent by an attempt that the kill interrupted).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from tests.reliability import harness as h

SEED = 20261128
KILLS = 20
STUDIES = 4 + 2 * KILLS  # 4 queued at the start, 2 more after each restart
INSTANCES = 10


@pytest.mark.interop
@pytest.mark.slow
def test_kill9_during_exports_loses_nothing(tmp_path: Path) -> None:
    """When stowpair is SIGKILLed 20 times mid-export and restarted, every task completes
    and every instance arrives intact (duplicates counted, no loss)."""
    rng = random.Random(SEED)
    dest_dir = tmp_path / "dest"
    # --delay makes each request take a while, so kills find requests in flight
    dest = h.stowrsd(tmp_path, dest_dir, "--delay", "0.1")
    sp = h.stowpair(tmp_path, f"http://127.0.0.1:{dest.port}/stowrs")  # type: ignore[attr-defined]
    studies = h.load_archive(tmp_path, STUDIES, INSTANCES, size_kb=32, seed=SEED)
    port = sp.port  # type: ignore[attr-defined]
    queued, busy_at_kill, waits = 0, 0, []
    dest.start()
    try:
        sp.start()
        for uid in studies[:4]:
            h.export(port, uid)
        queued = 4
        for _ in range(KILLS):
            wait = rng.uniform(0.2, 3.0)
            waits.append(wait)
            h.time.sleep(wait)  # a random moment of the export
            states = _running(port)
            busy_at_kill += states["IN PROCESS"] > 0
            sp.kill9()
            assert not h.stray_files(dest_dir)
            sp.start()
            for uid in studies[queued : queued + 2]:
                h.export(port, uid)
            queued += 2
        listing = h.wait_done(port, queued, timeout=120)
        stored = h.receipts(tmp_path / "stowrsd.json")
    finally:
        sp.stop()
        dest.stop()
    statuses = Counter(t["status"] for t in listing)
    missing, differ = h.compare(tmp_path / "archive", dest_dir)
    duplicates = sum(n - 1 for n in stored.values())
    h.report(
        "crash.kill9_stowpair",
        {
            "seed": SEED,
            "kills": KILLS,
            "kills_with_export_in_process": busy_at_kill,
            "kill_wait_s": [round(min(waits), 2), round(max(waits), 2)],
            "tasks": len(listing),
            "statuses": dict(statuses),
            "instances": STUDIES * INSTANCES,
            "receipts": sum(stored.values()),
            "duplicates": duplicates,
            "instances_received_twice_or_more": sum(n > 1 for n in stored.values()),
            "missing": len(missing),
            "corrupt": len(differ),
        },
    )
    assert statuses == {"COMPLETED": queued}
    assert (missing, differ) == ([], [])
    assert h.stray_files(dest_dir) == [] and h.unparseable(dest_dir) == []
    assert busy_at_kill >= KILLS // 4, "kills must hit running exports"


def _running(port: int, patience: float = 10.0) -> Counter[str]:
    """The task states once an export is IN PROCESS (a restarted node takes a moment to
    pick its tasks up again), or as they are after ``patience`` seconds."""
    deadline = h.time.monotonic() + patience
    while True:
        states = Counter(t["status"] for t in h.tasks(port))
        if states["IN PROCESS"] > 0 or h.time.monotonic() > deadline:
            return states
        h.time.sleep(0.05)
