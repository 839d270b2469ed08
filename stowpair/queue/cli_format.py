"""Text for the queue commands: the task table, one task's page, progress lines.

Everything fits the terminal's width (``COLUMNS``; 100 when unknown): UIDs are shortened
in the middle (their root and their tail are what tell them apart), and one message
column takes what is left.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

ELLIPSIS = "…"
#: dcm4chee's outcome message starts with the entity and the web app, which the table
#: shows in their own columns: ``Export Study[uid=…] to stowrsd - completed:20``.
_OUTCOME_PREFIX = re.compile(r"^Export .*? to \S+ (?:- )?")
#: Widest a column may grow (the message column takes the rest). NODE shows only when the
#: tasks listed were run by more than one node (a cluster).
_MAX = {"ID": 7, "STATUS": 19, "NODE": 12, "EXPORTER": 14, "STUDY": 20, "SENT": 11, "UPDATED": 11}
_MIN_MESSAGE = 12


def width() -> int:
    """The terminal's columns (``COLUMNS`` wins), 100 when not a terminal."""
    return shutil.get_terminal_size((100, 24)).columns


def middle(text: str, size: int) -> str:
    """``text`` in at most ``size`` characters, shortened in the middle."""
    if len(text) <= size:
        return text
    if size <= 1:
        return ELLIPSIS[:size]
    head = (size - 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (size - 1 - head) :]


def clip(text: str, size: int) -> str:
    """``text`` in at most ``size`` characters, shortened at the end."""
    text = " ".join(text.split())  # one line
    return text if len(text) <= size else text[: max(0, size - 1)] + ELLIPSIS[: size > 0]


def short_message(task: Mapping[str, Any]) -> str:
    """What to say about a task in one short column.

    A running task says which attempt this is (its last outcome is the previous
    attempt's); otherwise the error, or the outcome without its entity/web-app prefix.
    """
    if task.get("status") == "IN PROCESS":
        failures = int(task.get("failures") or 0)
        return f"attempt {failures + 1}" if failures else ""
    error = task.get("errorMessage")
    if error:
        return str(error)
    return _OUTCOME_PREFIX.sub("", str(task.get("outcomeMessage") or ""))


def progress_text(progress: Mapping[str, Any] | None) -> str:
    """``sent/total`` (``sent/?`` before the total is known)."""
    if not progress:
        return ""
    total = progress.get("total")
    return f"{progress.get('sent', 0)}/{'?' if total is None else total}"


def when(text: str | None, now: datetime) -> str:
    """``HH:MM:SS`` for today (local time), else ``MM-DD HH:MM``."""
    if not text:
        return ""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone()
    except ValueError:
        return text[:11]
    if moment.date() == now.astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M")


def format_table(
    tasks: Sequence[Mapping[str, Any]],
    progress: Mapping[int, Mapping[str, Any]] | None = None,
    columns: int | None = None,
    now: datetime | None = None,
) -> str:
    """The task table in ``columns`` characters; ``progress`` by task ID (IN PROCESS)."""
    columns = columns or width()
    now = now or datetime.now().astimezone()
    progress = progress or {}
    rows = [
        {
            "ID": str(t.get("taskID", "")),
            "STATUS": str(t.get("status", "")),
            "NODE": str(t.get("dicomDeviceName", "")),
            "EXPORTER": str(t.get("ExporterID", "")),
            "STUDY": str(t.get("StudyInstanceUID", "")),
            "SENT": progress_text(progress.get(int(t.get("taskID", 0)))),
            "UPDATED": when(t.get("updatedTime"), now),
            "MESSAGE": short_message(t),
        }
        for t in tasks
    ]
    shown = [n for n in _MAX if n != "NODE" or len({r["NODE"] for r in rows}) > 1]
    sizes = {
        name: min(limit, max([len(name)] + [len(r[name]) for r in rows]))
        for name, limit in _MAX.items()
        if name in shown
    }
    used = sum(sizes.values()) + 2 * len(sizes)
    if columns - used < _MIN_MESSAGE:  # a narrow terminal: the Study UID gives way
        sizes["STUDY"] = max(8, sizes["STUDY"] - (_MIN_MESSAGE - (columns - used)))
        used = sum(sizes.values()) + 2 * len(sizes)
    message = max(_MIN_MESSAGE, columns - used)

    def line(cells: Mapping[str, str]) -> str:
        parts = [cells["ID"].rjust(sizes["ID"])]
        for name in ("STATUS", "NODE", "EXPORTER"):
            if name in sizes:
                parts.append(clip(cells[name], sizes[name]).ljust(sizes[name]))
        parts.append(middle(cells["STUDY"], sizes["STUDY"]).ljust(sizes["STUDY"]))
        parts.append(cells["SENT"].rjust(sizes["SENT"]))
        parts.append(cells["UPDATED"].ljust(sizes["UPDATED"]))
        parts.append(clip(cells["MESSAGE"], message))
        return "  ".join(parts).rstrip()

    lines = [line({name: name for name in (*sizes, "MESSAGE")})]
    lines += [line(r) for r in rows]
    if not rows:
        lines.append("(no tasks)")
    return "\n".join(lines) + "\n"


