"""``stowpair export``, ``tasks``, ``task``, ``cancel``, ``reschedule``, ``delete``: the
export queue through the REST API.

They talk to a running service over HTTP (blocking urllib is fine in a CLI) and use the
routes documented in ``docs/rest-api.md``; what they print fits the terminal
(:mod:`stowpair.queue.cli_format`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import IO, Any

from stowpair.queue.cli_auth import (
    UNAUTHORIZED_HINT,
    CredentialsError,
    add_auth_options,
    authorization,
)
from stowpair.queue.cli_format import format_table, format_task, progress_text

DEFAULT_URL = "http://127.0.0.1:8080"
DONE = ("COMPLETED", "WARNING", "FAILED", "CANCELED")
Fetch = Callable[[str, str], tuple[int, bytes]]


class CliError(Exception):
    """A message for the user; the command exits 1."""


def http_fetch(method: str, url: str, authorization: str | None = None) -> tuple[int, bytes]:
    """One HTTP request; (status, body). Unreachable services raise CliError."""
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or str(e.reason)
        base = urllib.parse.urlsplit(url)
        raise CliError(
            f"cannot reach stowpair at {base.scheme}://{base.netloc}: {reason.lower()};"
            " is `make run` running?"
        ) from None
    except OSError as e:
        raise CliError(f"cannot reach stowpair at {url}: {e}; is `make run` running?") from None


class Client:
    """The few REST calls the commands need."""

    def __init__(self, url: str, fetch: Fetch = http_fetch) -> None:
        self.base = url.rstrip("/") + "/dcm4chee-arc"
        self.fetch = fetch

    def call(self, method: str, path: str, query: dict[str, str] | None = None) -> Any:
        """The JSON answer; CliError naming the request for any error status."""
        status, value, url = self.answer(method, path, query)
        if status >= 400:
            message = value.get("errorMessage") if isinstance(value, dict) else None
            hint = f"; {UNAUTHORIZED_HINT}" if status == 401 else ""
            raise CliError(f"{method} {url}: HTTP {status}: {message or repr(value)}{hint}")
        return value

    def answer(
        self, method: str, path: str, query: dict[str, str] | None = None
    ) -> tuple[int, Any, str]:
        """(status, JSON answer or the body's start, URL), whatever the status."""
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        status, body = self.fetch(method, url)
        try:
            value = json.loads(body) if body else None
        except ValueError:
            value = body[:200]
        return status, value, url

    def tasks(self, query: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.call("GET", "/monitor/export", query) or [])

    def task(self, task_id: int) -> dict[str, Any]:
        """One task with ``progress`` and ``instances`` (``GET /monitor/export/{id}``)."""
        return dict(self.call("GET", f"/monitor/export/{task_id}"))


def register(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="export a study, series or instance through the running service",
        description="Queue an export (dcm4chee's POST .../export/{ExporterID}); an ExporterID"
        " stowrs:{WebApp} exports synchronously.",
    )
    export.add_argument("exporter_id", metavar="EXPORTER_ID")
    export.add_argument("study", metavar="STUDY_UID")
    export.add_argument("series", metavar="SERIES_UID", nargs="?")
    export.add_argument("sop", metavar="SOP_UID", nargs="?")
    export.add_argument(
        "--wait", action="store_true", help="follow the task's states and progress until done"
    )
    export.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="with --wait: give up after this long"
    )
    export.add_argument("--batch-id", help="batchID to group tasks")
    export.add_argument("--scheduled-time", help="yyyyMMddHHmmss, local time, 24-hour clock")
    _common(export)
    export.set_defaults(handler=lambda args: _run(run_export, args))

    tasks = subparsers.add_parser(
        "tasks",
        help="list export tasks",
        description="List export tasks (/monitor/export), newest change first; IN PROCESS"
        " tasks show instances sent so far / total.",
    )
    _filters(tasks)
    tasks.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    tasks.add_argument("--watch", action="store_true", help="refresh every second")
    _common(tasks)
    tasks.set_defaults(handler=lambda args: _run(run_tasks, args))

    task = subparsers.add_parser("task", help="show one export task and its per-instance results")
    task.add_argument("task_id", type=int, metavar="TASK_ID")
    task.add_argument(
        "--instances", type=int, default=50, metavar="N", help="latest N results (0: all)"
    )
    _common(task)
    task.set_defaults(handler=lambda args: _run(run_task, args))

    for name, what in (
        ("cancel", "cancel export tasks (their running exports stop)"),
        ("reschedule", "export again: reset tasks to SCHEDULED (running ones restart)"),
        ("delete", "delete export tasks (running ones are cancelled first)"),
    ):
        manage = subparsers.add_parser(
            name,
            help=f"{what}: one by ID, or by filter",
            description=f"{what[0].upper()}{what[1:]}. Give a TASK_ID, or filters; by filter"
            " the counts of dcm4chee's answer are printed.",
        )
        manage.add_argument("task_id", type=int, metavar="TASK_ID", nargs="?")
        _filters(manage)
        if name == "reschedule":
            manage.add_argument("--to", metavar="EXPORTER_ID", help="a new exporter")
            manage.add_argument("--scheduled-time", help="yyyyMMddHHmmss (default: now)")
        if name != "cancel":
            manage.add_argument(
                "--all", action="store_true", help="no TASK_ID and no filter: every task"
            )
        _common(manage)
        manage.set_defaults(handler=lambda args: _run(run_manage, args), action=name)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", help="e.g. SCHEDULED, 'IN PROCESS', FAILED")
    parser.add_argument("--exporter", help="ExporterID (comma list allowed)")
    parser.add_argument("--batch-id", dest="batch", help="batchID")
    parser.add_argument("--study", help="StudyInstanceUID")
    parser.add_argument(
        "--node", help="dicomDeviceName: the cluster node that holds or last ran the task"
    )
    parser.add_argument(
        "--updated", help="updatedTime as a DICOM DT range, e.g. 20251201- or -20251201"
    )


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _query(args: argparse.Namespace) -> dict[str, str]:
    """The REST filters of ``--status`` ... ``--updated``."""
    pairs = (
        ("status", args.status),
        ("ExporterID", args.exporter),
        ("batchID", args.batch),
        ("StudyInstanceUID", args.study),
        ("dicomDeviceName", args.node),
        ("updatedTime", args.updated),
    )
    return {name: value for name, value in pairs if value}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"REST base URL ({DEFAULT_URL})")
    parser.add_argument("--aet", default="STOWPAIR", help="archive AE title (STOWPAIR)")
    add_auth_options(parser)


