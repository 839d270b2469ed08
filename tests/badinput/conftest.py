"""Bad-input suite fixtures: a log watcher for tracebacks, and the request count."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from tests.badinput.rawhttp import FIGURES, SENT, STATUSES


class LogWatcher:
    """Collects logged failures (tracebacks) and error-level events while tests run."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if "log_failure" in event:
            self.failures.append(event)

    def take(self) -> list[str]:
        """Describe and forget the failures seen so far."""
        out = [
            f"{e.get('event', e.get('log_format', '?'))}: {e['log_failure'].getErrorMessage()}"
            for e in self.failures
        ]
        self.failures.clear()
        return out


@pytest.fixture(scope="session")
def log_watcher() -> Iterator[LogWatcher]:
    watcher = LogWatcher()
    globalLogPublisher.addObserver(watcher)
    yield watcher
    globalLogPublisher.removeObserver(watcher)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SENT and not STATUSES:
        return
    total = sum(SENT.values())
    detail = ", ".join(f"{name} {count}" for name, count in sorted(SENT.items()))
    terminalreporter.write_line(f"bad-input suite: {total} raw requests sent ({detail})")
    for name in sorted({t for t, _ in STATUSES}):
        codes = sorted((code, n) for (target, code), n in STATUSES.items() if target == name)
        shown = ", ".join(f"{code or 'no answer'}: {n}" for code, n in codes)
        terminalreporter.write_line(f"  {name} answers: {shown}")
    by_status: Counter[int] = Counter()
    for (_, code), n in STATUSES.items():
        by_status[code] += n
    shown = ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(by_status.items()))
    fives = sum(n for code, n in by_status.items() if code >= 500)
    terminalreporter.write_line(f"  all answers: {shown} (5xx: {fives})")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"  {name}: {json.dumps(figures)}")
    record = os.environ.get("STOWPAIR_BADINPUT_RECORD")
    if record:
        statuses = {f"{t} {c}": n for (t, c), n in sorted(STATUSES.items())}
        summary = {
            "total": total,
            "sent": SENT,
            "statuses": statuses,
            "by_status": {str(c): n for c, n in sorted(by_status.items())},
            "figures": FIGURES,
        }
        Path(record).write_text(json.dumps(summary, indent=1) + "\n")
