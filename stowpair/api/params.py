"""Query parameters of the dcm4chee REST API (docs/dcm4chee.md, "REST API"), strictly parsed.

Every bad value raises :class:`BadParameter` naming the parameter, the value and what
is allowed; the resource answers 400 with it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from stowpair.dicom.uids import is_valid_uid
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import ORDER_KEYS, OrderKey, TaskFilter

Args = dict[bytes, list[bytes]]


class ApiError(Exception):
    """An error answer: HTTP ``code`` and a one-sentence ``message`` for people."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadParameter(ApiError):
    def __init__(self, name: str, value: str, allowed: str) -> None:
        super().__init__(400, f"Invalid query parameter {name}={value!r}: {allowed}")


def values(args: Args, name: str) -> list[str]:
    return [v.decode("utf-8", "replace") for v in args.get(name.encode(), [])]


def single(args: Args, name: str) -> str | None:
    found = values(args, name)
    return found[-1] if found else None


def parse_status(value: str, name: str = "status") -> TaskStatus:
    """dcm4chee status strings; ``SCHEDULED_FOR_RETRY`` is accepted for the spaced form."""
    text = value.strip().upper().replace("_", " ")
    try:
        return TaskStatus(text)
    except ValueError:
        allowed = ", ".join(s.value for s in TaskStatus)
        raise BadParameter(name, value, f"expected one of {allowed}") from None


def parse_int(args: Args, name: str, low: int, high: int) -> int | None:
    value = single(args, name)
    if value is None or value == "":
        return None
    if not is_number(value) or not low <= int(value) <= high:
        raise BadParameter(name, value, f"expected a whole number {low}-{high}")
    return int(value)


_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", re.ASCII)
#: Task IDs are SQLite INTEGERs; a larger number cannot name a task.
MAX_TASK_ID = 2**63 - 1


def is_number(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also says yes to ``²`` and ``٣``)."""
    return text.isascii() and text.isdigit()


def _dt_bounds(text: str, name: str) -> tuple[float, float]:
    """The first and last instant (local time) of a possibly partial DICOM DT."""
    m = _DT.fullmatch(text)
    if m is None:
        raise BadParameter(name, text, "expected a DICOM DT such as 20251231235959")
    year, month, day, hour, minute, second = (int(p) if p else None for p in m.groups()[:6])
    try:
        start = datetime(
            year or 0,  # year 0000 does not exist: ValueError below
            1 if month is None else month,
            1 if day is None else day,
            hour or 0,
            minute or 0,
            second or 0,
        )
        if second is not None:
            end = start + timedelta(seconds=1)
        elif minute is not None:
            end = start + timedelta(minutes=1)
        elif hour is not None:
            end = start + timedelta(hours=1)
        elif day is not None:
            end = start + timedelta(days=1)
        elif month is not None:
            end = start.replace(year=start.year + (month == 12), month=month % 12 + 1)
        else:
            end = start.replace(year=start.year + 1)
        # local time: years 1 and 9999 can fall outside what the platform converts
        return start.timestamp(), end.timestamp() - 0.000001
    except (ValueError, OverflowError, OSError):
        raise BadParameter(name, text, "not a valid date and time") from None


def parse_dt_range(value: str, name: str) -> tuple[float | None, float | None]:
    """``DT``, ``DT-DT``, ``DT-`` or ``-DT`` (DICOM DT ranges, either end open), inclusive."""
    low_text, dash, high_text = value.partition("-")
    if not dash:
        return _dt_bounds(value, name)
    if not low_text and not high_text:
        raise BadParameter(name, value, "a range needs at least one end, e.g. 20250101-")
    low = _dt_bounds(low_text, name)[0] if low_text else None
    high = _dt_bounds(high_text, name)[1] if high_text else None
    return low, high


def parse_scheduled_time(args: Args) -> float | None:
    """``scheduledTime=yyyyMMddHHmmss`` in local time, 24-hour clock.

    dcm4chee validates with ``HH`` but parses with a 12-hour ``hh``, so 12:30 becomes
    00:30 there (docs/dcm4chee.md, "REST API"); we read the hour as written.
    """
    value = single(args, "scheduledTime")
    if value is None or value == "":
        return None
    try:
        if len(value) != 14 or not value.isdigit():
            raise ValueError
        return datetime.strptime(value, "%Y%m%d%H%M%S").timestamp()
    except ValueError:
        raise BadParameter(
            "scheduledTime", value, "expected yyyyMMddHHmmss (24-hour clock, local time)"
        ) from None


def parse_orderby(value: str | None) -> tuple[OrderKey, bool]:
    """``±createdTime``, ``±updatedTime``, ``±scheduledTime``; default ``-updatedTime``.

    A ``+`` in a query string decodes to a space, so a leading space means ascending.
    """
    if value is None or value == "":
        return "updatedTime", True
    descending = value.startswith("-")
    key = value.lstrip("-+ ")
    for known in ORDER_KEYS:
        if key == known:
            return known, descending
    allowed = ", ".join(f"{s}{k}" for k in ORDER_KEYS for s in ("", "-"))
    raise BadParameter("orderby", value, f"expected one of {allowed}")


def task_filter(args: Args) -> TaskFilter:
    """The common filters of ``/monitor/export`` (docs/rest-api.md)."""
    exporter_ids = tuple(
        part.strip() for v in values(args, "ExporterID") for part in v.split(",") if part.strip()
    )
    task_id = single(args, "taskID")
    if task_id is not None and not (is_number(task_id) and int(task_id) <= MAX_TASK_ID):
        raise BadParameter("taskID", task_id, "expected a task number")
    status = single(args, "status")
    created = single(args, "createdTime")
    updated = single(args, "updatedTime")
    order_by, descending = parse_orderby(single(args, "orderby"))
    study = single(args, "StudyInstanceUID") or None
    if study is not None and not is_valid_uid(study):
        raise BadParameter(
            "StudyInstanceUID", study, "expected a UID (digits and dots, PS3.5 §9.1)"
        )
    return TaskFilter(
        device_name=single(args, "dicomDeviceName") or None,
        exporter_ids=exporter_ids,
        study_uid=study,
        batch_id=single(args, "batchID") or None,
        task_id=int(task_id) if task_id else None,
        statuses=(parse_status(status),) if status else (),
        created=parse_dt_range(created, "createdTime") if created else None,
        updated=parse_dt_range(updated, "updatedTime") if updated else None,
        offset=parse_int(args, "offset", 0, 99999) or 0,
        limit=parse_int(args, "limit", 1, 99999),
        order_by=order_by,
        descending=descending,
    )


Format = tuple[Literal["json", "csv"], str]


def negotiate(accept: str | None) -> Format | None:
    """JSON or CSV from an Accept value (or ``?accept=``); None when neither is acceptable.

    ``text/csv;delimiter=semicolon`` selects ``;`` as dcm4chee does. No Accept = JSON.
    """
    if accept is None or not accept.strip():
        return "json", ","
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        if media in ("application/json", "application/*", "*/*"):
            return "json", ","
        if media in ("text/csv", "text/*"):
            semicolon = any(p.lower().replace(" ", "") == "delimiter=semicolon" for p in params)
            return "csv", ";" if semicolon else ","
    return None
