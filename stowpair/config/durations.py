"""ISO-8601 durations as dcm4chee writes them: ``PT30S``, ``PT10M``, ``P1D``, ``PT1H30M``.

dcm4chee's ``Duration`` accepts days and a time part (hours, minutes, seconds with an
optional fraction); years, months and weeks are not used in its configuration, so they are
rejected here rather than guessed.
"""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"P(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)S)?)?",
    re.ASCII,
)
EXAMPLES = "e.g. PT30S, PT10M, PT1H30M, P1D"


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the accepted forms."""
    match = _DURATION.fullmatch(text.strip().upper())
    if match is None or not any(match.groups()) or match.group(0).endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration ({EXAMPLES})")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: float) -> str:
    """The shortest ISO-8601 text for ``seconds`` (inverse of :func:`parse_duration`)."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    whole = int(seconds)
    fraction = seconds - whole
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or fraction:
        time += f"{secs + fraction:g}S"
    if time:
        text += "T" + time
    return text if text != "P" else "PT0S"
