"""The receiver's settings: limits, accepted transfer syntaxes, auth, fault injection."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydicom.uid import UID_dictionary

from stowpair.config.secret import Secret
from stowpair.dicom.uids import is_valid_uid
from stowpair.receiver.mpr_parser import Limits

if TYPE_CHECKING:
    from stowpair.auth.jwt_validator import TokenValidator
    from stowpair.receiver.header_workers import HeaderWorkers


@dataclass(frozen=True)
class FaultSettings:
    """Faults injected on purpose so exporters can be tested (all off by default).

    ``fail_rate``: probability that a valid instance fails with ``fail_reason``;
    ``status``/``status_rate``: probability that a whole request is answered with
    ``status`` (nothing stored; 503 carries ``Retry-After: retry_after``);
    ``delay``: seconds to wait before answering; ``seed``: makes the draws repeatable.
    """

    fail_rate: float = 0.0
    fail_reason: int = 0x0110
    status: int | None = None
    status_rate: float = 1.0
    retry_after: int = 5
    delay: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class ReceiverSettings:
    """How a STOW-RS resource behaves. Sizes in bytes; None = unlimited."""

    #: Service path; the resource answers ``{path}/studies[/{StudyUID}]``.
    path: str = "/stowrs"
    max_request_size: int | None = None
    max_part_size: int | None = None
    #: Transfer Syntax UIDs accepted; None = any.
    accept_transfer_syntaxes: frozenset[str] | None = None
    bearer_token: Secret | None = None
    #: ``user:password``.
    basic_auth: Secret | None = None
    #: Validates Bearer JWT access tokens (``--oauth-issuer``/``--jwks``); None = off.
    bearer_validator: TokenValidator | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    limits: Limits = field(default_factory=Limits)
    #: Name in ``Warning`` headers and logs.
    server_name: str = "stowrsd"
    #: What this endpoint is, in log events and metrics: ``stowrsd``, ``emulator`` or
    #: ``ingest`` (the archive's STOW-RS ingest).
    endpoint: str = "stowrsd"
    #: Refuse POSTs from pages of other origins (403; the archive ingest does, stowrsd
    #: answers CORS like dcm4che's and does not).
    refuse_cross_site: bool = False
    #: How people set ``max_request_size`` here, named in 413 answers.
    max_request_size_option: str = "--max-request-size"
    #: Worker processes reading part headers for layouts that need only the UIDs
    #: (stowrsd's); None = read in the storage threads.
    header_workers: HeaderWorkers | None = None

    @property
    def path_segments(self) -> tuple[bytes, ...]:
        return tuple(s.encode() for s in self.path.strip("/").split("/") if s)


_KEYWORDS = {
    entry[4].lower(): uid
    for uid, entry in UID_dictionary.items()
    if entry[1] == "Transfer Syntax" and entry[4]
}


def resolve_transfer_syntaxes(text: str) -> frozenset[str] | None:
    """Parse ``--accept-transfer-syntax``: UIDs or keywords (``JPEGLosslessSV1``), comma
    or space separated; ``*`` means any (returns None). Raises ValueError naming the
    unknown entries.
    """
    items = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not items or "*" in items:
        return None
    out, unknown = set(), []
    for item in items:
        if is_valid_uid(item):
            out.add(item)
        elif item.lower() in _KEYWORDS:
            out.add(_KEYWORDS[item.lower()])
        else:
            unknown.append(item)
    if unknown:
        raise ValueError(
            "unknown transfer syntax "
            + ", ".join(repr(u) for u in unknown)
            + " (use a UID or a keyword such as ExplicitVRLittleEndian, JPEGLosslessSV1)"
        )
    return frozenset(out)


_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$")


def parse_size(text: str) -> int:
    """``"512"``, ``"64k"``, ``"500M"``, ``"2G"``, ``"1GiB"`` -> bytes (powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"size {text!r} is not a number with an optional k/M/G/T suffix")
    factor = 1024 ** " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * factor)


def parse_code(text: str) -> int:
    """A Failure Reason in hex, as PS3.18 Table I.2-2 writes them: ``0110``, ``C122``,
    ``0xA700``."""
    value = text.strip().lower()
    value = value[2:] if value.startswith("0x") else value
    try:
        code = int(value, 16)
    except ValueError:
        raise ValueError(
            f"failure reason {text!r} is not a hex code such as 0110 or C122"
        ) from None
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"failure reason {text!r} is outside 0000-FFFF")
    return code
