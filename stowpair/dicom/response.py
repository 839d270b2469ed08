"""The Store Instances Response Module (PS3.18 Annex I, Table I.1-1): build and parse.

Encodings: DICOM JSON (PS3.18 Annex F.2, ``application/dicom+json``) and the Native
DICOM Model (PS3.19 Annex A, ``application/dicom+xml``). The receiver builds responses
with :meth:`StoreResponse.to_json` / :meth:`StoreResponse.to_xml`; the exporter reads a
peer's answer with :func:`parse_json` / :func:`parse_xml`, which raise
:class:`ResponseParseError` (one sentence, quoting where) on malformed input.

Parsing is lenient where peers differ and the meaning is clear: an empty sequence
without ``"Value"`` (Orthanc before 1.19), extra attributes, lowercase tags, numbers
written as strings. An item without a Referenced SOP Instance UID, or a failed item
without a Failure Reason, cannot be reconciled and is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

# Tags (PS3.6) of the module, uppercase hex as DICOM JSON writes them.
RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
OTHER_FAILURES_SEQUENCE = "0008119A"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
WARNING_REASON = "00081196"
FAILURE_REASON = "00081197"

KEYWORDS = {
    RETRIEVE_URL: "RetrieveURL",
    FAILED_SOP_SEQUENCE: "FailedSOPSequence",
    REFERENCED_SOP_SEQUENCE: "ReferencedSOPSequence",
    OTHER_FAILURES_SEQUENCE: "OtherFailuresSequence",
    REFERENCED_SOP_CLASS_UID: "ReferencedSOPClassUID",
    REFERENCED_SOP_INSTANCE_UID: "ReferencedSOPInstanceUID",
    WARNING_REASON: "WarningReason",
    FAILURE_REASON: "FailureReason",
}
VRS = {
    RETRIEVE_URL: "UR",
    FAILED_SOP_SEQUENCE: "SQ",
    REFERENCED_SOP_SEQUENCE: "SQ",
    OTHER_FAILURES_SEQUENCE: "SQ",
    REFERENCED_SOP_CLASS_UID: "UI",
    REFERENCED_SOP_INSTANCE_UID: "UI",
    WARNING_REASON: "US",
    FAILURE_REASON: "US",
}
NATIVE_DICOM_NS = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
JSON_MEDIA_TYPE = "application/dicom+json"
XML_MEDIA_TYPE = "application/dicom+xml"


class ResponseParseError(ValueError):
    """A response body that is not a readable Store Instances Response."""


@dataclass(frozen=True)
class ReferencedInstance:
    """An instance the server stored (ReferencedSOPSequence item)."""

    sop_class_uid: str
    sop_instance_uid: str
    retrieve_url: str | None = None
    #: Warning Reason (Table I.2-1), e.g. 0xB000; None when stored without warning.
    warning_reason: int | None = None


@dataclass(frozen=True)
class FailedInstance:
    """An instance the server did not store (FailedSOPSequence item)."""

    sop_class_uid: str
    sop_instance_uid: str
    #: Failure Reason (Table I.2-2), e.g. 0xC122.
    failure_reason: int


@dataclass(frozen=True)
class StoreResponse:
    """The module: study Retrieve URL, stored, failed and other failures.

    ``other_failures`` holds the Failure Reasons of the Other Failures Sequence
    (problems not tied to an identifiable instance).
    """

    retrieve_url: str | None = None
    referenced: tuple[ReferencedInstance, ...] = ()
    failed: tuple[FailedInstance, ...] = ()
    other_failures: tuple[int, ...] = ()

    def to_json(self) -> bytes:
        """DICOM JSON (PS3.18 F.2); sequences only when they have items (Type 1C)."""
        return json.dumps(_to_attributes(self), separators=(",", ":")).encode("utf-8")

    def to_xml(self) -> bytes:
        """Native DICOM Model XML (PS3.19 Annex A)."""
        root = ET.Element("NativeDicomModel", xmlns=NATIVE_DICOM_NS)
        _xml_attributes(root, _to_attributes(self))
        body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return body


# -- building -----------------------------------------------------------------


def _element(tag: str, values: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"vr": VRS[tag]}
    if values:
        out["Value"] = values
    return out


def _to_attributes(r: StoreResponse) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        RETRIEVE_URL: _element(RETRIEVE_URL, [r.retrieve_url] if r.retrieve_url else [])
    }
    if r.failed:
        attrs[FAILED_SOP_SEQUENCE] = _element(
            FAILED_SOP_SEQUENCE,
            [
                {
                    REFERENCED_SOP_CLASS_UID: _element(REFERENCED_SOP_CLASS_UID, [f.sop_class_uid]),
                    REFERENCED_SOP_INSTANCE_UID: _element(
                        REFERENCED_SOP_INSTANCE_UID, [f.sop_instance_uid]
                    ),
                    FAILURE_REASON: _element(FAILURE_REASON, [f.failure_reason]),
                }
                for f in r.failed
            ],
        )
    if r.referenced:
        attrs[REFERENCED_SOP_SEQUENCE] = _element(
            REFERENCED_SOP_SEQUENCE, [_referenced_item(i) for i in r.referenced]
        )
    if r.other_failures:
        attrs[OTHER_FAILURES_SEQUENCE] = _element(
            OTHER_FAILURES_SEQUENCE,
            [{FAILURE_REASON: _element(FAILURE_REASON, [code])} for code in r.other_failures],
        )
    return attrs


def _referenced_item(i: ReferencedInstance) -> dict[str, Any]:
    item = {
        REFERENCED_SOP_CLASS_UID: _element(REFERENCED_SOP_CLASS_UID, [i.sop_class_uid]),
        REFERENCED_SOP_INSTANCE_UID: _element(REFERENCED_SOP_INSTANCE_UID, [i.sop_instance_uid]),
        RETRIEVE_URL: _element(RETRIEVE_URL, [i.retrieve_url] if i.retrieve_url else []),
    }
    if i.warning_reason is not None:
        item[WARNING_REASON] = _element(WARNING_REASON, [i.warning_reason])
    return dict(sorted(item.items()))


def _xml_attributes(parent: ET.Element, attrs: dict[str, Any]) -> None:
    for tag, element in attrs.items():
        node = ET.SubElement(
            parent, "DicomAttribute", {"tag": tag, "vr": element["vr"], "keyword": KEYWORDS[tag]}
        )
        for n, value in enumerate(element.get("Value", []), start=1):
            if element["vr"] == "SQ":
                _xml_attributes(ET.SubElement(node, "Item", number=str(n)), value)
            else:
                ET.SubElement(node, "Value", number=str(n)).text = str(value)


# -- parsing ------------------------------------------------------------------


def parse_json(body: bytes) -> StoreResponse:
    """Read a DICOM JSON Store Instances Response; raise :class:`ResponseParseError`."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResponseParseError(f"not DICOM JSON: {e} in {_excerpt(body)}") from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]  # some servers wrap the dataset in an array
    if not isinstance(data, dict):
        raise ResponseParseError(f"DICOM JSON must be an object, got {_excerpt(body)}")
    return _from_attributes(_JsonDataset(data, "response"))


