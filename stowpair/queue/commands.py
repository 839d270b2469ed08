"""``stowpair export`` and ``stowpair tasks``: the export queue through the REST API.

Both talk to a running service over HTTP (blocking urllib is fine in a CLI) and use
the dcm4chee routes documented in ``docs/rest-api.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import IO, Any

DEFAULT_URL = "http://127.0.0.1:8080"
DONE = ("COMPLETED", "WARNING", "FAILED", "CANCELED")
Fetch = Callable[[str, str], tuple[int, bytes]]


class CliError(Exception):
    """A message for the user; the command exits 1."""


def http_fetch(method: str, url: str) -> tuple[int, bytes]:
    """One HTTP request; (status, body). Unreachable services raise CliError."""
    request = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
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
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        status, body = self.fetch(method, url)
        try:
            value = json.loads(body) if body else None
        except ValueError:
            value = None
        if status >= 400:
            message = value.get("errorMessage") if isinstance(value, dict) else None
            detail = message or repr(body[:200])
            raise CliError(f"{method} {url}: HTTP {status}: {detail}")
        return value

    def tasks(self, query: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.call("GET", "/monitor/export", query) or [])


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
    export.add_argument("--wait", action="store_true", help="follow the task until it is done")
    export.add_argument("--batch-id", help="batchID to group tasks")
    export.add_argument("--scheduled-time", help="yyyyMMddHHmmss, local time, 24-hour clock")
    _common(export)
    export.set_defaults(handler=lambda args: _run(run_export, args))

    tasks = subparsers.add_parser(
        "tasks", help="list export tasks", description="List export tasks (/monitor/export)."
    )
    tasks.add_argument("--status", help="e.g. SCHEDULED, 'IN PROCESS', FAILED")
    tasks.add_argument("--exporter", help="ExporterID (comma list allowed)")
    tasks.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    tasks.add_argument("--watch", action="store_true", help="refresh every second")
    _common(tasks)
    tasks.set_defaults(handler=lambda args: _run(run_tasks, args))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"REST base URL ({DEFAULT_URL})")
    parser.add_argument("--aet", default="STOWPAIR", help="archive AE title (STOWPAIR)")


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return command(args)
    except CliError as e:
        print(f"stowpair: {e}", file=sys.stderr)
        return 1


def run_export(
    args: argparse.Namespace,
    fetch: Fetch = http_fetch,
    sleep: Callable[[float], None] = time.sleep,
    out: IO[str] = sys.stdout,
) -> int:
    client = Client(args.url, fetch)
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
    return wait_for(client, int(answer["taskID"]), sleep, out)


def wait_for(client: Client, task_id: int, sleep: Callable[[float], None], out: IO[str]) -> int:
    """Print each status change until the task is done; 0 only when COMPLETED."""
    last = None
    while True:
        found = client.tasks({"taskID": str(task_id)})
        if not found:
            raise CliError(f"task {task_id} disappeared (deleted or purged)")
        task = found[0]
        if task["status"] != last:
            last = task["status"]
            message = task.get("errorMessage") or task.get("outcomeMessage") or ""
            print(f"task {task_id}: {last} {message}".rstrip(), file=out)
        if last in DONE:
            return 0 if last == "COMPLETED" else 1
        sleep(1.0)


def run_tasks(
    args: argparse.Namespace,
    fetch: Fetch = http_fetch,
    sleep: Callable[[float], None] = time.sleep,
    out: IO[str] = sys.stdout,
    rounds: int | None = None,
) -> int:
    client = Client(args.url, fetch)
    query = {"limit": str(args.limit)}
    if args.status:
        query["status"] = args.status
    if args.exporter:
        query["ExporterID"] = args.exporter
    tty = out.isatty()
    count = 0
    while True:
        table = format_table(client.tasks(query))
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


_COLUMNS = (
    ("ID", "taskID", 6), ("STATUS", "status", 19), ("EXPORTER", "ExporterID", 16),
    ("STUDY", "StudyInstanceUID", 28), ("FAIL", "failures", 4), ("UPDATED", "updatedTime", 19),
    ("MESSAGE", "message", 0),
)  # fmt: skip


def format_table(tasks: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table; the message column takes the rest of the line."""
    lines = ["  ".join(f"{title:<{width}}" if width else title for title, _, width in _COLUMNS)]
    for task in tasks:
        task = dict(task, message=task.get("errorMessage") or task.get("outcomeMessage") or "")
        task["updatedTime"] = str(task.get("updatedTime", ""))[:19].replace("T", " ")
        cells = []
        for _, key, width in _COLUMNS:
            text = str(task.get(key, "") if task.get(key) is not None else "")
            cells.append(f"{_clip(text, width):<{width}}" if width else _clip(text, 100))
        lines.append("  ".join(cells).rstrip())
    if not tasks:
        lines.append("(no tasks)")
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
