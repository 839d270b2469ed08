"""DICOM C-STORE SCP under stress: a full disk, and SIGKILL in the middle of associations.

``twistd -n stowpair`` runs with its SCP on a free port; dcmtk ``storescu -v`` sends, and
its log tells which instances were acknowledged (``Received Store Response (Success)``
after ``Sending file: PATH``). Every acknowledged instance must be in the archive, whole
and indexed; nothing partial may be left.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from stowpair.archive.demo import generate_demo_study
from tests.dimse.helpers import dataset_bytes
from tests.reliability import harness as h
from tests.reliability.test_full_disk import _mount, small_fs  # noqa: F401  (fixture)
from tests.support.peers import free_port

SEED = 1616
CONFIG = """
base_dir = "."
[device]
name = "rel-dimse"
ae_titles = ["STOWPAIR"]
[rest]
port = {rest_port}
[emulator]
enabled = false
[archive]
storage = "{storage}"
database = "stowpair.sqlite"
[logging]
json_file = "stowpair.json"
[dimse]
listen = "127.0.0.1:{dimse_port}"
ae_title = "STOWPAIR"
"""
_SENDING = re.compile(r"I: Sending file: (.+)$")


def stowpair_scp(workdir: Path, storage: Path) -> h.Proc:
    rest_port, dimse_port = free_port(), free_port()
    conf = workdir / "stowpair.toml"
    conf.write_text(CONFIG.format(rest_port=rest_port, dimse_port=dimse_port, storage=storage))
    argv = [str(h.BIN / "twistd"), "-n", "--pidfile=", "stowpair", "-c", str(conf)]
    proc = h.Proc("stowpair", argv, workdir, f"http://127.0.0.1:{rest_port}/health")
    proc.dimse_port = dimse_port  # type: ignore[attr-defined]
    return proc


def storescu_argv(port: int, files: list[Path]) -> list[str]:
    binary = shutil.which("storescu")
    if binary is None:
        message = "storescu is not installed (apt-get install -y dcmtk)"
        if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
            pytest.fail(f"{message}, and STOWPAIR_REQUIRE_PEERS=1")
        pytest.skip(message)
    # -nh: go on after a refused instance (dcmtk halts by default)
    return [binary, "-v", "-nh", "-aet", "MODALITY", "-aec", "STOWPAIR", "127.0.0.1", str(port),
            *map(str, files)]  # fmt: skip


def acknowledged(log: str) -> tuple[list[str], Counter[str]]:
    """Files storescu got a Success for, and the count of each response status seen."""
    done: list[str] = []
    statuses: Counter[str] = Counter()
    current = None
    for line in log.splitlines():
        match = _SENDING.search(line)
        if match:
            current = match.group(1)
        elif "Received Store Response" in line:
            status = line.split("Received Store Response", 1)[1].strip(" ()")
            statuses[status] += 1
            if status == "Success" and current is not None:
                done.append(current)
            current = None
    return done, statuses


def indexed(workdir: Path) -> set[str]:
    db = sqlite3.connect(f"file:{workdir / 'stowpair.sqlite'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT sop_instance_uid FROM instance")}
    finally:
        db.close()


@pytest.mark.interop
@pytest.mark.slow
def test_full_disk_refuses_with_a700(tmp_path: Path, small_fs: Path) -> None:  # noqa: F811
    """When the archive's disk fills up during a C-STORE association, the instances that
    do not fit are refused with 0xA700, those acknowledged are whole in the archive, and
    no partial or temp file is left."""
    files = generate_demo_study(tmp_path / "src", 12, 1024, SEED)
    sp = stowpair_scp(tmp_path, small_fs)
    sp.start()
    try:
        done = subprocess.run(
            storescu_argv(sp.dimse_port, files),  # type: ignore[attr-defined]
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        sp.stop()
    acked, statuses = acknowledged(done.stdout + done.stderr)
    layout = h.layout_files(small_fs)
    h.report(
        "dimse.disk_full",
        {"instances": len(files), "acknowledged": len(acked), "statuses": dict(statuses),
         "stored": len(layout)},
    )  # fmt: skip
    assert acked and len(acked) < len(files)
    assert set(statuses) <= {"Success", "Refused: OutOfResources"}, statuses
    assert statuses["Refused: OutOfResources"] == len(files) - len(acked)
    assert len(layout) == len(acked)
    assert h.stray_files(small_fs) == [] and h.unparseable(small_fs) == []
    assert list((small_fs / ".incoming").glob("*")) == []


@pytest.mark.interop
@pytest.mark.slow
def test_kill9_mid_association_loses_no_acknowledged_instance(tmp_path: Path) -> None:
    """When stowpair is SIGKILLed while storescu is sending (5 times, at seeded random
    moments), every instance storescu saw acknowledged is in the archive afterwards, whole,
    byte for byte, and indexed."""
    rng = random.Random(SEED)
    files = generate_demo_study(tmp_path / "src", 400, 32, SEED)
    by_path = {str(p): p for p in files}
    sp = stowpair_scp(tmp_path, tmp_path / "archive")
    all_acked: set[str] = set()
    kills = []
    interrupted = 0  # rounds where the kill came before storescu had sent everything
    try:
        for round_ in range(5):
            sp.start()
            log_path = tmp_path / f"storescu-{round_}.log"
            part = files[round_ * 80 : (round_ + 1) * 80]  # new instances each round
            with log_path.open("w") as log:
                scu = subprocess.Popen(
                    storescu_argv(sp.dimse_port, part),  # type: ignore[attr-defined]
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            wait = rng.uniform(0.3, 1.2)
            h.time.sleep(wait)  # a random moment of the association
            sp.kill9()
            kills.append(round(wait, 2))
            scu.wait(60)
            acked, _ = acknowledged(log_path.read_text())
            all_acked.update(acked)
            interrupted += len(acked) < len(part)
        sp.start()  # restart: start-up cleans temp files; the index is as it was
    finally:
        sp.stop()
    archive = tmp_path / "archive"
    stored = {p.stem: p for p in archive.glob("*/*/*.dcm")}
    sops = {str(p): p.stem for p in files}
    missing = [path for path in all_acked if sops[path] not in stored]
    differ = [
        path
        for path in all_acked
        if sops[path] in stored
        and dataset_bytes(stored[sops[path]]) != dataset_bytes(by_path[path])
    ]
    not_indexed = {sops[path] for path in all_acked} - indexed(tmp_path)
    h.report(
        "dimse.kill9",
        {"seed": SEED, "kills": len(kills), "kill_wait_s": kills, "interrupted": interrupted,
         "acknowledged": len(all_acked),
         "stored": len(stored), "missing": len(missing), "corrupt": len(differ),
         "not_indexed": len(not_indexed)},
    )  # fmt: skip
    assert len(all_acked) > 0 and interrupted == len(kills)
    assert missing == [] and differ == [] and not_indexed == set()
    assert h.stray_files(archive) == [] and h.unparseable(archive) == []
