"""dcmSchedule grammar, semantics and errors (docs/dcm4chee.md, "Schedules")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.config.schedule import (
    ScheduleError,
    ScheduleExpression,
    ceil,
    ceil_epoch,
    contains_any,
    parse_schedules,
)

AFTER_HOURS = parse_schedules(["hour=18-6 dayOfWeek=*", "hour=* dayOfWeek=0,6"])
THURSDAY_10 = datetime(2015, 10, 8, 10, 0)
SATURDAY_10 = datetime(2015, 10, 10, 10, 0)


@pytest.mark.parametrize(
    ("text", "hours", "days"),
    [
        ("", range(24), range(7)),
        ("hour=*", range(24), range(7)),
        ("hour=3", [3], range(7)),
        ("hour=1,5,7", [1, 5, 7], range(7)),
        ("hour=8-10", [8, 9, 10], range(7)),
        ("hour=22-2", [22, 23, 0, 1, 2], range(7)),
        ("hour=18-6 dayOfWeek=*", [*range(18, 24), *range(7)], range(7)),
        ("dayOfWeek=0,6", range(24), [0, 6]),
        ("dayOfWeek=5-1", range(24), [5, 6, 0, 1]),
        ("hour=4-4", [4], range(7)),
        ("hour=1 hour=2", [2], range(7)),
        ("  hour=9\tdayOfWeek=1-5  ", [9], range(1, 6)),
        ("hour=23,0-1 dayOfWeek=6,0", [23, 0, 1], [6, 0]),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else "",
)
def test_grammar(text: str, hours: range, days: range) -> None:
    """When an expression is valid, it parses to the hours and days it names (ranges wrap)."""
    schedule = ScheduleExpression.parse(text)
    assert (schedule.hours, schedule.days) == (frozenset(hours), frozenset(days))
    assert str(schedule) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hour=24", "hour value 24 is out of range 0-23"),
        ("dayOfWeek=7", "dayOfWeek value 7 is out of range 0-6"),
        ("hour=1-2-3", "item '1-2-3' is not N or N-M"),
        ("hour=a", "item 'a' is not N or N-M"),
        ("hour=-1", "item '-1' is not N or N-M"),
        ("hour=1,,2", "item '' is not N or N-M"),
        ("hour=18-", "item '18-' is not N or N-M"),
        ("hour=²", "item '²' is not N or N-M"),
        ("hour=", "hour= needs a value"),
        ("minute=5", "unknown token 'minute=5'"),
        ("dayofweek=1", "unknown token 'dayofweek=1'"),
        ("hour 5", "unknown token 'hour'"),
        ("hour = 5", "unknown token 'hour'"),
    ],
    ids=lambda v: v,
)
def test_errors(text: str, message: str) -> None:
    """When an expression breaks the grammar, the error names the expression and the fault."""
    with pytest.raises(ScheduleError) as raised:
        ScheduleExpression.parse(text)
    assert message in str(raised.value)
    assert repr(text) in str(raised.value)


def test_reference_vector_thursday() -> None:
    """When Thursday 10:00 is outside both windows, ceil gives 18:00 the same day."""
    assert ceil(AFTER_HOURS, THURSDAY_10) == datetime(2015, 10, 8, 18, 0)


def test_reference_vector_saturday() -> None:
    """When Saturday 10:00 is inside the weekend window, ceil leaves it unchanged."""
    assert ceil(AFTER_HOURS, SATURDAY_10) == SATURDAY_10


def test_inside_window_keeps_minutes() -> None:
    """When the time is inside a window, ceil returns it as is, minutes included."""
    when = datetime(2015, 10, 8, 19, 42, 7)
    assert ceil(AFTER_HOURS, when) == when


def test_outside_window_lands_on_the_hour() -> None:
    """When the time is outside every window, ceil lands on the top of an hour."""
    assert ceil(AFTER_HOURS, datetime(2015, 10, 8, 10, 59, 59)) == datetime(2015, 10, 8, 18)


def test_weekday_rechecked_after_midnight() -> None:
    """When the hour passes on Friday, ceil waits for next Friday, not Saturday (dcm4chee quirk)."""
    friday_3 = datetime(2015, 10, 9, 3, 0)
    assert ceil(parse_schedules(["hour=2 dayOfWeek=5"]), friday_3) == datetime(2015, 10, 16, 2)


def test_next_matching_weekday() -> None:
    """When today is not a matching weekday, ceil finds the first matching hour of the next one."""
    schedules = parse_schedules(["hour=9-17 dayOfWeek=1-5"])
    saturday_noon = datetime(2015, 10, 10, 12, 0)
    assert ceil(schedules, saturday_noon) == datetime(2015, 10, 12, 9, 0)


def test_sunday_is_zero() -> None:
    """When dayOfWeek=0 is given, it means Sunday."""
    sunday = datetime(2015, 10, 11, 12, 0)
    assert ScheduleExpression.parse("dayOfWeek=0").contains(sunday)
    assert not ScheduleExpression.parse("dayOfWeek=0").contains(sunday - timedelta(days=1))


def test_no_schedule_means_always() -> None:
    """When there are no schedules, every time is contained and ceil is the identity."""
    assert contains_any((), THURSDAY_10)
    assert ceil((), THURSDAY_10) == THURSDAY_10


def test_earliest_of_several() -> None:
    """When several schedules are given, ceil takes the earliest of their windows."""
    schedules = parse_schedules(["hour=20", "hour=12", "hour=15"])
    assert ceil(schedules, THURSDAY_10) == datetime(2015, 10, 8, 12)


def test_ceil_epoch_matches_ceil() -> None:
    """When given POSIX seconds, ceil_epoch agrees with ceil in local time."""
    seconds = THURSDAY_10.timestamp()
    assert ceil_epoch(AFTER_HOURS, seconds) == datetime(2015, 10, 8, 18).timestamp()


_spec = st.one_of(
    st.just("*"),
    st.lists(
        st.tuples(st.integers(0, 23), st.integers(0, 23) | st.none()), min_size=1, max_size=3
    ).map(lambda items: ",".join(f"{a}" if b is None else f"{a}-{b}" for a, b in items)),
)
_days = st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True).map(
    lambda d: ",".join(map(str, d))
)
_expression = st.builds(lambda h, d: f"hour={h} dayOfWeek={d}", _spec, st.just("*") | _days)
_moment = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))


@given(st.lists(_expression, min_size=1, max_size=3), _moment)
def test_ceil_is_contained_later_and_minimal(texts: list[str], when: datetime) -> None:
    """When ceil runs on any schedules, its result is inside them, not earlier, and minimal."""
    schedules = parse_schedules(texts)
    result = ceil(schedules, when)
    assert result >= when
    assert contains_any(schedules, result)
    if result != when:
        assert result.minute == result.second == result.microsecond == 0
        assert not contains_any(schedules, when)
        probe = when.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while probe < result:
            assert not contains_any(schedules, probe)
            probe += timedelta(hours=1)


@given(st.text(max_size=30))
def test_parse_never_crashes(text: str) -> None:
    """When any text is parsed, it either parses or raises ScheduleError."""
    try:
        ScheduleExpression.parse(text)
    except ScheduleError:
        pass
