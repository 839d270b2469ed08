"""docs/benchmarks.md quotes only committed results files, through generated tables."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from bench import report
from bench.targets import judge

ROOT = Path(__file__).resolve().parent.parent


def test_generated_blocks_equal_what_the_committed_results_files_generate() -> None:
    text = report.DOC.read_text()
    assert "<!-- bench:targets" in text
    assert report.render(text) == text, "run: python bench/report.py"


def test_every_results_file_the_docs_name_is_committed() -> None:
    named = set(re.findall(r"\b(\d{8}T\d{6})\b", report.DOC.read_text()))
    tracked = subprocess.run(
        ["git", "ls-files", "bench/results"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    committed = {Path(p).stem for p in tracked}
    assert named, "the docs name the runs they quote"
    assert named <= committed, f"not committed: {sorted(named - committed)}"


def test_targets_tables_copy_the_verdicts_of_the_results_file() -> None:
    for name in re.findall(r"<!-- bench:targets (\S+) -->", report.DOC.read_text()):
        result = report.load(name)
        table = report.targets_table(result)
        for check in result["targets"]:
            verdict = check if isinstance(check, str) else check["verdict"]
            assert verdict in table


def _row(scenario: str, pair: str, **figures: float) -> dict[str, object]:
    return {"scenario": scenario, "pair": pair, "runs": [figures], "skipped": ""}


def test_a_verdict_is_judged_from_the_medians_and_written_as_met_or_not_met() -> None:
    rows = [
        _row("S1", "stowpair→stowrsd c1 b1", instances_per_s=150.0),
        _row("S1", "stowpair→stowrsd c4 b10", instances_per_s=240.0),
        _row("S1", "orthanc→orthanc", instances_per_s=100.0),
    ]
    checks = {c["figure"].split(" ÷")[0]: c for c in judge(rows)}
    defaults = checks["S1 stowpair→stowrsd, defaults (c1 b1)"]
    assert defaults["verdict"] == "met"
    assert defaults["measured"] == "150.0 / 100.0 = 1.50×"
    assert checks["S1 stowpair→stowrsd, best documented settings (c4 b10)"]["verdict"] == (
        "NOT met"
    )
    assert checks["S1 Orthanc→stowrsd"]["verdict"] == "not measured"


def test_cpu_is_judged_against_the_baseline_only() -> None:
    before = [_row("S1", "orthanc→stowrsd", receiver_cpu_s_per_1k=10.0)]
    after = [_row("S1", "orthanc→stowrsd", receiver_cpu_s_per_1k=4.0)]
    figure = "CPU s per 1,000 S1 instances, receiver (orthanc→stowrsd)"
    alone = next(c for c in judge(after) if c["figure"] == figure)
    assert alone["verdict"] == "no baseline"
    halved = next(c for c in judge(after, before) if c["figure"] == figure)
    assert halved["verdict"] == "met"
    assert halved["measured"] == "4.00 s, before 10.00 s = 0.40×"
    json.dumps(judge(after, before))  # what the run writes into its file
