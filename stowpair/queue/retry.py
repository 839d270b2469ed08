"""dcm4chee's retry rule (TaskManagerEJB / QueueDescriptor).

The formula and the defaults: docs/dcm4chee.md, "Tasks, statuses and retries".
"""

from __future__ import annotations

from stowpair.config.model import Queue
from stowpair.exporter.outcome import (
    InstanceOutcome,
    InstanceStatus,
    Outcome,
    TaskStatus,
    is_permanent_refusal,
)


def retry_delay(queue: Queue, failures: int) -> int | None:
    """Whole seconds to wait before retry number ``failures`` (1-based), or None for no
    retry.

    As dcm4chee's ``QueueDescriptor.getRetryDelayInSeconds``: ``n > maxRetries`` means no
    retry; otherwise ``retryDelay`` in whole seconds, multiplied by ``multiplier/100`` with
    integer division ``n − 1`` times, capped at ``maxRetryDelay``. With dcm4chee's
    default config (PT30S, 200 %, PT10M) this gives 30, 60, 120, 240, 480, 600, 600 …;
    at PT45S and 150 % it gives 45, 67 (not 67.5), 100 …
    """
    if failures > queue.max_retries:
        return None
    delay = int(queue.retry_delay)
    cap = None if queue.max_retry_delay is None else int(queue.max_retry_delay)
    for _ in range(failures - 1):
        delay = delay * queue.retry_delay_multiplier // 100
        if cap is not None and delay >= cap:
            break  # the multiplier is at least 100 %: the delay never shrinks again
    return delay if cap is None else min(delay, cap)


def should_retry(status: TaskStatus, queue: Queue, outcome: Outcome | None) -> bool:
    """FAILED is retried (dcm4chee). WARNING is retried when an instance failed for a
    transient reason, or with ``retry_on_warning``; never when every failure is a
    permanent refusal (0xA9xx, 0xCxxx ...): sending those again cannot help."""
    if status == TaskStatus.FAILED:
        return True
    if status != TaskStatus.WARNING:
        return False
    failed = _failed(outcome)
    if any(i.retryable for i in failed):
        return True
    return queue.retry_on_warning and not (failed and all(_permanent(i) for i in failed))


def _failed(outcome: Outcome | None) -> list[InstanceOutcome]:
    if outcome is None:
        return []
    return [i for i in outcome.instances if i.status == InstanceStatus.FAILED]


def _permanent(i: InstanceOutcome) -> bool:
    return i.reason_code is not None and is_permanent_refusal(i.reason_code)
