"""dcm4chee's export outcome rule and message (reference §1.9, ``AbstractExporter``)."""

from __future__ import annotations

from stowpair.exporter.outcome import TaskStatus


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
    even when all failed: dcm4chee quirk 1, kept for compatibility); else COMPLETED."""
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
