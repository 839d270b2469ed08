"""Crash suite, receiving side: SIGKILL ``twistd -n stowrsd`` while request bodies arrive.

A throttling proxy keeps large instances in flight; the receiver is killed once a part
is being written to ``.incoming`` and restarted on the same port. The final layout must
never hold anything but complete, parseable ``<Study>/<Series>/<SOP>.dcm`` files, and
the exporter's retries (retry_delay PT1S) must complete every task.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from stowpair.receiver.direct_io import DIRECT_FROM
from tests.reliability import harness as h
from tests.reliability.proxy import FaultyProxy

SEED = 7
KILLS = 5


def parts_in_flight(incoming: Path, past: int = 0) -> list[Path]:
    """Temp parts holding more than ``past`` bytes."""
    found = []
    for p in incoming.glob("*.part"):
        try:
            if p.stat().st_size > past:
                found.append(p)
        except FileNotFoundError:  # placed or removed meanwhile
            pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("size_kb", "per_study", "past"),
    [(2048, 6, 0), (6144, 3, DIRECT_FROM + 256 * 1024)],
    ids=["2MB", "6MB-killed-while-written-direct"],
)
def test_kill9_receiver_mid_body_leaves_no_partial_file(
    tmp_path: Path, size_kb: int, per_study: int, past: int
) -> None:
    """When stowrsd is SIGKILLed mid-body 5 times, only whole files are ever in its layout
    and the exporter's retries deliver every instance once it is back. With 6 MB
    instances each kill comes once a part is past its first 4 MiB, while stowrsd writes it
    with O_DIRECT."""
    rng = random.Random(SEED)
    dest_dir = tmp_path / "dest"
    dest = h.stowrsd(tmp_path, dest_dir)
    dest.start()
    proxy = FaultyProxy(dest.port, rate=4 * 1024 * 1024)  # type: ignore[attr-defined]
    sp = h.stowpair(
        tmp_path,
        f"http://127.0.0.1:{proxy.port}/stowrs",
        properties={"response-timeout": "10"},
        queue={"max_tasks_parallel": 1},
    )
    studies = h.load_archive(tmp_path, 2, per_study, size_kb=size_kb, seed=SEED)
    left_behind: list[int] = []  # non-empty temp parts after each kill
    largest: list[int] = []  # bytes of the largest of them
    try:
        sp.start()
        for uid in studies:
            h.export(sp.port, uid)  # type: ignore[attr-defined]
        for _ in range(KILLS):
            h.wait_until(lambda: bool(parts_in_flight(dest_dir / ".incoming", past)), 60, "a part")
            h.time.sleep(rng.uniform(0.0, 0.3 if not past else 0.1))
            dest.kill9()
            stale = set((dest_dir / ".incoming").glob("*.part"))  # with the empty spares
            cut = parts_in_flight(dest_dir / ".incoming")
            left_behind.append(len(cut))
            largest.append(max((p.stat().st_size for p in cut), default=0))
            assert h.stray_files(dest_dir) == [] and h.unparseable(dest_dir) == []
            dest.start()
            assert not any(p.exists() for p in stale)  # removed at start
        listing = h.wait_done(sp.port, len(studies), timeout=120)  # type: ignore[attr-defined]
    finally:
        sp.stop()
        dest.stop()
        proxy.close()
    missing, differ = h.compare(tmp_path / "archive", dest_dir)
    stored = h.receipts(tmp_path / "stowrsd.json")
    failed_requests = [
        e for e in h.events(tmp_path / "stowpair.json", "exporter.request") if e["failed"]
    ]
    h.report(
        "crash.kill9_receiver",
        {
            "seed": SEED,
            "kills": KILLS,
            "part_files_left_by_kills": left_behind,
            "largest_part_at_kill": largest,
            "instances": 2 * per_study,
            "size_kb": size_kb,
            "receipts": sum(stored.values()),
            "duplicates": sum(n - 1 for n in stored.values()),
            "failed_requests": len(failed_requests),
            "statuses": dict(Counter(t["status"] for t in listing)),
            "missing": len(missing),
            "corrupt": len(differ),
        },
    )
    assert [t["status"] for t in listing] == ["COMPLETED"] * len(studies)
    assert (missing, differ) == ([], [])
    assert h.stray_files(dest_dir) == [] and h.unparseable(dest_dir) == []
    assert all(n >= 1 for n in left_behind), "every kill must interrupt a body"
    assert all(size > past for size in largest), "every kill must come past the threshold"