def parse_xml(body: bytes) -> StoreResponse:
    """Read a Native DICOM Model Store Instances Response; raise :class:`ResponseParseError`."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ResponseParseError(f"not XML: {e} in {_excerpt(body)}") from None
    if _local(root.tag) != "NativeDicomModel":
        raise ResponseParseError(f"XML root is <{_local(root.tag)}>, not <NativeDicomModel>")
    return _from_attributes(_XmlDataset(root, "response"))


def _excerpt(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body) > 80 else "")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _JsonDataset:
    def __init__(self, data: dict[str, Any], where: str) -> None:
        self._data = {str(k).upper(): v for k, v in data.items()}
        self.where = where

    def values(self, tag: str) -> list[Any]:
        element = self._data.get(tag)
        if element is None:
            return []
        if not isinstance(element, dict):
            raise ResponseParseError(f"{self.where}: {KEYWORDS[tag]} ({tag}) is not an object")
        values = element.get("Value") or []
        if not isinstance(values, list):
            raise ResponseParseError(f"{self.where}: {KEYWORDS[tag]} ({tag}) Value is not a list")
        return values

    def items(self, tag: str) -> list[_JsonDataset]:
        out = []
        for n, item in enumerate(self.values(tag), start=1):
            if not isinstance(item, dict):
                raise ResponseParseError(f"{self.where}: {KEYWORDS[tag]} item {n} is not an object")
            out.append(_JsonDataset(item, f"{KEYWORDS[tag]} item {n}"))
        return out


class _XmlDataset:
    def __init__(self, node: ET.Element, where: str) -> None:
        self._nodes: dict[str, ET.Element] = {}
        for child in node:
            if _local(child.tag) == "DicomAttribute":
                self._nodes.setdefault(child.get("tag", "").upper(), child)
        self.where = where

    def values(self, tag: str) -> list[Any]:
        node = self._nodes.get(tag)
        if node is None:
            return []
        return [(v.text or "") for v in node if _local(v.tag) == "Value"]

    def items(self, tag: str) -> list[_XmlDataset]:
        node = self._nodes.get(tag)
        if node is None:
            return []
        return [
            _XmlDataset(item, f"{KEYWORDS[tag]} item {n}")
            for n, item in enumerate((c for c in node if _local(c.tag) == "Item"), start=1)
        ]


_Dataset = _JsonDataset | _XmlDataset


def _text(ds: _Dataset, tag: str, required: bool) -> str | None:
    values = ds.values(tag)
    if not values or values[0] in (None, ""):
        if required:
            raise ResponseParseError(f"{ds.where}: {KEYWORDS[tag]} ({tag}) is missing")
        return None
    if not isinstance(values[0], str):
        raise ResponseParseError(f"{ds.where}: {KEYWORDS[tag]} ({tag}) is not text")
    return values[0].strip()


def _code(ds: _Dataset, tag: str, required: bool) -> int | None:
    values = ds.values(tag)
    if not values or values[0] in (None, ""):
        if required:
            raise ResponseParseError(f"{ds.where}: {KEYWORDS[tag]} ({tag}) is missing")
        return None
    value = values[0]
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        code = int(value)
    except ValueError:
        raise ResponseParseError(
            f"{ds.where}: {KEYWORDS[tag]} ({tag}) {value!r} is not a number"
        ) from None
    if not 0 <= code <= 0xFFFF:
        raise ResponseParseError(f"{ds.where}: {KEYWORDS[tag]} ({tag}) {code} is not a US value")
    return code


def _from_attributes(ds: _Dataset) -> StoreResponse:
    referenced = tuple(
        ReferencedInstance(
            sop_class_uid=_text(i, REFERENCED_SOP_CLASS_UID, False) or "",
            sop_instance_uid=_text(i, REFERENCED_SOP_INSTANCE_UID, True) or "",
            retrieve_url=_text(i, RETRIEVE_URL, False),
            warning_reason=_code(i, WARNING_REASON, False),
        )
        for i in ds.items(REFERENCED_SOP_SEQUENCE)
    )
    failed = tuple(
        FailedInstance(
            sop_class_uid=_text(i, REFERENCED_SOP_CLASS_UID, False) or "",
            sop_instance_uid=_text(i, REFERENCED_SOP_INSTANCE_UID, True) or "",
            failure_reason=_code(i, FAILURE_REASON, True) or 0,
        )
        for i in ds.items(FAILED_SOP_SEQUENCE)
    )
    other = tuple(_code(i, FAILURE_REASON, True) or 0 for i in ds.items(OTHER_FAILURES_SEQUENCE))
    return StoreResponse(_text(ds, RETRIEVE_URL, False), referenced, failed, other)
