"""Full disk: the receiver stores into an 8 MB tmpfs; a 12 MB study does not fit.

Instances that do not fit must fail with 0xA700 (Out of Resources) in the
FailedSOPSequence, no partial or corrupt file may appear in the layout, and once the
file system is made bigger the exporter's retries must deliver the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import harness as h

SEED = 99
OUT_OF_RESOURCES = 0xA700


def _mount(target: Path, size: str, remount: bool = False) -> subprocess.CompletedProcess[str]:
    opts = f"remount,size={size}" if remount else f"size={size}"
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.fixture
def small_fs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of ``request.param`` (default 8 MB) mounted for the test (needs root and
    mount permission)."""
    target = tmp_path / "dest"
    target.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a size-limited tmpfs needs root and mount(8); run as root to test a full disk")
    done = _mount(target, getattr(request, "param", "8m"))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); full disk not tested")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("small_fs", "count", "size_kb"),
    [("8m", 12, 1024), ("26m", 4, 10240)],
    ids=["12x1MB-into-8MB", "4x10MB-into-26MB"],
    indirect=["small_fs"],
)
def test_full_disk_fails_a700_then_recovers(
    tmp_path: Path, small_fs: Path, count: int, size_kb: int
) -> None:
    """When the receiver's disk is full, instances fail with 0xA700 and no partial file is
    left; after the file system grows, the retries deliver every instance. The 10 MB
    instances run out of space past their first 4 MB, where stowrsd writes direct."""
    dest = h.stowrsd(tmp_path, small_fs)
    dest.start()
    sp = h.stowpair(tmp_path, f"http://127.0.0.1:{dest.port}/stowrs")  # type: ignore[attr-defined]
    studies = h.load_archive(tmp_path, 1, count, size_kb=size_kb, seed=SEED)
    try:
        sp.start()
        h.export(sp.port, studies[0])  # type: ignore[attr-defined]
        log = tmp_path / "stowrsd.json"
        refused = lambda: list(h.events(log, "receiver.instance.failed"))  # noqa: E731
        h.wait_until(lambda: len(refused()) >= 2, 60, "instances refused for lack of space")
        full_layout = h.layout_files(small_fs)
        assert h.stray_files(small_fs) == [] and h.unparseable(small_fs) == []
        assert _mount(small_fs, "96m", remount=True).returncode == 0
        listing = h.wait_done(sp.port, 1, timeout=120)  # type: ignore[attr-defined]
    finally:
        sp.stop()
        dest.stop()
    reasons = Counter(e["reason"] for e in refused())
    results = h.instance_results(tmp_path)
    codes = Counter(h.result_codes(tmp_path))
    h.report(
        "disk_full",
        {
            "seed": SEED,
            "instances": count,
            "size_kb": size_kb,
            "stored_while_full": len(full_layout),
            "refused": dict((f"{k:04X}", v) for k, v in reasons.items()),
            "exporter_reason_codes": {f"{k:04X}": v for k, v in codes.items() if k},
            "sends": len(results),
            "statuses": dict(Counter(t["status"] for t in listing)),
        },
    )
    assert set(reasons) == {OUT_OF_RESOURCES}
    assert codes[OUT_OF_RESOURCES] == sum(reasons.values())  # read from FailedSOPSequence
    assert [t["status"] for t in listing] == ["COMPLETED"]
    assert h.compare(tmp_path / "archive", small_fs) == ([], [])
    assert h.stray_files(small_fs) == [] and h.unparseable(small_fs) == []
