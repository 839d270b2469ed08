"""The queue commands (``stowpair export``, ``tasks``, ``task``, ``cancel``,
``reschedule``, ``delete``) against the real REST resources and task store, in memory,
at 100 columns."""

from __future__ import annotations

import io
import socket
from typing import Any

import pytest

from stowpair.cli import build_parser, main
from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.commands import (
    TIMED_OUT,
    CliError,
    run_export,
    run_manage,
    run_task,
    run_tasks,
)
from stowpair.queue.model import InstanceResult
from tests.queue.helpers import result_of
from tests.queue.rest_helpers import Api

CLI_BASE = "http://127.0.0.1:8080/dcm4chee-arc"
STUDY = "1.2.826.0.1.3680043.8.498.85373411578963604253219141068809661551"
CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(autouse=True)
def columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")


class Service:
    """The CLI's ``fetch`` answered by the in-memory REST API (real resources and store)."""

    def __init__(self) -> None:
        self.api = Api()
        self.requests: list[tuple[str, str]] = []

    def __call__(self, method: str, url: str) -> tuple[int, bytes]:
        assert url.startswith(CLI_BASE), url
        self.requests.append((method, url[len(CLI_BASE) :]))
        r = self.api.call(method, url[len(CLI_BASE) :])
        return r.code, r.body

    def task(self, study: str, status: TaskStatus, **changes: Any) -> int:
        task_id = int(self.api.export(f"studies/{study}").json()["taskID"])
        result_of(self.api.store.update(task_id, {"status": status, **changes}))
        return task_id

    def results(self, task_id: int, *statuses: InstanceStatus, attempt: int = 1) -> None:
        rows = [
            InstanceResult(task_id, attempt, f"{STUDY}.{n}", f"{STUDY}.0", CT, status,
                           "" if status is InstanceStatus.COMPLETED else "HTTP 503", None,
                           200 if status is InstanceStatus.COMPLETED else 503, 64552, 0.01)
            for n, status in enumerate(statuses, 1)
        ]  # fmt: skip
        result_of(self.api.store.finish(task_id, rows, {}, tuple(TaskStatus)))


