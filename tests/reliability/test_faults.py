"""Fault suite: ``twistd -n stowrsd`` fault injection against a real ``twistd -n stowpair``.

Per-instance failures, 503 with Retry-After, answers delayed past the exporter's
``response-timeout``, and connections cut mid-body by a seeded proxy. Every task must
converge to COMPLETED within the retry budget, every instance must arrive intact, and
an instance that completed must never be sent again: checked on both sides, in the
queue's per-instance results (no row after the COMPLETED one) and in the destination's
``receiver.instance.stored`` events (each instance stored once, unless a timeout hid an
answer: those duplicates are counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import harness as h
from tests.reliability.proxy import FaultyProxy

SEED = 4242
STUDIES, INSTANCES = 2, 10


@dataclass
class Run:
    """What one scenario observed."""

    tmp: Path
    listing: list[dict[str, Any]]
    stored: Counter[str]
    results: list[tuple[int, int, str, str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def events(self, log: str, name: str) -> list[dict[str, Any]]:
        return list(h.events(self.tmp / log, name))

    def completed_then_resent(self) -> list[str]:
        """SOP UIDs with a per-instance result after the attempt that completed them."""
        done: dict[str, int] = {}
        for _, attempt, sop, status in sorted(self.results, key=lambda r: r[1]):
            if status in ("COMPLETED", "WARNING"):
                done.setdefault(sop, attempt)
        return sorted({sop for _, attempt, sop, _ in self.results if attempt > done[sop]})

    def counts(self) -> dict[str, Any]:
        requests = self.events("stowpair.json", "exporter.request")
        rows = Counter(sop for _, _, sop, _ in self.results)
        return {
            "requests": len(requests),
            "failed_requests": sum(1 for r in requests if r["failed"]),
            "retries": len(self.events("stowpair.json", "queue.task.retry")),
            "instances": STUDIES * INSTANCES,
            "instances_resent": sum(1 for n in rows.values() if n > 1),
            "sends": sum(rows.values()),
            "receipts": sum(self.stored.values()),
            "duplicates": sum(n - 1 for n in self.stored.values()),
            "statuses": dict(Counter(t["status"] for t in self.listing)),
            **self.extra,
        }


def run(
    tmp: Path,
    dest_options: list[str],
    properties: dict[str, str] | None = None,
    proxy: dict[str, Any] | None = None,
    recover: Callable[[h.Proc], None] | None = None,
    failures_before_recover: int = 1,
) -> Run:
    """Export STUDIES × INSTANCES through the faults; ``recover`` runs once that many
    requests failed (e.g. to restart the destination without its fault)."""
    dest_dir = tmp / "dest"
    dest = h.stowrsd(tmp, dest_dir, "--seed", str(SEED), *dest_options)
    dest.start()
    front = FaultyProxy(dest.port, seed=SEED, **proxy) if proxy else None  # type: ignore[attr-defined]
    url_port = front.port if front else dest.port  # type: ignore[attr-defined]
    sp = h.stowpair(tmp, f"http://127.0.0.1:{url_port}/stowrs", properties)
    studies = h.load_archive(tmp, STUDIES, INSTANCES, size_kb=32, seed=SEED)
    try:
        sp.start()
        for uid in studies:
            h.export(sp.port, uid)  # type: ignore[attr-defined]
        if recover is not None:
            log = tmp / "stowpair.json"

            def failed() -> bool:
                requests = h.events(log, "exporter.request")
                return sum(1 for e in requests if e["failed"]) >= failures_before_recover

            h.wait_until(failed, 60, f"{failures_before_recover} failed requests")
            recover(dest)
        listing = h.wait_done(sp.port, STUDIES, timeout=120)  # type: ignore[attr-defined]
    finally:
        sp.stop()
        dest.stop()
        if front:
            front.close()
    result = Run(tmp, listing, h.receipts(tmp / "stowrsd.json"), h.instance_results(tmp))
    if front:
        result.extra.update(connections=front.counts.connections, cuts=front.counts.cuts)
    assert [t["status"] for t in listing] == ["COMPLETED"] * STUDIES
    assert h.compare(tmp / "archive", dest_dir) == ([], [])
    assert h.stray_files(dest_dir) == []
    assert result.completed_then_resent() == []
    return result


@pytest.mark.slow
def test_instance_failures_converge_resending_only_failed(tmp_path: Path) -> None:
    """When 30% of instances fail with A700 (5 per request), the tasks complete and only
    the failed instances are sent again."""
    r = run(
        tmp_path,
        ["--fail-rate", "0.3", "--fail-reason", "A700"],
        {"max-instances-per-request": "5"},
    )
    injected = len(r.events("stowrsd.json", "receiver.instance.failed"))
    h.report("faults.instance_failures", {"seed": SEED, "injected": injected, **r.counts()})
    assert injected > 0
    assert max(r.stored.values()) == 1  # a stored instance was never sent again
    assert r.counts()["sends"] == STUDIES * INSTANCES + injected


@pytest.mark.slow
def test_503_with_retry_after_converges(tmp_path: Path) -> None:
    """When half the requests get 503 with Retry-After: 2, the tasks complete, each
    instance is stored once and every retry waits at least the Retry-After."""
    r = run(tmp_path, ["--status", "503", "--status-rate", "0.5", "--retry-after", "2"])
    answered_503 = [
        e for e in r.events("stowpair.json", "exporter.request") if e["http_status"] == 503
    ]
    delays = [e["delay"] for e in r.events("stowpair.json", "queue.task.retry")]
    h.report("faults.503", {"seed": SEED, "injected": len(answered_503), **r.counts()})
    assert answered_503 and delays and min(delays) >= 2
    assert max(r.stored.values()) == 1


@pytest.mark.slow
def test_answers_later_than_response_timeout_converge(tmp_path: Path) -> None:
    """When the destination answers after the exporter's response-timeout, requests fail
    as timeouts; once it answers in time again the tasks complete (stored-but-unanswered
    instances arrive twice: counted, never lost)."""

    def recover(dest: h.Proc) -> None:
        dest.stop()
        dest.argv = [a for a in dest.argv if a not in ("--delay", "3")]
        dest.start()

    r = run(
        tmp_path,
        ["--delay", "3"],
        {"response-timeout": "1"},
        recover=recover,
        failures_before_recover=6,
    )
    requests = r.events("stowpair.json", "exporter.request")
    timeouts = [e for e in requests if "response-timeout" in e["reason"]]
    refused = [e for e in requests if "refused" in e["reason"]]  # while it restarted
    counts = {"injected": len(timeouts), "refused_while_down": len(refused), **r.counts()}
    h.report("faults.timeout", {"seed": SEED, **counts})
    assert len(timeouts) >= 6 and all(e["elapsed"] < 2.5 for e in timeouts)


@pytest.mark.slow
def test_connections_cut_mid_body_converge(tmp_path: Path) -> None:
    """When a proxy cuts every connection after a random 2-200 kB (mid-request), the tasks
    complete and no instance is stored twice or partially."""
    r = run(tmp_path, [], proxy={"cut_rate": 1.0, "cut_after": (2000, 200000)})
    h.report("faults.cut_mid_body", {"seed": SEED, **r.counts()})
    assert r.extra["cuts"] > 0
    assert max(r.stored.values()) == 1
