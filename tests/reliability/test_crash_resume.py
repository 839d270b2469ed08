"""Crash-resume suite: SIGKILL ``twistd -n stowpair`` at seeded points of one 300-instance
export into a separate ``twistd -n stowrsd``, restart it each time, and count what the
destination received twice.

Each request's per-instance results are committed as its answer is read, and the
exporter sends nothing more on that slot until the commit is done; so a kill costs at
most ``concurrency × max-instances-per-request`` instances sent again (the requests in
flight or awaiting their commit). Each interrupted attempt counts as a failed attempt.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.reliability import harness as h

SEED = 20261130
KILLS = 10
INSTANCES = 300
CONCURRENCY, PER_REQUEST = 2, 5
BOUND_PER_KILL = CONCURRENCY * PER_REQUEST


@pytest.mark.slow
def test_kill9_mid_export_resends_at_most_the_unacknowledged(tmp_path: Path) -> None:
    """When stowpair is SIGKILLed 10 times during a 300-instance export and restarted,
    the export completes with every instance at the destination byte for byte, each
    interrupted attempt counted as a failure, and at most concurrency ×
    max-instances-per-request instances stored twice per kill."""
    rng = random.Random(SEED)
    # distinct instances stored at the destination when each kill happens
    points = sorted(rng.sample(range(20, INSTANCES - 20), KILLS))
    dest_dir = tmp_path / "dest"
    dest = h.stowrsd(tmp_path, dest_dir, "--delay", "0.05")
    sp = h.stowpair(
        tmp_path,
        f"http://127.0.0.1:{dest.port}/stowrs",  # type: ignore[attr-defined]
        {"concurrency": str(CONCURRENCY), "max-instances-per-request": str(PER_REQUEST)},
        {"max_retries": KILLS + 5, "retry_on_warning": False},
    )
    [study] = h.load_archive(tmp_path, 1, INSTANCES, size_kb=16, seed=SEED)
    receipts_log = tmp_path / "stowrsd.json"
    kill_points: list[int] = []
    port = sp.port  # type: ignore[attr-defined]
    dest.start()
    try:
        sp.start()
        task_id = h.export(port, study)
        for point in points:
            # at least one instance stored since the restart: an attempt is running
            target = max(point, len(h.receipts(receipts_log)) + 1)

            def reached(target: int = target) -> bool:
                return len(h.receipts(receipts_log)) >= target

            h.wait_until(reached, 120, f"{target} instances stored")
            kill_points.append(target)
            sp.kill9()
            assert not h.stray_files(dest_dir)
            sp.start()
        [task] = h.wait_done(port, 1, timeout=180)
        stored = h.receipts(receipts_log)
    finally:
        sp.stop()
        dest.stop()
    duplicates = sum(n - 1 for n in stored.values())
    missing, differ = h.compare(tmp_path / "archive", dest_dir)
    h.report(
        "crash.resume_300",
        {
            "seed": SEED,
            "kills": KILLS,
            "kill_points_stored": kill_points,
            "instances": INSTANCES,
            "receipts": sum(stored.values()),
            "instances_resent": sum(1 for n in stored.values() if n > 1),
            "duplicates": duplicates,
            "most_receipts_of_one_instance": max(stored.values()),
            "bound": KILLS * BOUND_PER_KILL,
            "bound_per_kill": BOUND_PER_KILL,
            "task_failures": task.get("failures", 0),
            "status": task["status"],
            "missing": len(missing),
            "corrupt": len(differ),
        },
    )
    assert task["taskID"] == task_id and task["status"] == "COMPLETED"
    assert task["NumberOfInstances"] == INSTANCES
    assert task.get("failures", 0) == KILLS  # each interrupted attempt counted
    assert (missing, differ) == ([], [])
    assert len(stored) == INSTANCES
    assert max(stored.values()) <= 1 + KILLS  # a re-sent request may be cut again
    assert duplicates <= KILLS * BOUND_PER_KILL
