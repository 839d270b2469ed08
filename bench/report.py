"""Tables of docs/benchmarks.md, generated from committed results files.

    python bench/report.py           # rewrite the generated blocks of docs/benchmarks.md
    python bench/report.py --check   # exit 1 when a block differs from its results file

A generated block is the text between ``<!-- bench:KIND RESULT [ARGS] -->`` and
``<!-- /bench -->``. KIND is ``run`` (when, where, the load), ``table`` (medians; ARGS:
scenarios to keep), ``targets`` (the verdicts the run wrote, copied, never judged here)
or ``compare`` (ARGS: the "after" result; before/after medians side by side). RESULT is
a file name in bench/results without ``.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
BLOCK = re.compile(r"(<!-- bench:(\w+) ([^>]*?) -->\n)(.*?)(<!-- /bench -->)", re.S)

Result = dict[str, Any]

#: Figures of a row besides the columns, with how they are written.
OTHER = {
    "transcode_worker_rss_mb": "transcoding worker peak RSS {:.0f} MB",
    "header_worker_rss_mb": "header worker peak RSS {:.0f} MB",
    "receiver_total_rss_mb": "stowrsd with its workers (sum of peak RSS) {:.0f} MB",
    "receiver_total_mb": "stowrsd with its workers (peak RSS + their PSS) {:.0f} MB",
    "page_ms": "first page {:.1f} ms",
    "count_ms": "/count {:.1f} ms",
}


def load(name: str) -> Result:
    result: Result = json.loads((RESULTS / f"{name}.json").read_text())
    return result


def _median(row: dict[str, Any], key: str) -> float | None:
    values = [r[key] for r in row["runs"] if key in r and r[key] == r[key]]
    return statistics.median(values) if values else None


def _cell(row: dict[str, Any], key: str, fmt: str = "{:.1f}") -> str:
    value = _median(row, key)
    return "–" if value is None else fmt.format(value)


def _other(row: dict[str, Any]) -> str:
    parts = [fmt.format(v) for key, fmt in OTHER.items() if (v := _median(row, key)) is not None]
    if any("errors" in r for r in row["runs"]):
        parts.append(f"errors {max(r['errors'] for r in row['runs']):.0f} (most in a round)")
    return ", ".join(parts)


def results_table(result: Result, scenarios: list[str] | None = None) -> str:
    rows = [r for r in result["rows"] if not scenarios or r["scenario"] in scenarios]
    cpu = any("sender_cpu_s_per_1k" in x or "receiver_cpu_s_per_1k" in x
              for r in rows for x in r["runs"])  # fmt: skip
    other = any(_other(r) for r in rows)
    head = ["scenario", "pair", "instances/s", "MB/s"]
    head += ["sender CPU s/1k", "receiver CPU s/1k"] if cpu else []
    head += ["sender peak RSS MB", "receiver peak RSS MB"] + (["other"] if other else [])
    lines = ["| " + " | ".join(head) + " | runs |", "|---|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        if not r["runs"]:
            cells = ["–"] * (len(head) - 2)
            lines.append(f"| {r['scenario']} | {r['pair']} | {' | '.join(cells)} "
                         f"| skipped: {r['skipped']} |")  # fmt: skip
            continue
        cells = [_cell(r, "instances_per_s"), _cell(r, "mb_per_s")]
        if cpu:
            cells += [_cell(r, "sender_cpu_s_per_1k", "{:.2f}"),
                      _cell(r, "receiver_cpu_s_per_1k", "{:.2f}")]  # fmt: skip
        cells += [_cell(r, "sender_rss_mb", "{:.0f}"), _cell(r, "receiver_rss_mb", "{:.0f}")]
        cells += [_other(r)] if other else []
        lines.append(f"| {r['scenario']} | {r['pair']} | {' | '.join(cells)} | {len(r['runs'])} |")
    return "\n".join(lines)


def targets_table(result: Result) -> str:
    checks = result["targets"]
    if checks and isinstance(checks[0], str):  # results files before verdicts had columns
        lines = ["| check, as the run wrote it |", "|---|"]
        return "\n".join(lines + [f"| {c} |" for c in checks])
    lines = ["| figure | measured | target | verdict |", "|---|---|---|---|"]
    for c in checks:
        verdict = f"**{c['verdict']}**" if c["verdict"] == "NOT met" else c["verdict"]
        lines.append(f"| {c['figure']} | {c['measured']} | {c['target']} | {verdict} |")
    return "\n".join(lines)


def run_line(result: Result) -> str:
    s = result["sizes"]
    what = "quick sizes" if result.get("quick") else "full sizes"
    text = f"Run `{result['started']}` ({what}, median of {s['runs']} rounds"
    if result.get("commit"):
        text += f", commit `{result['commit']}`"
    text += ")"
    if result.get("note"):
        text += f": {result['note']}"
    if result.get("baseline"):
        text += f"; the CPU target is judged against run `{result['baseline']}`"
    load_avg = result.get("load_average")
    if load_avg:
        start, end = (", ".join(f"{x:.2f}" for x in load_avg[k]) for k in ("start", "end"))
        text += f". Load average (1, 5, 15 min) at start {start}, at end {end}"
    return text + "."


def compare_table(before: Result, after: Result) -> str:
    lines = [
        "| scenario | pair | instances/s before | after | after ÷ before "
        "| sender CPU s/1k before | after | receiver CPU s/1k before | after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    old = {(r["scenario"], r["pair"]): r for r in before["rows"] if r["runs"]}
    for r in after["rows"]:
        b = old.get((r["scenario"], r["pair"]))
        if b is None or not r["runs"]:
            continue
        x, y = _median(b, "instances_per_s"), _median(r, "instances_per_s")
        ratio = f"{y / x:.2f}×" if x and y else "–"
        cells = [_cell(b, "instances_per_s"), _cell(r, "instances_per_s"), ratio]
        for key in ("sender_cpu_s_per_1k", "receiver_cpu_s_per_1k"):
            cells += [_cell(b, key, "{:.2f}"), _cell(r, key, "{:.2f}")]
        lines.append(f"| {r['scenario']} | {r['pair']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def block(kind: str, args: list[str]) -> str:
    result = load(args[0])
    if kind == "run":
        return run_line(result)
    if kind == "table":
        return results_table(result, args[1:] or None)
    if kind == "targets":
        return targets_table(result)
    if kind == "compare":
        return compare_table(result, load(args[1]))
    raise ValueError(f"unknown generated block kind {kind!r} (run, table, targets, compare)")


def render(text: str) -> str:
    def replace(m: re.Match[str]) -> str:
        return f"{m.group(1)}{block(m.group(2), m.group(3).split())}\n{m.group(5)}"

    return BLOCK.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on change")
    parser.add_argument("doc", nargs="?", type=Path, default=DOC)
    args = parser.parse_args()
    text = args.doc.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.doc}: generated blocks differ; run python bench/report.py")
            return 1
        return 0
    args.doc.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
