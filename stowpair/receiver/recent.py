"""The last requests a STOW-RS receiver answered, kept in memory and bounded.

The built-in emulator's are shown by the operator's console through
``GET /dcm4chee-arc/monitor/emulator`` (docs/rest-api.md). Nothing is written to disk:
the JSON log holds the full history (``receiver.request``).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

#: Requests kept by default; the oldest is dropped when a new one comes.
CAPACITY = 200


@dataclass(frozen=True)
class ReceivedRequest:
    """One answered request, as the ``receiver.request`` log event describes it."""

    time: float
    method: str
    path: str
    peer: str
    status: int
    parts: int = 0
    stored: int = 0
    failed: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    #: Why the request as a whole was refused or broke off (401, 415, syntax), or None.
    error: str | None = None
    #: Failure Reason (PS3.18 Table I.2-2) -> instances refused with it.
    failure_reasons: dict[int, int] = field(default_factory=dict)


class RecentRequests:
    """A ring of the last ``capacity`` requests; ``total`` counts every one since start."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.total = 0
        self._entries: deque[ReceivedRequest] = deque(maxlen=capacity)

    def add(self, entry: ReceivedRequest) -> None:
        self._entries.append(entry)
        self.total += 1

    def newest_first(self, limit: int | None = None) -> list[ReceivedRequest]:
        entries = list(reversed(self._entries))
        return entries if limit is None else entries[:limit]


def count_reasons(codes: list[int]) -> dict[int, int]:
    """Failure Reason -> how many instances, in ascending code order."""
    return dict(sorted(Counter(codes).items()))