def _client(args: argparse.Namespace, fetch: Fetch | None) -> Client:
    """The REST client: ``fetch`` in tests, else HTTP with the credentials asked for."""
    if fetch is None:
        try:
            header = authorization(args, os.environ)
        except CredentialsError as e:
            raise CliError(str(e)) from None
        return Client(args.url, lambda method, url: http_fetch(method, url, header))
    return Client(args.url, fetch)


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return command(args)
    except CliError as e:
        print(f"stowpair: {e}", file=sys.stderr)
        return 1


# -- export ---------------------------------------------------------------------------


def run_export(
    args: argparse.Namespace,
    fetch: Fetch | None = None,
    sleep: Callable[[float], None] = time.sleep,
    out: IO[str] = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    client = _client(args, fetch)
    path = f"/aets/{args.aet}/rs/studies/{args.study}"
    if args.series:
        path += f"/series/{args.series}"
        if args.sop:
            path += f"/instances/{args.sop}"
    query = {k: v for k, v in (("batchID", args.batch_id),
                               ("scheduledTime", args.scheduled_time)) if v}  # fmt: skip
    answer = client.call("POST", f"{path}/export/{args.exporter_id}", query)
    if "taskID" not in answer:  # synchronous stowrs: export
        print(json.dumps(answer), file=out)
        return 0 if not answer.get("failed") and not answer.get("error") else 1
    print(f"task {answer['taskID']}: {answer['status']} ({answer['ExporterID']})", file=out)
    if not args.wait:
        return 0
    return wait_for(client, int(answer["taskID"]), sleep, out, args.timeout, clock)


#: Exit status of ``export --wait`` when ``--timeout`` passed first.
TIMED_OUT = 3


def wait_for(
    client: Client,
    task_id: int,
    sleep: Callable[[float], None],
    out: IO[str],
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Print each change of status or progress until the task is done: 0 when it ends
    COMPLETED, 1 for another end, 3 when ``timeout`` seconds passed first."""
    start = clock()
    last: tuple[str, str] | None = None
    while True:
        try:
            task = client.task(task_id)
        except CliError as e:
            if "HTTP 404" in str(e):
                raise CliError(f"task {task_id} disappeared (deleted or purged)") from None
            raise
        status = str(task["status"])
        progress = progress_text(task.get("progress")) if status == "IN PROCESS" else ""
        if (status, progress) != last:
            last = (status, progress)
            message = task.get("errorMessage") or task.get("outcomeMessage") or ""
            said = f"{progress} sent" if progress else message if status in DONE else ""
            print(f"task {task_id}: {status} {said}".rstrip(), file=out, flush=True)
        if status in DONE:
            return 0 if status == "COMPLETED" else 1
        if timeout is not None and clock() - start >= timeout:
            print(
                f"task {task_id}: still {status} after {timeout:g} s; it goes on"
                f" (stowpair task {task_id})",
                file=out,
            )
            return TIMED_OUT
        sleep(1.0)


# -- tasks, task ------------------------------------------------------------------------


def run_tasks(
    args: argparse.Namespace,
    fetch: Fetch | None = None,
    sleep: Callable[[float], None] = time.sleep,
    out: IO[str] = sys.stdout,
    rounds: int | None = None,
) -> int:
    client = _client(args, fetch)
    query = {"limit": str(args.limit), **_query(args)}
    tty = out.isatty()
    count = 0
    while True:
        tasks = client.tasks(query)
        running = [int(t["taskID"]) for t in tasks if t.get("status") == "IN PROCESS"]
        progress = {i: client.task(i).get("progress") or {} for i in running}
        table = format_table(tasks, progress)
        if args.watch and tty:
            out.write("\x1b[H\x1b[2J")  # home + clear: a live table
        elif args.watch and count:
            out.write("\n")
        out.write(table)
        out.flush()
        count += 1
        if not args.watch or (rounds is not None and count >= rounds):
            return 0
        sleep(1.0)


def run_task(
    args: argparse.Namespace, fetch: Fetch | None = None, out: IO[str] = sys.stdout
) -> int:
    client = _client(args, fetch)
    out.write(format_task(client.task(args.task_id), limit=args.instances))
    return 0


# -- cancel, reschedule, delete ----------------------------------------------------------

_DONE_WORD = {"cancel": "cancelled", "reschedule": "rescheduled", "delete": "deleted"}


def run_manage(
    args: argparse.Namespace, fetch: Fetch | None = None, out: IO[str] = sys.stdout
) -> int:
    """One task (dcm4chee answers 204) or every task the filters select (it answers
    ``{"count"}``, ``{"count","failed"}`` or ``{"failed"}``)."""
    client = _client(args, fetch)
    action = args.action
    query = _query(args)
    extra = {}
    if action == "reschedule" and args.scheduled_time:
        extra["scheduledTime"] = args.scheduled_time
    if args.task_id is not None and query:
        raise CliError(f"{action}: give a TASK_ID or filters, not both")
    if args.task_id is None and not query and not getattr(args, "all", False):
        raise CliError(
            f"{action}: give a TASK_ID, a filter (--status, --exporter, --batch-id, --study,"
            " --updated)" + (" or --all for every task" if action != "cancel" else "")
        )
    method = "DELETE" if action == "delete" else "POST"
    to = f"/{args.to}" if action == "reschedule" and args.to else ""
    if args.task_id is not None:
        verb = "" if action == "delete" else f"/{action}"
        client.call(method, f"/monitor/export/{args.task_id}{verb}{to}", extra or None)
        print(f"task {args.task_id}: {_DONE_WORD[action]}", file=out)
        return 0
    path = "/monitor/export" + ("" if action == "delete" else f"/{action}") + to
    status, value, url = client.answer(method, path, {**query, **extra})
    if status not in (200, 202, 409) or not isinstance(value, dict) or "errorMessage" in value:
        message = value.get("errorMessage") if isinstance(value, dict) else None
        raise CliError(f"{method} {url}: HTTP {status}: {message or repr(value)}")
    count, failed = int(value.get("count", 0)), int(value.get("failed", 0))
    said = f"{count} task{'s' if count != 1 else ''} {_DONE_WORD[action]}"
    if failed:
        said += f", {failed} failed (they changed meanwhile)"
    print(f"{said}  {json.dumps(value)}", file=out)
    return 0 if failed == 0 else 1
