"""dcm4chee's retry rule (reference §4, TaskManagerEJB / QueueDescriptor)."""

from __future__ import annotations

from stowpair.config.model import Queue


def retry_delay(queue: Queue, failures: int) -> float | None:
    """Seconds to wait before retry number ``failures`` (1-based), or None for no retry.

    ``n = ++failures``; ``n > maxRetries`` means no retry; otherwise
    ``retryDelay × (multiplier/100)^(n−1)``, applied step by step as dcm4chee does,
    capped at ``maxRetryDelay``. With dcm4chee's default config (PT30S, 200 %, PT10M)
    this gives 30, 60, 120, 240, 480, 600, 600 ...
    """
    if failures > queue.max_retries:
        return None
    delay = queue.retry_delay
    cap = queue.max_retry_delay
    for _ in range(failures - 1):
        delay = delay * queue.retry_delay_multiplier / 100
        if cap is not None and delay >= cap:
            break
    return delay if cap is None else min(delay, cap)
