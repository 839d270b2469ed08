"""SQLite task store: persistence across restarts, its worker thread, debounce."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.model import InstanceResult, TaskFilter
from stowpair.queue.store import Entity, SQLiteTaskStore
from tests.queue.helpers import clock_at, get_task, memory_store, new_task, result_of


@pytest_twisted.inlineCallbacks
def test_nothing_lost_across_close_and_reopen(tmp_path: Path) -> Any:
    """When the store is closed and reopened, tasks and per-instance results are all there."""
    path = tmp_path / "tasks.sqlite"
    store = SQLiteTaskStore.on_thread(path, reactor)
    tasks = []
    for n in range(3):
        tasks.append((yield store.create(new_task(1000.0, study=f"1.{n}"))))
    result = InstanceResult(tasks[0].task_id, 1, "9.1", "9", "1.2.840", InstanceStatus.COMPLETED)
    yield store.finish(
        tasks[0].task_id, [result], {"status": TaskStatus.WARNING}, (TaskStatus.SCHEDULED,)
    )
    yield store.close()

    reopened = SQLiteTaskStore.on_thread(path, reactor)
    found = yield reopened.find(TaskFilter(order_by="createdTime", descending=False))
    delivered = yield reopened.delivered(tasks[0].task_id)
    yield reopened.close()
    assert [t.study_uid for t in found] == ["1.0", "1.1", "1.2"]
    assert found[0].status == TaskStatus.WARNING
    assert delivered == frozenset({"9.1"})


@pytest_twisted.inlineCallbacks
def test_sqlite_runs_on_its_own_thread_in_wal_mode(tmp_path: Path) -> Any:
    """When the store works, SQLite runs on its worker thread, never the reactor's, in WAL."""
    store = SQLiteTaskStore.on_thread(tmp_path / "t.sqlite", reactor)
    name = yield store._run(lambda: threading.current_thread().name)
    mode = yield store._call(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
    yield store.close()
    assert "stowpair-tasks" in name and name != threading.current_thread().name
    assert mode == "wal"


def test_task_ids_are_never_reused() -> None:
    """When a task is deleted, the next task gets a new id (CLI --wait relies on it)."""
    store = memory_store(clock_at())
    first = result_of(store.create(new_task(0.0))).task_id
    result_of(store.delete(first))
    assert result_of(store.create(new_task(0.0))).task_id == first + 1


@pytest.mark.parametrize(
    ("entity", "first", "second", "expected_series", "expected_sop"),
    [
        ("Study", ("*", "*"), ("*", "*"), "*", "*"),
        ("Series", ("1.1", "*"), ("1.1", "*"), "1.1", "*"),
        ("Instance", ("1.1", "1.1.1"), ("1.1", "1.1.2"), "1.1", "*"),
        ("Instance", ("1.1", "1.1.1"), ("1.2", "1.2.1"), "*", "*"),
    ],
    ids=["study", "same-series", "instance-widens-sop", "instance-widens-series"],
)
def test_debounce_postpones_and_widens(
    entity: Entity,
    first: tuple[str, str],
    second: tuple[str, str],
    expected_series: str,
    expected_sop: str,
) -> None:
    """When a second instance arrives for a SCHEDULED task, it is pushed later and widened."""
    store = memory_store(clock_at())
    task, created = result_of(
        store.create_or_postpone(new_task(100.0, series_uid=first[0], sop_uid=first[1]), entity)
    )
    again, created_again = result_of(
        store.create_or_postpone(new_task(160.0, series_uid=second[0], sop_uid=second[1]), entity)
    )
    assert (created, created_again, again.task_id) == (True, False, task.task_id)
    assert (again.series_uid, again.sop_uid, again.scheduled_time) == (
        expected_series,
        expected_sop,
        160.0,
    )


def test_debounce_never_moves_earlier() -> None:
    """When the new scheduled time is earlier, the pending task keeps its later time."""
    store = memory_store(clock_at())
    result_of(store.create_or_postpone(new_task(500.0), "Study"))
    task, _ = result_of(store.create_or_postpone(new_task(100.0), "Study"))
    assert task.scheduled_time == 500.0


def test_debounce_other_series_is_a_new_series_task() -> None:
    """When a Series rule sees another series, that series gets its own task."""
    store = memory_store(clock_at())
    a, _ = result_of(store.create_or_postpone(new_task(0.0, series_uid="1.1"), "Series"))
    b, created = result_of(store.create_or_postpone(new_task(0.0, series_uid="1.2"), "Series"))
    assert created and a.task_id != b.task_id


def test_debounce_ignores_running_tasks() -> None:
    """When the task for the study is already IN PROCESS, a new task is created."""
    store = memory_store(clock_at())
    task, _ = result_of(store.create_or_postpone(new_task(0.0), "Study"))
    result_of(store.update(task.task_id, {"status": TaskStatus.IN_PROCESS}))
    again, created = result_of(store.create_or_postpone(new_task(0.0), "Study"))
    assert created and again.task_id != task.task_id
    assert get_task(store, task.task_id).status == TaskStatus.IN_PROCESS


def test_update_rejects_unknown_fields() -> None:
    """When a caller tries to change a field that is not updatable, it is refused."""
    store = memory_store(clock_at())
    with pytest.raises(ValueError, match="created_time"):
        store.update(1, {"created_time": 0.0})
