"""TEMPORARY stand-in for ``stowpair.dicom.response`` (the receiver helper's module).

Same names and shapes; removed when the receiver branch is merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree


class ResponseParseError(ValueError):
    """The body is not a Store Instances Response."""


@dataclass(frozen=True)
class ReferencedInstance:
    sop_class_uid: str
    sop_instance_uid: str
    retrieve_url: str | None = None
    warning_reason: int | None = None


@dataclass(frozen=True)
class FailedInstance:
    sop_class_uid: str
    sop_instance_uid: str
    failure_reason: int | None = None


@dataclass(frozen=True)
class StoreResponse:
    retrieve_url: str | None = None
    referenced: list[ReferencedInstance] = field(default_factory=list)
    failed: list[FailedInstance] = field(default_factory=list)
    other_failures: list[int] = field(default_factory=list)


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value") or [None]
    return values[0]


def parse_json(body: bytes) -> StoreResponse:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ResponseParseError(f"not JSON: {e}") from None
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    if not isinstance(doc, dict):
        raise ResponseParseError("not a DICOM JSON object")
    try:
        referenced = [
            ReferencedInstance(
                _value(i, "00081150"),
                _value(i, "00081155"),
                _value(i, "00081190"),
                _value(i, "00081196"),
            )
            for i in doc.get("00081199", {}).get("Value") or []
        ]
        failed = [
            FailedInstance(_value(i, "00081150"), _value(i, "00081155"), _value(i, "00081197"))
            for i in doc.get("00081198", {}).get("Value") or []
        ]
        other = [_value(i, "00081197") for i in doc.get("0008119A", {}).get("Value") or []]
    except (AttributeError, TypeError) as e:
        raise ResponseParseError(f"malformed DICOM JSON: {e}") from None
    return StoreResponse(_value(doc, "00081190"), referenced, failed, other)


def _xml_items(root: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    for attr in root.findall("DicomAttribute"):
        if attr.get("tag") == tag:
            return attr.findall("Item")
    return []


def _xml_value(item: ElementTree.Element, tag: str) -> str | None:
    for attr in item.findall("DicomAttribute"):
        if attr.get("tag") == tag:
            value = attr.find("Value")
            return value.text if value is not None else None
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def parse_xml(body: bytes) -> StoreResponse:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise ResponseParseError(f"not XML: {e}") from None
    if root.tag != "NativeDicomModel":
        raise ResponseParseError(f"root element is {root.tag}, not NativeDicomModel")
    referenced = [
        ReferencedInstance(
            _xml_value(i, "00081150") or "",
            _xml_value(i, "00081155") or "",
            _xml_value(i, "00081190"),
            _int(_xml_value(i, "00081196")),
        )
        for i in _xml_items(root, "00081199")
    ]
    failed = [
        FailedInstance(
            _xml_value(i, "00081150") or "",
            _xml_value(i, "00081155") or "",
            _int(_xml_value(i, "00081197")),
        )
        for i in _xml_items(root, "00081198")
    ]
    other = [_int(_xml_value(i, "00081197")) or 0 for i in _xml_items(root, "0008119A")]
    return StoreResponse(_xml_value(root, "00081190"), referenced, failed, other)