def format_task(detail: Mapping[str, Any], columns: int | None = None, limit: int = 50) -> str:
    """One task (``GET /monitor/export/{taskID}``): its fields, then its per-instance
    results (at most ``limit`` rows, the latest; 0 = all)."""
    columns = columns or width()
    status = str(detail.get("status", ""))
    failures = int(detail.get("failures") or 0)
    head = f"Task {detail.get('taskID')}: {status}"
    if status == "IN PROCESS":
        head += f" (attempt {failures + 1})"
    elif failures:
        head += f" ({failures} failed attempt{'s' if failures > 1 else ''})"
    progress = detail.get("progress") or {}
    fields = [
        ("exporter", f"{detail.get('ExporterID')} (queue {detail.get('queue')},"
                     f" AE {detail.get('LocalAET')})"),
        ("node", detail.get("dicomDeviceName")),
        ("study", detail.get("StudyInstanceUID")),
        ("series", detail.get("SeriesInstanceUID")),
        ("instance", detail.get("SOPInstanceUID")),
        ("modality", "\\".join(detail.get("Modality") or [])),
        ("instances", f"{progress_text(progress)} sent: {progress.get('delivered', 0)}"
                      f" delivered, {progress.get('failed', 0)} failed" if progress else None),
        ("batch", detail.get("batchID")),
        ("created", detail.get("createdTime")),
        ("scheduled", detail.get("scheduledTime")),
        ("started", detail.get("processingStartTime")),
        ("ended", detail.get("processingEndTime")),
        ("previous" if status == "IN PROCESS" else "outcome", detail.get("outcomeMessage")),
        ("error", detail.get("errorMessage")),
    ]  # fmt: skip
    lines = [head]
    for name, value in fields:
        if value:
            lines.append(f"  {name:<10} {clip(str(value), columns - 13)}")
    instances: list[Mapping[str, Any]] = list(detail.get("instances") or [])
    if instances:
        lines.append("")
        lines += _instance_table(instances, columns, limit)
    return "\n".join(lines) + "\n"


def _instance_table(instances: Sequence[Mapping[str, Any]], columns: int, limit: int) -> list[str]:
    shown = list(instances) if limit <= 0 else list(instances)[-limit:]
    uid = min(30, max(len("SOP INSTANCE UID"), *(len(str(i["SOPInstanceUID"])) for i in shown)))
    reason = max(10, columns - (7 + 2 + uid + 2 + 9 + 2 + 4 + 2))
    lines = [f"{'ATTEMPT':>7}  {'SOP INSTANCE UID':<{uid}}  {'STATUS':<9}  HTTP  REASON"]
    for i in shown:
        code = i.get("FailureReason")
        why = (f"0x{code:04X} " if isinstance(code, int) else "") + str(i.get("reason") or "")
        http = str(i.get("httpStatus") or "")
        lines.append(
            f"{i.get('attempt', ''):>7}  {middle(str(i['SOPInstanceUID']), uid):<{uid}}  "
            f"{i.get('status', '')!s:<9}  {http:>4}  {clip(why, reason)}".rstrip()
        )
    if len(shown) < len(instances):
        lines.append(f"({len(instances) - len(shown)} earlier results not shown; --instances 0)")
    return lines
