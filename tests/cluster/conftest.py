"""Whatever happens in a test, the processes it started are stopped (and resumed first,
if a test paused them)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from tests.reliability import harness


@pytest.fixture(autouse=True)
def stop_processes() -> Iterator[None]:
    yield
    while harness.CREATED:
        proc = harness.CREATED.pop()
        if proc.process is not None and proc.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.process.pid, signal.SIGCONT)
        proc.stop()