def args(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


def run(command: Any, service: Service, *argv: str, **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = command(args(*argv), service, out=out, **kw)
    return code, out.getvalue()


def four_tasks(service: Service) -> int:
    """A running export (12 of 20 answered), a finished one, a failed one, a retry."""
    outcome = f"Export Study[uid={STUDY}] to stowrsd - completed:18, failed:2"
    service.task(STUDY[:-1] + "2", TaskStatus.COMPLETED, number_of_instances=20,
                 outcome_message=outcome.replace("18, failed:2", "20"))  # fmt: skip
    service.task(STUDY[:-1] + "3", TaskStatus.WARNING, outcome_message=outcome,
                 error_message="2 instances failed: connection refused")  # fmt: skip
    service.task(STUDY[:-1] + "4", TaskStatus.SCHEDULED_FOR_RETRY, failures=1,
                 error_message="Unknown WebApplication: stowrsd")  # fmt: skip
    running = service.task(STUDY, TaskStatus.IN_PROCESS, number_of_instances=20, failures=1,
                           outcome_message=outcome)  # fmt: skip
    service.results(running, *[InstanceStatus.COMPLETED] * 12, attempt=2)
    return running


# `stowpair tasks` at 100 columns, for the tasks of four_tasks().
TABLE = """\
ID  STATUS               EXPORTER      STUDY                  SENT  UPDATED      MESSAGE
 4  IN PROCESS           StowExporter  1.2.826.0…8809661551  12/20  10-08 10:00  attempt 2
 3  SCHEDULED FOR RETRY  StowExporter  1.2.826.0…8809661554         10-08 10:00  Unknown WebApplica…
 2  WARNING              StowExporter  1.2.826.0…8809661553         10-08 10:00  2 instances failed…
 1  COMPLETED            StowExporter  1.2.826.0…8809661552         10-08 10:00  completed:20
"""


def test_tasks_fits_100_columns_with_live_progress() -> None:
    """When an export runs, `stowpair tasks` shows sent/total from the stored results, the
    attempt instead of the previous outcome, short messages and middle-ellipsised UIDs,
    every line within 100 columns."""
    service = Service()
    four_tasks(service)
    code, out = run(run_tasks, service, "tasks")
    assert code == 0
    assert out == TABLE
    assert max(len(line) for line in out.splitlines()) <= 100


def test_tasks_of_a_cluster_name_their_node() -> None:
    """When the tasks listed were run by more than one node (a cluster), a NODE column
    shows which node holds or last ran each, every line still within 100 columns; --node
    asks the REST API for one node's tasks (dicomDeviceName)."""
    service = Service()
    four_tasks(service)
    result_of(service.api.store.update(4, {"device_name": "node-2"}))
    code, out = run(run_tasks, service, "tasks")
    lines = out.splitlines()
    assert code == 0 and max(len(line) for line in lines) <= 100
    assert lines[0].split()[:3] == ["ID", "STATUS", "NODE"]
    assert lines[1].split()[:4] == ["4", "IN", "PROCESS", "node-2"]
    assert lines[2].split()[4] == "stowpair"
    code, out = run(run_tasks, service, "tasks", "--node", "node-2")
    assert any("dicomDeviceName=node-2" in path for _, path in service.requests)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["4"]


def test_task_shows_the_per_instance_results() -> None:
    """When one task is asked for, its fields, progress and per-instance results show."""
    service = Service()
    running = four_tasks(service)
    service.results(running, InstanceStatus.COMPLETED, InstanceStatus.FAILED, attempt=1)
    code, out = run(run_task, service, "task", str(running), "--instances", "3")
    lines = out.splitlines()
    assert code == 0 and max(len(line) for line in lines) <= 100
    assert lines[0] == "Task 4: IN PROCESS (attempt 2)"
    assert "  node       stowpair" in lines
    assert "  instances  12/20 sent: 12 delivered, 0 failed" in lines
    assert lines[-5:] == [
        "ATTEMPT  SOP INSTANCE UID                STATUS     HTTP  REASON",
        "      2  1.2.826.0.1.36…068809661551.12  COMPLETED   200",
        "      1  1.2.826.0.1.36…1068809661551.1  COMPLETED   200",
        "      1  1.2.826.0.1.36…1068809661551.2  FAILED      503  HTTP 503",
        "(11 earlier results not shown; --instances 0)",
    ]


def test_task_unknown_is_an_error() -> None:
    """When the task does not exist, the command says so (exit 1 through main)."""
    with pytest.raises(CliError, match="HTTP 404: No such Task : 9"):
        run(run_task, Service(), "task", "9")


@pytest.mark.parametrize(
    ("argv", "line", "after"),
    [
        (["cancel", "1"], "task 1: cancelled", ["CANCELED", "SCHEDULED", "FAILED"]),
        (["delete", "3"], "task 3: deleted", ["SCHEDULED", "SCHEDULED"]),
        (["reschedule", "3", "--to", "Other"], "task 3: rescheduled",
         ["SCHEDULED", "SCHEDULED", "SCHEDULED"]),
        (["cancel", "--status", "SCHEDULED"], '2 tasks cancelled  {"count": 2}',
         ["CANCELED", "CANCELED", "FAILED"]),
        (["reschedule", "--status", "FAILED"], '1 task rescheduled  {"count": 1}',
         ["SCHEDULED", "SCHEDULED", "SCHEDULED"]),
        (["delete", "--exporter", "StowExporter"], '3 tasks deleted  {"count": 3}', []),
        (["delete", "--all"], '3 tasks deleted  {"count": 3}', []),
    ],
    ids=["cancel-one", "delete-one", "reschedule-one-to", "cancel-filter", "reschedule-filter",
         "delete-filter", "delete-all"],
)  # fmt: skip
def test_manage(argv: list[str], line: str, after: list[str]) -> None:
    """When one task or a filter is managed, it happens and dcm4chee's counts are printed."""
    service = Service()
    for n, status in enumerate((TaskStatus.SCHEDULED, TaskStatus.SCHEDULED, TaskStatus.FAILED)):
        service.task(f"1.{n}", status)
    service.api.clock.advance(1)
    code, out = run(run_manage, service, *argv)
    assert (code, out) == (0, line + "\n")
    statuses = [
        t["status"] for t in service.api.call("GET", "/monitor/export?orderby=createdTime").json()
    ]
    assert statuses == after


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["delete"], "delete: give a TASK_ID, a filter (--status, --exporter, --batch-id, --study,"
                     " --updated) or --all for every task"),
        (["cancel", "1", "--status", "FAILED"], "cancel: give a TASK_ID or filters, not both"),
        (["cancel", "--exporter", "StowExporter"], "HTTP 400: Missing query parameter: status"),
        (["reschedule", "1", "--to", "Nope"], "HTTP 400: No Exporter configured with ID:Nope"),
        (["cancel", "7"], "HTTP 404: No such Task : 7"),
    ],
    ids=["nothing-selected", "both", "dcm4chee-400", "unknown-exporter", "unknown-task"],
)  # fmt: skip
def test_manage_errors(argv: list[str], message: str) -> None:
    """When the selection is missing or refused, one clear error, nothing changed."""
    service = Service()
    service.task("1.1", TaskStatus.SCHEDULED)
    with pytest.raises(CliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(run_manage, service, *argv)
    assert service.api.call("GET", "/monitor/export").json()[0]["status"] == "SCHEDULED"


def test_manage_with_failures_exits_1() -> None:
    """When dcm4chee's answer counts failures (202), both counts are printed, exit 1."""
    answers = iter([(202, b'{"count": 1, "failed": 1}')])

    def fetch(method: str, url: str) -> tuple[int, bytes]:
        return next(answers)

    out = io.StringIO()
    code = run_manage(args("cancel", "--status", "IN PROCESS"), fetch, out=out)
    assert (code, out.getvalue()) == (
        1, '1 task cancelled, 1 failed (they changed meanwhile)  {"count": 1, "failed": 1}\n'
    )  # fmt: skip


def test_export_wait_shows_progress_until_completed() -> None:
    """When --wait follows an export, each change of status or progress is one line and
    the exit status is 0 once COMPLETED."""
    service = Service()
    steps = iter([
        lambda tid: service.api.store.update(tid, {"status": TaskStatus.IN_PROCESS,
                                                   "number_of_instances": 3}),
        lambda tid: service.results(tid, InstanceStatus.COMPLETED),
        lambda tid: None,
        lambda tid: service.results(tid, InstanceStatus.COMPLETED, InstanceStatus.COMPLETED),
        lambda tid: service.api.store.update(tid, {"status": TaskStatus.COMPLETED,
                                                   "outcome_message": "Export … - completed:3"}),
    ])  # fmt: skip
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        next(steps)(1)

    code, out = run(run_export, service, "export", "StowExporter", "1.2", "--wait", sleep=sleep)
    assert code == 0
    assert out.splitlines() == [
        "task 1: SCHEDULED (StowExporter)",
        "task 1: SCHEDULED",
        "task 1: IN PROCESS 0/3 sent",
        "task 1: IN PROCESS 1/3 sent",
        "task 1: IN PROCESS 2/3 sent",
        "task 1: COMPLETED Export … - completed:3",
    ]
    assert sleeps == [1.0] * 5


def test_export_wait_timeout() -> None:
    """When --timeout passes before the task ends, the command says so and exits 3; the
    export goes on."""
    service = Service()
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    code, out = run(run_export, service, "export", "StowExporter", "1.2", "--wait",
                    "--timeout", "2.5", sleep=sleep, clock=lambda: now[0])  # fmt: skip
    assert code == TIMED_OUT
    assert out.splitlines()[-1] == (
        "task 1: still SCHEDULED after 2.5 s; it goes on (stowpair task 1)"
    )
    assert now[0] == 3.0


def test_export_posts_the_dcm4chee_route() -> None:
    """When exporting a series, the CLI posts .../series/{uid}/export/{ExporterID}."""
    service = Service()
    code, out = run(run_export, service, "export", "StowExporter", "1.2", "1.2.3",
                    "--batch-id", "b")  # fmt: skip
    assert (code, out) == (0, "task 1: SCHEDULED (StowExporter)\n")
    assert service.requests == [
        ("POST", "/aets/STOWPAIR/rs/studies/1.2/series/1.2.3/export/StowExporter?batchID=b")
    ]


def test_export_error_carries_error_message() -> None:
    """When the service answers 404, the CLI error carries its errorMessage."""
    with pytest.raises(CliError, match="HTTP 404: No such Exporter: Nope"):
        run(run_export, Service(), "export", "Nope", "1.2")


def test_unreachable_service_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """When nothing listens at --url, the CLI says it cannot reach stowpair, without traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["tasks", "--url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"stowpair: cannot reach stowpair at http://127.0.0.1:{port}: connection refused;"
        " is `make run` running?\n"
    )


def test_tasks_watch_refreshes() -> None:
    """When --watch is given, the table is fetched again every second."""
    service = Service()
    sleeps: list[float] = []
    run_tasks(args("tasks", "--watch"), service, sleeps.append, io.StringIO(), rounds=3)
    assert len(service.requests) == 3 and sleeps == [1.0, 1.0]


def test_empty_table() -> None:
    """When there are no tasks, the table says so."""
    assert run(run_tasks, Service(), "tasks")[1].endswith("(no tasks)\n")
