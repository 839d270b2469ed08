"""Reading a STOW-RS answer: HTTP status AND body, one verdict per instance sent.

dcm4chee ignores the status and only parses JSON, and ``{}`` can hang it (docs/dcm4chee.md,
"Reading the answer"). We read both: PS3.18 §10.5.3 statuses, the Store
Instances Response Module (Annex I, Table I.1-1) in DICOM JSON or XML by Content-Type,
and every instance sent must be accounted for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from stowpair.dicom.response import (
    ResponseParseError,
    StoreResponse,
    parse_json,
    parse_xml,
)
from stowpair.exporter.client import HTTPAnswer
from stowpair.exporter.outcome import InstanceStatus

#: Statuses after which the same request may succeed later (PS3.18 §8.5; RFC 9110).
RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
_BODY_QUOTE = 80


@dataclass(frozen=True)
class Verdict:
    """What one response means for one instance."""

    status: InstanceStatus
    reason: str = ""
    reason_code: int | None = None
    retryable: bool = False


def quote_body(body: bytes) -> str:
    """The start of a body, printable, for error messages."""
    if not body.strip():
        return "an empty body"
    text = body[:_BODY_QUOTE].decode("utf-8", "replace")
    text = " ".join(text.split())
    return repr(text + ("…" if len(body) > _BODY_QUOTE else ""))


def failure_reason_text(code: int) -> tuple[str, bool]:
    """Table I.2-2 meaning of a FailureReason, and whether a retry may help (transient:
    :func:`~stowpair.exporter.outcome.is_transient_refusal`)."""
    if code == 0xC122:
        return (
            "the server does not accept this transfer syntax (0xC122); set the web app's "
            "transfer-syntax property, e.g. transfer-syntax=ExplicitVRLittleEndian",
            False,
        )
    if 0xA700 <= code <= 0xA7FF:
        return f"refused: out of resources (0x{code:04X})", True
    if code == 0x0110:
        return "processing failure (0x0110)", True
    if 0xA900 <= code <= 0xA9FF:
        return f"data set does not match SOP Class (0x{code:04X})", False
    if code == 0x0122:
        return "SOP Class not supported (0x0122)", False
    if code == 0x0111:
        return "the server holds this SOP Instance UID with other content (0x0111)", False
    if 0xC000 <= code <= 0xCFFF:
        return f"cannot understand (0x{code:04X})", False
    return f"failure reason 0x{code:04X}", False


_WARNINGS = {
    0xB000: "coercion of data elements",
    0xB006: "elements discarded",
    0xB007: "data set does not match SOP Class",
}


def warning_reason_text(code: int | None) -> str:
    if code is None:
        return "stored with a warning"
    meaning = _WARNINGS.get(code, "warning")
    return f"stored with warning 0x{code:04X} ({meaning})"


def parse_answer(answer: HTTPAnswer) -> StoreResponse:
    """The Store Instances Response, chosen by Content-Type (sniffed when absent)."""
    ctype = (answer.header("Content-Type") or "").split(";")[0].strip().lower()
    if ctype in ("application/dicom+json", "application/json"):
        return parse_json(answer.body)
    if ctype in ("application/dicom+xml", "application/xml", "text/xml"):
        return parse_xml(answer.body)
    start = answer.body.lstrip()[:20]
    if not ctype and start.startswith((b"{", b"[")):
        return parse_json(answer.body)
    if not ctype and start.startswith((b"<?xml", b"<NativeDicomModel")):
        return parse_xml(answer.body)
    raise ResponseParseError(f"Content-Type {ctype or '(none)'} is not DICOM JSON or XML")


def retry_after(answer: HTTPAnswer, now: float) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    value = answer.header("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def acknowledges_nothing(answer: HTTPAnswer) -> bool:
    """A 2xx Store Instances Response with neither references nor failures: what
    Orthanc 1.10 / DICOMweb 1.7 answers when it skipped every part because their
    Content-Type carries a ``transfer-syntax`` parameter (verified, docs/exporter.md)."""
    if not 200 <= answer.status < 300:
        return False
    try:
        response = parse_answer(answer)
    except ResponseParseError:
        return False
    return not (response.referenced or response.failed or response.other_failures)


def _all(sop_uids: Sequence[str], verdict: Verdict) -> dict[str, Verdict]:
    return {uid: verdict for uid in sop_uids}


def reconcile(sop_uids: Sequence[str], answer: HTTPAnswer) -> dict[str, Verdict]:
    """One verdict per SOP Instance UID sent in the request that got ``answer``."""
    status = answer.status
    if status in (401, 403):
        text = f"authentication rejected (HTTP {status}); check bearer-token / basic-auth"
        return _all(sop_uids, Verdict(InstanceStatus.FAILED, text))
    if status in RETRYABLE_STATUSES:
        text = f"server busy or failing (HTTP {status}, {quote_body(answer.body)})"
        return _all(sop_uids, Verdict(InstanceStatus.FAILED, text, retryable=True))
    try:
        response = parse_answer(answer)
    except ResponseParseError as e:
        return _all(sop_uids, _unreadable(answer, str(e)))
    if not (response.referenced or response.failed or response.other_failures):
        return _all(sop_uids, _unreadable(answer, "no Referenced or Failed SOP Sequence"))
    return _per_instance(sop_uids, response, status)


def _unreadable(answer: HTTPAnswer, why: str) -> Verdict:
    success = 200 <= answer.status < 300
    text = (
        f"HTTP {answer.status} answer is not a Store Instances Response ({why}): "
        f"body starts {quote_body(answer.body)}"
    )
    if answer.truncated:
        text += " (answer truncated)"
    # A 2xx whose body tells nothing leaves the instance's fate unknown: sending again
    # is the safe way to know. A 4xx without a response is a refusal of the request.
    return Verdict(InstanceStatus.FAILED, text, retryable=success)


def _per_instance(
    sop_uids: Sequence[str], response: StoreResponse, status: int
) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    for ref in response.referenced:
        if ref.warning_reason is not None:
            verdicts[ref.sop_instance_uid] = Verdict(
                InstanceStatus.WARNING,
                warning_reason_text(ref.warning_reason),
                ref.warning_reason,
            )
        else:
            verdicts[ref.sop_instance_uid] = Verdict(InstanceStatus.COMPLETED)
    for fail in response.failed:  # a failure wins over a contradicting reference
        code = fail.failure_reason
        text, retryable = failure_reason_text(code) if code is not None else ("failed", False)
        verdicts[fail.sop_instance_uid] = Verdict(
            InstanceStatus.FAILED, f"{text} (HTTP {status})", code, retryable
        )
    missing = Verdict(
        InstanceStatus.FAILED,
        f"not acknowledged: the HTTP {status} answer neither references nor lists it as failed",
        retryable=True,
    )
    return {uid: verdicts.get(uid, missing) for uid in sop_uids}
