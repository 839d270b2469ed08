"""dcmQueue and dcmExportRule entries → ``[queues.NAME]`` and ``[[rules]]`` tables.

A queue attribute absent from the LDIF gets dcm4chee's *class* default
(``QueueDescriptor``: no retries, PT1M, 100 %, no cap, keep tasks), written out
explicitly because stowpair's own defaults are dcm4chee's *default-config* values.
"""

from __future__ import annotations

from stowpair.config.durations import parse_duration
from stowpair.config.ldif import LdifRecord
from stowpair.config.toml_writer import Table, Value

#: (TOML key, LDAP attribute, kind, dcm4chee class default)
QUEUE_ATTRIBUTES: tuple[tuple[str, str, str, Value], ...] = (
    ("max_tasks_parallel", "dcmMaxTasksParallel", "int", 1),
    ("max_retries", "dcmMaxRetries", "int", 0),
    ("retry_delay", "dcmRetryDelay", "duration", "PT1M"),
    ("retry_delay_multiplier", "dcmRetryDelayMultiplier", "int", 100),
    ("max_retry_delay", "dcmMaxRetryDelay", "duration", "none"),
    ("retry_on_warning", "dcmRetryOnWarning", "bool", False),
    ("purge_completed_delay", "dcmPurgeQueueMessageCompletedDelay", "duration", "none"),
    ("purge_failed_delay", "dcmPurgeQueueMessageFailedDelay", "duration", "none"),
    ("purge_warning_delay", "dcmPurgeQueueMessageWarningDelay", "duration", "none"),
    ("purge_canceled_delay", "dcmPurgeQueueMessageCanceledDelay", "duration", "none"),
)
#: Queue attributes of dcm4chee's JMS era (up to 5.23), ignored since its 5.24 task
#: scheduler, and what stowpair does instead.
OBSOLETE_QUEUE_ATTRIBUTES = (
    (
        "dcmMaxQueueSize",
        "dcm4chee ignores it since 5.24 and stowpair's queues have no size limit",
    ),
    (
        "dcmRetryInProcessOnStartup",
        "dcm4chee ignores it since 5.24; tasks found IN PROCESS at start-up always run"
        " again (docs/queue.md)",
    ),
)
#: dcm4chee's default-config values (docs/dcm4chee.md, "Exporter, Queue and Export Rule
#: attributes"), used for queues the LDIF lacks.
DEFAULT_CONFIG_QUEUE: tuple[tuple[str, Value], ...] = (
    ("max_tasks_parallel", 1),
    ("max_retries", 10),
    ("retry_delay", "PT30S"),
    ("retry_delay_multiplier", 200),
    ("max_retry_delay", "PT10M"),
    ("retry_on_warning", False),
    ("purge_completed_delay", "P1D"),
)


def _convert(kind: str, text: str) -> Value | None:
    """The TOML value for an LDAP value, or None when it does not parse."""
    if kind == "int":
        return int(text) if text.isascii() and text.isdigit() else None
    if kind == "bool":
        return {"TRUE": True, "FALSE": False}.get(text.upper())
    try:
        parse_duration(text)
    except ValueError:
        return None
    return text


def queue_table(record: LdifRecord, warnings: list[str]) -> Table | None:
    name = record.first("dcmQueueName")
    if not name:
        warnings.append(f"{record.where}: dn {record.dn}: dcmQueue without dcmQueueName; skipped")
        return None
    table = Table(("queues", name), comments=[f"{record.where}: {record.dn}"])
    for key, attribute, kind, default in QUEUE_ATTRIBUTES:
        text = record.first(attribute)
        value = _convert(kind, text) if text is not None else None
        if text is not None and value is None:
            warnings.append(
                f'{record.where}: queue "{name}": {attribute} {text!r} is not '
                f"a valid {kind}; dcm4chee's default {default} written instead"
            )
        if value is None:
            table.add(key, default, f"{attribute} absent: dcm4chee default")
        else:
            table.add(key, value)
    if record.values("dcmSchedule"):
        table.add("schedules", record.values("dcmSchedule"))
    if (record.first("dicomInstalled") or "").upper() == "FALSE":
        table.add("installed", False)
    if record.first("dicomDescription"):
        table.add("description", record.first("dicomDescription") or "")
    for attribute, meaning in OBSOLETE_QUEUE_ATTRIBUTES:
        if record.first(attribute) is not None:
            warnings.append(
                f'{record.where}: queue "{name}": {attribute} {record.first(attribute)!r} '
                f"is not imported: {meaning}"
            )
    return table


def default_queue(name: str) -> Table:
    """A queue named by an exporter but missing from the LDIF."""
    table = Table(
        ("queues", name),
        comments=[
            f"queue {name} is named by an exporter but not defined in the LDIF:",
            "written with dcm4chee's default-config values.",
        ],
    )
    for key, value in DEFAULT_CONFIG_QUEUE:
        table.add(key, value)
    return table


def rule_table(record: LdifRecord, warnings: list[str]) -> Table | None:
    name = record.first("cn")
    label = f'{record.where}: rule "{name}"'
    exporters = record.values("dcmExporterID")
    if not name or not exporters:
        warnings.append(
            f"{record.where}: dn {record.dn}: dcmExportRule needs cn and dcmExporterID; skipped"
        )
        return None
    table = Table(("rules",), array=True, comments=[f"{record.where}: {record.dn}"])
    table.add("name", name)
    entity = record.first("dcmEntity")
    if entity is None:
        warnings.append(f"{label}: no dcmEntity; Study written")
    table.add("entity", entity or "Study")
    table.add("exporters", exporters)
    if record.values("dcmProperty"):
        table.add("conditions", record.values("dcmProperty"))
    if record.first("dcmDuration"):
        table.add("delay", record.first("dcmDuration") or "")
    if record.values("dcmSchedule"):
        table.add("schedules", record.values("dcmSchedule"))
    for attribute in ("dcmExportPreviousEntity", "dcmExportReoccurredInstances"):
        if record.first(attribute):
            warnings.append(f"{label}: {attribute} is not supported; ignored")
    return table
