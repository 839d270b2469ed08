"""``[exporters.ID]``, ``[queues.NAME]`` and ``[[rules]]`` tables.

Attributes and defaults: docs/dcm4chee.md, "Exporter, Queue and Export Rule attributes".
"""

from __future__ import annotations

import re
from typing import Any

from stowpair.config.checks import Checker, Section, known, show
from stowpair.config.model import Condition, Exporter, ExportRule, Queue
from stowpair.config.webapps import property_text

EXPORTER_KEYS = ("uri", "queue", "ae_title", "description", "schedules", "properties")
EXPORTER_SCHEMES = ("stow", "stowrs", "dicom")
QUEUE_KEYS = (
    "max_tasks_parallel",
    "max_retries",
    "retry_delay",
    "max_retry_delay",
    "retry_delay_multiplier",
    "retry_on_warning",
    "schedules",
    "purge_completed_delay",
    "purge_failed_delay",
    "purge_warning_delay",
    "purge_canceled_delay",
    "installed",
    "description",
)
RULE_KEYS = ("name", "entity", "exporters", "conditions", "delay", "schedules")
ENTITIES = ("Study", "Series", "Instance")
#: Condition names dcm4chee evaluates besides DICOM attributes (ArchiveAEExtension rules).
SPECIAL_CONDITIONS = (
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "SendingHostname",
    "ReceivingHostname",
)
_CONDITION = re.compile(r"\s*([A-Za-z0-9.]+)\s*(!?=)(.*)")
_TAG = re.compile(r"[0-9A-Fa-f]{8}")


def read_exporter(checker: Checker, exporter_id: str, data: Any, default_ae: str) -> Exporter:
    section = checker.section(data, ("exporters", exporter_id), f'exporter "{exporter_id}"')
    section.allow(EXPORTER_KEYS)
    uri = section.string("uri", "", required=True)
    scheme, _, webapp = uri.partition(":")
    if uri and (scheme not in EXPORTER_SCHEMES or not webapp):
        section.error(
            "uri",
            f"uri {show(uri)} is not stow:<webapp>, stowrs:<webapp> or dicom:<remote AE title>",
        )
    properties: list[tuple[str, str]] = []
    table = section.table("properties")
    for name, raw in (table.data if table else {}).items():
        value = property_text(raw)
        if value is None and table:
            table.error(name, f'property "{name}" must be a string, not {show(raw)}')
        else:
            properties.append((name, value or ""))
    return Exporter(
        exporter_id=exporter_id,
        uri=uri,
        queue_name=section.string("queue", "", required=True),
        ae_title=section.string("ae_title", default_ae),
        description=section.string("description", ""),
        schedules=section.schedules(),
        properties=tuple(properties),
    )


def read_queue(checker: Checker, name: str, data: Any) -> Queue:
    section = checker.section(data, ("queues", name), f'queue "{name}"')
    section.allow(QUEUE_KEYS)
    default = Queue(name)

    def purge(key: str, value: float | None) -> float | None:
        return section.duration(key, value, none_ok=True)

    return Queue(
        name=name,
        max_tasks_parallel=section.integer("max_tasks_parallel", default.max_tasks_parallel, 1),
        max_retries=section.integer("max_retries", default.max_retries, 0),
        retry_delay=section.duration("retry_delay", default.retry_delay) or 0.0,
        max_retry_delay=section.duration("max_retry_delay", default.max_retry_delay, True),
        retry_delay_multiplier=section.integer(
            "retry_delay_multiplier", default.retry_delay_multiplier, 100
        ),
        retry_on_warning=section.boolean("retry_on_warning", default.retry_on_warning),
        schedules=section.schedules(),
        purge_completed_delay=purge("purge_completed_delay", default.purge_completed_delay),
        purge_failed_delay=purge("purge_failed_delay", default.purge_failed_delay),
        purge_warning_delay=purge("purge_warning_delay", default.purge_warning_delay),
        purge_canceled_delay=purge("purge_canceled_delay", default.purge_canceled_delay),
        installed=section.boolean("installed", default.installed),
        description=section.string("description", ""),
    )


def _attribute_known(name: str) -> bool:
    from pydicom.datadict import tag_for_keyword

    if name in SPECIAL_CONDITIONS:
        return True
    return all(_TAG.fullmatch(p) or tag_for_keyword(p) is not None for p in name.split("."))


def parse_condition(text: str) -> Condition:
    """``Modality=CT|MR`` or ``SendingApplicationEntityTitle!=X``; ValueError if bad."""
    match = _CONDITION.fullmatch(text)
    if match is None or not match.group(3).strip():
        raise ValueError(
            f'condition "{text}" is not Attribute=value[|value...] or Attribute!=value'
        )
    attribute, operator, values = match.groups()
    if not _attribute_known(attribute):
        raise ValueError(
            f'condition "{text}": "{attribute}" is not a DICOM keyword, an 8-digit tag, '
            f"or one of {known(SPECIAL_CONDITIONS)}"
        )
    return Condition(
        attribute=attribute,
        values=tuple(v.strip() for v in values.split("|")),
        negate=operator == "!=",
    )


def read_rule(checker: Checker, index: int, data: Any) -> ExportRule:
    label = f"rule #{index + 1}"
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        label = f'rule "{data["name"]}"'
    section: Section = checker.section(data, ("rules", index), label)
    section.allow(RULE_KEYS)
    entity = section.string("entity", "Study", required="(Study, Series or Instance)")
    if entity not in ENTITIES:
        section.error("entity", f"entity {show(entity)} is not one of {known(ENTITIES)}")
        entity = "Study"
    exporters = section.strings("exporters")
    if not exporters:
        section.error("exporters", 'exporters must list at least one exporter ID, e.g. ["X"]')
    conditions: list[Condition] = []
    for text in section.strings("conditions"):
        try:
            conditions.append(parse_condition(text))
        except ValueError as e:
            section.error("conditions", str(e))
    return ExportRule(
        name=section.string("name", f"rule{index + 1}", required=True),
        entity=entity,  # type: ignore[arg-type]  # checked against ENTITIES above
        exporter_ids=exporters,
        conditions=tuple(conditions),
        delay=section.duration("delay", 0.0) or 0.0,
        schedules=section.schedules(),
    )
