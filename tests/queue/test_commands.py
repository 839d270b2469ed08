"""``stowpair export`` and ``stowpair tasks`` against a fake REST service."""

from __future__ import annotations

import io
import json
import socket
from typing import Any

import pytest

from stowpair.cli import build_parser, main
from stowpair.queue.commands import CliError, format_table, run_export, run_tasks


class FakeService:
    """Answers the CLI's requests from a script of (status, body) per call."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str]] = []

    def __call__(self, method: str, url: str) -> tuple[int, bytes]:
        self.requests.append((method, url))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return status, json.dumps(body).encode()


def args(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


TASK = {"taskID": 7, "status": "SCHEDULED", "ExporterID": "StowExporter"}


def test_export_posts_the_dcm4chee_route() -> None:
    """When exporting a series, the CLI posts .../series/{uid}/export/{ExporterID}."""
    service = FakeService((202, TASK))
    out = io.StringIO()
    code = run_export(args("export", "StowExporter", "1.2", "1.2.3", "--batch-id", "b"),
                      service, out=out)  # fmt: skip
    assert code == 0
    assert service.requests == [(
        "POST",
        "http://127.0.0.1:8080/dcm4chee-arc/aets/STOWPAIR/rs/studies/1.2/series/1.2.3"
        "/export/StowExporter?batchID=b",
    )]  # fmt: skip
    assert out.getvalue() == "task 7: SCHEDULED (StowExporter)\n"


@pytest.mark.parametrize(("final", "code"), [("COMPLETED", 0), ("WARNING", 1)])
def test_export_wait_follows_the_task(final: str, code: int) -> None:
    """When --wait is given, each status change is printed and the exit code reflects the end."""
    running = dict(TASK, status="IN PROCESS")
    done = dict(TASK, status=final, outcomeMessage="Export Study[uid=1.2] to stowrsd")
    service = FakeService((202, TASK), (200, [running]), (200, [running]), (200, [done]))
    out = io.StringIO()
    sleeps: list[float] = []
    assert run_export(args("export", "StowExporter", "1.2", "--wait"), service,
                      sleeps.append, out) == code  # fmt: skip
    assert out.getvalue().splitlines() == [
        "task 7: SCHEDULED (StowExporter)",
        "task 7: IN PROCESS",
        f"task 7: {final} Export Study[uid=1.2] to stowrsd",
    ]
    assert sleeps == [1.0, 1.0]


def test_export_error_carries_error_message() -> None:
    """When the service answers 404, the CLI error carries its errorMessage."""
    service = FakeService((404, {"errorMessage": "No such Exporter: Nope"}))
    with pytest.raises(CliError, match="HTTP 404: No such Exporter: Nope"):
        run_export(args("export", "Nope", "1.2"), service)


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


def test_tasks_table_and_filters() -> None:
    """When listing tasks with --status, the filter is sent and a table printed."""
    service = FakeService((200, [dict(TASK, failures=2, errorMessage="down")]))
    out = io.StringIO()
    assert run_tasks(args("tasks", "--status", "FAILED"), service, out=out) == 0
    assert "status=FAILED" in service.requests[0][1]
    header, row = out.getvalue().splitlines()
    assert header.startswith("ID      STATUS") and row.startswith("7       SCHEDULED")
    assert row.endswith("down")


def test_tasks_watch_refreshes() -> None:
    """When --watch is given, the table is fetched again every second."""
    service = FakeService((200, []))
    sleeps: list[float] = []
    run_tasks(args("tasks", "--watch"), service, sleeps.append, io.StringIO(), rounds=3)
    assert len(service.requests) == 3 and sleeps == [1.0, 1.0]


def test_empty_table() -> None:
    """When there are no tasks, the table says so."""
    assert format_table([]).endswith("(no tasks)\n")
