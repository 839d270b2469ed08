"""dcm4chee's export outcome rule and message (``AbstractExporter``; docs/dcm4chee.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from stowpair.exporter.outcome import InstanceOutcome, InstanceStatus, Outcome, TaskStatus


def entity_text(study_uid: str, series_uid: str = "*", sop_uid: str = "*") -> str:
    """``Study[uid=S]``, ``Series[uid=R] of Study[uid=S]`` or ``Instance[uid=I] of …``."""
    text = f"Study[uid={study_uid}]"
    if series_uid not in ("*", ""):
        text = f"Series[uid={series_uid}] of {text}"
        if sop_uid not in ("*", ""):
            text = f"Instance[uid={sop_uid}] of {text}"
    return text


def outcome_status(
    matches: int, completed: int, warning: int, failed: int, missing: int
) -> TaskStatus:
    """remaining > 0 → CANCELED; failed and missing → FAILED; failed → WARNING (sic,
    even when all failed: dcm4chee's rule, kept for compatibility); else COMPLETED."""
    if matches - completed - warning - failed > 0:
        return TaskStatus.CANCELED
    if failed > 0 and missing > 0:
        return TaskStatus.FAILED
    if failed > 0:
        return TaskStatus.WARNING
    return TaskStatus.COMPLETED


def outcome_message(
    entity: str,
    webapp: str,
    matches: int,
    completed: int,
    warning: int,
    failed: int,
    missing: int,
) -> str:
    """``Export <entity> to <webapp> - completed:C[, warning:W][, failed:F][, missing:M]``;
    a cancelled export reads ``… to <webapp> canceled - remaining:R, completed:C…``."""
    remaining = matches - completed - warning - failed
    counts = f"completed:{completed}"
    if remaining > 0:
        head = f"Export {entity} to {webapp} canceled - remaining:{remaining}, "
    else:
        head = f"Export {entity} to {webapp} - "
    for name, value in (("warning", warning), ("failed", failed), ("missing", missing)):
        if value:
            counts += f", {name}:{value}"
    return head + counts


def build_outcome(
    entity: str,
    webapp: str,
    results: Sequence[InstanceOutcome],
    matches: int,
    already: int = 0,
    retry_after: float | None = None,
) -> Outcome:
    """One attempt's Outcome from its per-instance results: the only place outcomes are
    built (the STOW-RS exporter and the queue's test fakes both use it).

    ``matches`` counts every instance of the entity; ``already`` those delivered by
    earlier attempts and not sent again, counted as completed as dcm4chee would have
    counted them when it re-sent them. A missing file also counts as failed, as in
    dcm4chee (its ``remaining`` would otherwise read as CANCELED).
    """
    count = Counter(r.status for r in results)
    missing = count[InstanceStatus.MISSING]
    completed = count[InstanceStatus.COMPLETED] + already
    warning = count[InstanceStatus.WARNING]
    failed = count[InstanceStatus.FAILED] + missing
    return Outcome(
        status=outcome_status(matches, completed, warning, failed, missing),
        message=outcome_message(entity, webapp, matches, completed, warning, failed, missing),
        completed=completed,
        warning=warning,
        failed=failed,
        missing=missing,
        instances=tuple(results),
        retry_after=retry_after,
    )


def failure_summary(outcome: Outcome, most: int = 3) -> str | None:
    """Why instances failed, most frequent first, for the task's ``errorMessage``.

    dcm4chee leaves errorMessage empty when an export ends WARNING from per-instance
    failures, so a wrong password shows only ``failed:N`` (its issue #3130); here the
    reasons are kept: ``16 instances failed: authentication rejected (HTTP 401); ...``.
    None when nothing failed.
    """
    reasons = Counter(
        i.reason for i in outcome.instances if i.status is InstanceStatus.FAILED and i.reason
    )
    if not reasons:
        return None
    texts = [
        f"{n} instance{'s' if n > 1 else ''} failed: {reason}"
        for reason, n in reasons.most_common(most)
    ]
    if len(reasons) > most:
        texts.append(f"and {len(reasons) - most} other reasons")
    return "; ".join(texts)
