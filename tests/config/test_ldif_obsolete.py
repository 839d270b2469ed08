"""LDIF attributes of dcm4chee's JMS era: each one is named in a warning, none silently
dropped; a queue's description is imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.config.ldif_import import import_ldif
from stowpair.config.loader import load_config

ARC = "dicomDeviceName=dcm4chee-arc,cn=Devices,cn=DICOM Configuration,dc=dcm4che,dc=org"
LDIF = f"""\
dn: dcmWebAppName=W,{ARC}
objectClass: dcmWebApp
dcmWebAppName: W
dcmWebServicePath: /stowrs
dcmWebServiceClass: STOW_RS

dn: dcmExporterID=E1,{ARC}
objectClass: dcmExporter
dcmExporterID: E1
dcmURI: stow:W
dcmQueueName: Export1
dicomAETitle: ARC
dcmExportPriority: 4

dn: dcmQueueName=Export1,{ARC}
objectClass: dcmQueue
dcmQueueName: Export1
dicomDescription: Export Tasks
dcmMaxQueueSize: 10000
dcmRetryInProcessOnStartup: TRUE
"""


@pytest.fixture
def imported(tmp_path: Path) -> tuple[str, list[str]]:
    path = tmp_path / "old.ldif"
    path.write_text(LDIF, encoding="utf-8")
    return import_ldif([path])


@pytest.mark.parametrize(
    ("attribute", "value", "says"),
    [
        ("dcmExportPriority", "'4'", "tasks run in scheduled-time order"),
        ("dcmMaxQueueSize", "'10000'", "stowpair's queues have no size limit"),
        ("dcmRetryInProcessOnStartup", "'TRUE'", "IN PROCESS at start-up always run again"),
    ],
    ids=["priority", "max-queue-size", "retry-in-process"],
)
def test_obsolete_attribute_is_named_in_a_warning(
    imported: tuple[str, list[str]], attribute: str, value: str, says: str
) -> None:
    """When an LDIF carries a JMS-era attribute, one warning names it, its value, that
    dcm4chee ignores it since 5.24, and what stowpair does instead."""
    found = [w for w in imported[1] if attribute in w]
    assert len(found) == 1
    assert f"{attribute} {value} is not imported" in found[0]
    assert "since 5.24" in found[0] and says in found[0]
    assert attribute not in imported[0]


def test_queue_description_is_imported(imported: tuple[str, list[str]], tmp_path: Path) -> None:
    """When a queue has dicomDescription, it becomes the queue's description."""
    out = tmp_path / "imported.toml"
    out.write_text(imported[0], encoding="utf-8")
    assert load_config(out).queues["Export1"].description == "Export Tasks"
