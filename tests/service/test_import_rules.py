"""``stowpair import`` fires the export rules into the service's task store, whether the
service runs or not; the service exports what was imported."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue

from stowpair.archive.demo import generate_demo_study
from tests.service.test_end_to_end import start_receiver, start_stowpair, tasks, until


async def stowpair_import(tmp: Path, folder: Path) -> tuple[str, int]:
    """Run ``stowpair import`` as another process (as an operator would), without
    blocking the reactor that runs the service."""
    out, err, code = await getProcessOutputAndValue(
        sys.executable,
        ["-c", "import sys; from stowpair.cli import main; sys.exit(main())",
         "import", str(folder), "-c", str(tmp / "stowpair.toml")],
        env=None,
        path=str(tmp),
        reactor=reactor,
    )  # fmt: skip
    assert code == 0, err.decode()
    return out.decode(), code


async def _exported(service: Any, received: Path, count: int) -> dict[str, Any]:
    await until(lambda: len(list(received.rglob("*.dcm"))) == count)
    listing: list[dict[str, Any]] = []

    async def done() -> bool:
        listing[:] = await tasks(service)
        return bool(listing) and all(t["status"] == "COMPLETED" for t in listing)

    for _ in range(200):
        if await done():
            break
        await deferLater(reactor, 0.1, lambda: None)
    assert [t["status"] for t in listing] == ["COMPLETED"]
    return listing[0]


@pytest_twisted.ensureDeferred
async def test_import_into_a_running_service_is_exported(tmp_path: Path) -> None:
    """When files are imported while the service runs, the rule's task is queued in the
    service's task store and the service exports the study at its next poll."""
    received = tmp_path / "received"
    receiver, dest_port = await start_receiver(received)
    service = await start_stowpair(tmp_path, dest_port)
    try:
        generate_demo_study(tmp_path / "src", 4, size_kb=8, seed=11)
        out, _ = await stowpair_import(tmp_path, tmp_path / "src")
        assert "export task 1 to ToDest queued for Study" in out
        task = await _exported(service, received, 4)
        assert (task["NumberOfInstances"], task["Modality"]) == (4, ["CT"])
        assert task["outcomeMessage"].endswith("- completed:4")
    finally:
        await service.stopService()
        await receiver.stopService()


@pytest_twisted.ensureDeferred
async def test_import_while_stopped_is_exported_at_start(tmp_path: Path) -> None:
    """When files are imported while the service is stopped, the task waits in the store
    and the service exports the study once it starts; importing again queues nothing."""
    received = tmp_path / "received"
    receiver, dest_port = await start_receiver(received)
    service = await start_stowpair(tmp_path, dest_port)
    await service.stopService()  # wrote the configuration; now the service is down
    try:
        generate_demo_study(tmp_path / "src", 3, size_kb=8, seed=12)
        out, _ = await stowpair_import(tmp_path, tmp_path / "src")
        assert "export task 1 to ToDest queued" in out
        again, _ = await stowpair_import(tmp_path, tmp_path / "src")
        assert "export task" not in again
        service = await start_stowpair(tmp_path, dest_port)
        task = await _exported(service, received, 3)
        assert task["taskID"] == 1 and task["NumberOfInstances"] == 3
    finally:
        await service.stopService()
        await receiver.stopService()
