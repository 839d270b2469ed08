"""Three ``twistd -n stowpair`` nodes on loopback sharing one PostgreSQL database and one
storage folder, exporting to one ``twistd -n stowrsd`` (docs/cluster.md).

Every test gets its own scratch database of the machine's PostgreSQL (tests/postgres.py):
skipped when it cannot be reached, a failure under STOWPAIR_REQUIRE_PEERS=1.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.cluster import harness as c
from tests.reliability import harness as h

pytestmark = [pytest.mark.interop, pytest.mark.slow]

STUDIES, INSTANCES = 20, 50


def cluster(tmp_path: Path, url: str, nodes: int = 3, **node: object) -> tuple[c.Cluster, h.Proc]:
    dest = h.stowrsd(tmp_path, tmp_path / "dest")
    made = c.Cluster(tmp_path, url, f"http://127.0.0.1:{dest.port}/stowrs")  # type: ignore[attr-defined]
    for n in range(1, nodes + 1):
        made.add_node(f"node-{n}", **node)  # type: ignore[arg-type]
    return made, dest


def test_three_nodes_export_every_task_exactly_once(tmp_path: Path, postgres_url: str) -> None:
    """When three nodes share one queue and 1,000 instances in 20 studies are exported,
    every task completes after one attempt on one node, no two nodes hold a task at the
    same time (from their log events), and every instance arrives once, byte for byte."""
    nodes, dest = cluster(tmp_path, postgres_url, properties={"max-instances-per-request": "10"})
    dest.start()
    nodes.start()
    studies = nodes.load(STUDIES, INSTANCES, size_kb=8, seed=15)
    for n, study in enumerate(studies):  # each node's REST API triggers some
        nodes.export(nodes.nodes[n % 3], study)
    listing = nodes.wait_done(STUDIES, timeout=300)
    logs = [n.log for n in nodes.nodes]
    found = c.holds(logs)
    stored = h.receipts(tmp_path / "stowrsd.json")
    missing, differ = h.compare(nodes.storage, tmp_path / "dest")
    by_node = Counter(t["dicomDeviceName"] for t in listing)
    h.report(
        "cluster.three_nodes",
        {"studies": STUDIES, "instances": STUDIES * INSTANCES, "tasks_by_node": by_node,
         "receipts": sum(stored.values()), "holds": len(found)},
    )  # fmt: skip
    assert {t["status"] for t in listing} == {"COMPLETED"}
    assert all(t.get("failures", 0) == 0 for t in listing)
    assert len(found) == STUDIES and c.overlaps(found) == []
    assert {x.task_id for x in found} == {int(t["taskID"]) for t in listing}
    assert len(stored) == STUDIES * INSTANCES and max(stored.values()) == 1
    assert (missing, differ) == ([], [])
    assert set(by_node) <= {"node-1", "node-2", "node-3"}
    for node in nodes.nodes:  # REST filters by device name as dcm4chee does
        mine = c.rest_json(node.port, f"/dcm4chee-arc/monitor/export?dicomDeviceName={node.name}")
        assert len(mine) == by_node[node.name]


RULE = """
[[rules]]
name = "ForwardAll"
entity = "Study"
exporters = ["ToDest"]
delay = "PT3S"
"""


def test_export_rules_debounce_across_nodes(tmp_path: Path, postgres_url: str) -> None:
    """When the instances of one study arrive through three different nodes, the export
    rules make one task for the study, not one per node, and it sends every instance."""
    nodes, dest = cluster(tmp_path, postgres_url, rules=RULE)
    dest.start()
    nodes.start()
    files = sorted(c.generate_demo_study(tmp_path / "src", 12, size_kb=8, seed=16, study_no=0))
    for n, node in enumerate(nodes.nodes):
        c.stow(node.port, files[n::3])
    [task] = nodes.wait_done(1, timeout=120)
    stored = h.receipts(tmp_path / "stowrsd.json")
    assert task["status"] == "COMPLETED" and task["NumberOfInstances"] == 12
    assert len(stored) == 12 and max(stored.values()) == 1
    assert len(nodes.tasks()) == 1
