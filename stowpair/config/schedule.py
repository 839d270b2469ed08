"""dcm4chee ``dcmSchedule`` expressions: ``hour=18-6 dayOfWeek=*``.

Grammar and semantics follow dcm4chee's ScheduleExpression (docs/dcm4chee.md, "Schedules"): space
separated ``hour=``/``dayOfWeek=`` tokens, ``*`` or comma lists of ``N`` or inclusive
``N-M`` items that wrap when ``M < N``; day 0 is Sunday; hour granularity in local
time; several schedules are OR-ed. Unlike dcm4chee, :func:`ceil` re-checks the
weekday after crossing midnight, so ``hour=2 dayOfWeek=5`` on Friday 03:00 gives the
next Friday 02:00, not Saturday.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


class ScheduleError(ValueError):
    """A schedule expression does not follow the dcmSchedule grammar."""


_FIELDS = {"hour": 24, "dayOfWeek": 7}


def _parse_spec(name: str, spec: str, text: str) -> frozenset[int]:
    limit = _FIELDS[name]
    if spec == "*":
        return frozenset(range(limit))
    if not spec:
        raise ScheduleError(f"schedule {text!r}: {name}= needs a value (* or a list such as 18-6)")
    values: set[int] = set()
    for item in spec.split(","):
        bounds = item.split("-")
        # isascii(): str.isdigit() also accepts "²" and other digits int() rejects.
        if len(bounds) > 2 or not all(b.isascii() and b.isdigit() for b in bounds):
            raise ScheduleError(
                f"schedule {text!r}: {name} item {item!r} is not N or N-M "
                f"(whole numbers 0-{limit - 1})"
            )
        low, high = int(bounds[0]), int(bounds[-1])
        for value in (low, high):
            if not 0 <= value < limit:
                raise ScheduleError(
                    f"schedule {text!r}: {name} value {value} is out of range 0-{limit - 1}"
                )
        if low <= high:
            values.update(range(low, high + 1))
        else:  # a range that wraps: 18-6 is 18..23 and 0..6
            values.update(range(low, limit))
            values.update(range(0, high + 1))
    return frozenset(values)


@dataclass(frozen=True)
class ScheduleExpression:
    """One ``dcmSchedule`` value; ``text`` is kept for display and round trips."""

    text: str
    hours: frozenset[int]
    days: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> ScheduleExpression:
        fields = {"hour": "*", "dayOfWeek": "*"}
        for token in text.split():
            name, sep, spec = token.partition("=")
            if not sep or name not in _FIELDS:
                raise ScheduleError(
                    f"schedule {text!r}: unknown token {token!r} "
                    "(allowed: hour=<spec> dayOfWeek=<spec>)"
                )
            fields[name] = spec  # a repeated token overrides the earlier one
        return cls(
            text=text,
            hours=_parse_spec("hour", fields["hour"], text),
            days=_parse_spec("dayOfWeek", fields["dayOfWeek"], text),
        )

    def contains(self, when: datetime) -> bool:
        """True when ``when`` (local time) lies in this schedule's window."""
        day = (when.weekday() + 1) % 7  # Python Monday=0 -> DICOM/Java Sunday=0
        return when.hour in self.hours and day in self.days

    def ceil(self, when: datetime) -> datetime:
        """``when`` if inside the window, else the start of the next window."""
        if self.contains(when):
            return when
        probe = when.replace(minute=0, second=0, microsecond=0)
        for _ in range(7 * 24 + 1):
            probe += timedelta(hours=1)
            if self.contains(probe):
                return probe
        raise AssertionError("a parsed schedule always matches within a week")

    def __str__(self) -> str:
        return self.text


def parse_schedules(texts: Iterable[str]) -> tuple[ScheduleExpression, ...]:
    return tuple(ScheduleExpression.parse(t) for t in texts)


def contains_any(schedules: Iterable[ScheduleExpression], when: datetime) -> bool:
    """OR across schedules; no schedule at all means always."""
    schedules = tuple(schedules)
    return not schedules or any(s.contains(when) for s in schedules)


def ceil(schedules: Iterable[ScheduleExpression], when: datetime) -> datetime:
    """The earliest time >= ``when`` inside any schedule (``when`` if none are given)."""
    schedules = tuple(schedules)
    if contains_any(schedules, when):
        return when
    return min(s.ceil(when) for s in schedules)


def ceil_epoch(schedules: Iterable[ScheduleExpression], seconds: float) -> float:
    """:func:`ceil` on POSIX seconds, evaluated in the local time zone."""
    return ceil(schedules, datetime.fromtimestamp(seconds)).timestamp()
