"""QIDO-RS study search of the archive (PS3.18 §10.6), a few attributes in DICOM JSON.

``GET /aets/{AET}/rs/studies`` lists what the archive holds, one object per study, newest
received first; ``GET /aets/{AET}/rs/{studies|series|instances}/count`` answers
``{"count": N}`` as dcm4chee does. Matching keys (keyword or tag): StudyInstanceUID,
PatientID (exact), StudyDate (``YYYYMMDD`` or a range), ModalitiesInStudy; plus
``offset``, ``limit`` (1-1000, default 100), ``includefield`` and ``fuzzymatching``
(accepted; every supported attribute is always returned). Anything else is a 400 that
names what is supported (docs/rest-api.md).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Protocol

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair.api.params import ApiError, BadParameter, is_number, single
from stowpair.api.respond import Answer, json_answer, render_async
from stowpair.archive.studies import ArchiveCounts, StudyQuery, StudySummary
from stowpair.dicom.uids import is_valid_uid
from stowpair.web.errors import ErrorStyle, error_response, shown, write_error

DICOM_JSON = "application/dicom+json"
MAX_LIMIT = 1000
Level = Literal["studies", "series", "instances"]

#: Matching keys by keyword and by tag.
_KEYS = {
    "StudyInstanceUID": "StudyInstanceUID",
    "0020000D": "StudyInstanceUID",
    "PatientID": "PatientID",
    "00100020": "PatientID",
    "StudyDate": "StudyDate",
    "00080020": "StudyDate",
    "ModalitiesInStudy": "ModalitiesInStudy",
    "00080061": "ModalitiesInStudy",
}
_OTHER = ("offset", "limit", "includefield", "fuzzymatching")
_DATE = re.compile(r"\d{8}", re.ASCII)
_CS = re.compile(r"[A-Z0-9_ ]{1,16}", re.ASCII)


class StudyIndex(Protocol):
    """What the search needs from the archive index."""

    def studies(self, query: StudyQuery) -> Deferred[list[StudySummary]]: ...

    def counts(self, query: StudyQuery) -> Deferred[ArchiveCounts]: ...


class QidoResource(Resource):
    """``GET /rs/studies`` and ``GET /rs/{level}/count`` (leaf)."""

    isLeaf = True

    def __init__(self, index: StudyIndex | None, level: Level, count: bool) -> None:
        super().__init__()
        self.index = index
        self.level = level
        self.count = count

    def render_GET(self, request: Request) -> int:
        return render_async(request, self._answer)

    async def _answer(self, request: Request) -> Answer:
        if self.index is None:
            raise ApiError(404, "Study search is not available in this service")
        query = study_query(request.args)
        if self.count:
            counts = await self.index.counts(query)
            return json_answer(200, {"count": getattr(counts, self.level)})
        accept = request.getHeader(b"accept")
        if not _accepts_json(accept.decode("latin-1") if accept else None):
            raise ApiError(406, f"Cannot answer with {accept!r}: accept {DICOM_JSON}")
        studies = await self.index.studies(query)
        answer = json_answer(200, [study_json(s) for s in studies])
        return Answer(answer.code, answer.body, DICOM_JSON)


class SearchMethodRefusal(Resource):
    """405 for a method no resource serves on a search path, with the complete Allow.

    ``/rs/studies`` is also the STOW-RS ingest (POST, OPTIONS): refused there in its
    style, one line of text; the ``/count`` paths are the search's alone (JSON).
    """

    isLeaf = True

    def __init__(self, allow: str, style: ErrorStyle) -> None:
        super().__init__()
        self.allow = allow
        self.error_style = style

    def render(self, request: Request) -> bytes:
        message = f"Method {shown(request.method)} not allowed here (allowed: {self.allow})"
        answer = error_response(405, message, self.error_style, (("Allow", self.allow),))
        body: bytes = write_error(request, answer)
        return body


def _accepts_json(accept: str | None) -> bool:
    if accept is None or not accept.strip():
        return True
    media = {item.split(";")[0].strip().lower() for item in accept.split(",")}
    return bool(media & {DICOM_JSON, "application/json", "application/*", "*/*"})


def study_query(args: dict[bytes, list[bytes]]) -> StudyQuery:
    """A StudyQuery from QIDO-RS query parameters; BadParameter for what cannot match."""
    found: dict[str, str] = {}
    for raw in args:
        name = raw.decode("utf-8", "replace")
        if name in _OTHER:
            continue
        key = _KEYS.get(name) or _KEYS.get(name.upper())
        if key is None:
            supported = ", ".join([*dict.fromkeys(_KEYS.values()), *_OTHER])
            raise ApiError(400, f"Unsupported query parameter {name!r}: supported are {supported}")
        value = single(args, name) or ""
        if value:
            found[key] = value
    uid = found.get("StudyInstanceUID")
    if uid is not None and not is_valid_uid(uid):
        raise BadParameter("StudyInstanceUID", uid, "expected a UID (digits and dots, PS3.5 §9.1)")
    modality = found.get("ModalitiesInStudy")
    if modality is not None and _CS.fullmatch(modality) is None:
        raise BadParameter("ModalitiesInStudy", modality, "expected one modality such as CT")
    date = found.get("StudyDate")
    return StudyQuery(
        study_uid=uid,
        patient_id=found.get("PatientID"),
        study_date=_date_range(date) if date is not None else None,
        modality=modality,
        offset=_whole(args, "offset", 0, 99999, 0),
        limit=_whole(args, "limit", 1, MAX_LIMIT, 100),
    )


def _whole(args: dict[bytes, list[bytes]], name: str, low: int, high: int, default: int) -> int:
    value = single(args, name)
    if value is None or value == "":
        return default
    if not is_number(value) or not low <= int(value) <= high:
        raise BadParameter(name, value, f"expected a whole number {low}-{high}")
    return int(value)


def _date_range(value: str) -> tuple[str | None, str | None]:
    """``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``-YYYYMMDD`` or ``YYYYMMDD-`` (PS3.4 C.2.2.2.5)."""
    low, dash, high = value.partition("-")
    if not dash:
        high = low
    if not low and not high:
        raise BadParameter("StudyDate", value, "a range needs at least one date, e.g. 20250101-")
    for part in (low, high):
        if part and not _is_date(part):
            raise BadParameter("StudyDate", value, "expected YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    return low or None, high or None


def _is_date(text: str) -> bool:
    if _DATE.fullmatch(text) is None:
        return False
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def _attribute(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in ("", None)]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def study_json(study: StudySummary) -> dict[str, Any]:
    """One study as a DICOM JSON object (PS3.18 Annex F), tags in ascending order."""
    return {
        "00080020": _attribute("DA", study.study_date),
        "00080056": _attribute("CS", "ONLINE"),
        "00080061": _attribute("CS", *study.modalities),
        "00100020": _attribute("LO", study.patient_id),
        "0020000D": _attribute("UI", study.study_uid),
        "00201206": _attribute("IS", study.series),
        "00201208": _attribute("IS", study.instances),
    }
