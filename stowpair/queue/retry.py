"""dcm4chee's retry rule (reference §4, TaskManagerEJB / QueueDescriptor)."""

from __future__ import annotations

from stowpair.config.model import Queue
from stowpair.exporter.outcome import InstanceStatus, Outcome, TaskStatus


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
    """FAILED is retried; WARNING with ``retry-on-warning``, or when it was transient."""
    if status == TaskStatus.FAILED:
        return True
    return status == TaskStatus.WARNING and (
        queue.retry_on_warning or transient_failures_only(outcome)
    )


def transient_failures_only(outcome: Outcome | None) -> bool:
    """True when instances failed and every failure may pass on a later attempt.

    dcm4chee ends such an export WARNING and retries it only with ``retry-on-warning``,
    so an unreachable destination (connection refused, 503, timeouts, 0xA7xx) leaves the
    export incomplete for good. We keep dcm4chee's outcome and message, but retry these:
    a retry re-sends only the instances that did not complete.
    """
    if outcome is None:
        return False
    failed = [i for i in outcome.instances if i.status == InstanceStatus.FAILED]
    return bool(failed) and all(i.retryable for i in failed)
