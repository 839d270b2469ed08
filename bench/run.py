"""stowpair benchmark: each scenario's pairs run alternately, medians reported.

    python bench/run.py            # full: S1 1,000 x 100 KB, S2 20 x 50 MB, S3 200 SV1,
                                   # D1/D2 (DICOM C-STORE) on the S1 study
    python bench/run.py --quick    # smoke run, under a minute
    python bench/run.py --only D1 D2   # only the DICOM scenarios
    python bench/run.py --only C1      # S1's instances as 20 studies, queued, on
                                       # 1 SQLite node and 1, 2, 3 PostgreSQL nodes
    python bench/run.py --only S1 S2 S3 S4 S6 S7 S8 --baseline bench/results/<before>.json
                                       # issue 17's scenarios, CPU judged against a run

Writes bench/results/<timestamp>.json and prints a Markdown table. Peers (Orthanc, nginx,
dcmtk) come from Debian; a pair whose peer is missing is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data, report
from bench import pairs as pairlib
from bench.targets import judge
from tests.support import peers

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Sizes:
    s1_instances: int = 1000
    s1_kb: int = 100
    s2_instances: int = 20
    s2_kb: int = 50 * 1024
    s3_instances: int = 200
    s3_kb: int = 100
    #: S4: the "2 GB study" for peak RSS (0 skips it).
    s4_instances: int = 20
    s4_kb: int = 100 * 1024
    #: S6: studies of these sizes, instances of ~s6_kb
    s6_sizes: tuple[int, ...] = (1000, 5000, 10000)
    s6_kb: int = 20
    #: S7: tasks in the task store
    s7_tasks: int = 100_000
    #: S8: concurrent clients, each one request of s8_per_client instances of ~s1_kb
    s8_clients: int = 200
    s8_per_client: int = 10
    runs: int = 3


QUICK = Sizes(
    s1_instances=100,
    s2_instances=3,
    s2_kb=10 * 1024,
    s3_instances=20,
    s4_instances=0,
    s6_sizes=(100, 500),
    s7_tasks=10_000,
    s8_clients=20,
    runs=1,
)


@dataclass
class Row:
    scenario: str
    pair: str
    runs: list[dict[str, float]] = field(default_factory=list)
    skipped: str = ""

    def median(self, key: str) -> float:
        values = [r[key] for r in self.runs if key in r]
        return statistics.median(values) if values else float("nan")


def _prepare(work: Path, sizes: Sizes, only: set[str] | None) -> dict[str, list[Path]]:
    """The data sets of the scenarios asked for (all without ``only``)."""
    t0 = time.monotonic()

    def wanted(*scenarios: str) -> bool:
        return not only or any(
            s in only or any(p.name in only for p in pairlib.pairs_for(s)) for s in scenarios
        )

    sets: dict[str, list[Path]] = {}
    if wanted("S1", "D1", "D2"):
        sets["S1"] = data.make_study(work / "s1", sizes.s1_instances, sizes.s1_kb)
        sets["D1"] = sets["D2"] = sets["S1"]  # C-STORE in / out: the same study as S1
    if wanted("S2"):
        sets["S2"] = data.make_study(work / "s2", sizes.s2_instances, sizes.s2_kb, seed=2)
    if wanted("S3"):
        s3_raw = data.make_study(work / "s3raw", sizes.s3_instances, sizes.s3_kb, seed=3)
        try:
            sets["S3"] = data.compress_sv1(s3_raw, work / "s3")
        except RuntimeError as e:
            print(f"S3 skipped: {e}", file=sys.stderr)
    if wanted("C1"):
        # the cluster: S1's instance count and size, as 20 studies (one export task each)
        per_study = max(1, sizes.s1_instances // 20)
        sets["C1"] = data.make_studies(work / "c1", 20, per_study, sizes.s1_kb, seed=5)
    if sizes.s4_instances and wanted("S4"):
        sets["S4"] = data.make_study(work / "s4", sizes.s4_instances, sizes.s4_kb, seed=4)
    if wanted("S6"):
        sets["S6"] = []
        for n, count in enumerate(sizes.s6_sizes):
            sets["S6"] += data.make_study(work / f"s6-{n}", count, sizes.s6_kb, seed=60 + n)
    if wanted("S7"):
        sets["S7"] = []  # the tasks are written into the task store by the pair
    if wanted("S8"):
        count = sizes.s8_clients * sizes.s8_per_client
        sets["S8"] = data.make_study(work / "s8", count, sizes.s1_kb, seed=8)
    print(f"data ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return sets


def run(sizes: Sizes, only: set[str] | None) -> list[Row]:
    pairlib.S6_SIZES = sizes.s6_sizes
    pairlib.S7_TASKS = sizes.s7_tasks
    pairlib.S8_CLIENTS = sizes.s8_clients
    work = Path(tempfile.mkdtemp(prefix="stowpair-bench-"))
    rows: list[Row] = []
    try:
        sets = _prepare(work, sizes, only)
        for scenario, files in sets.items():
            pairs = pairlib.pairs_for(scenario)
            if only:
                pairs = [p for p in pairs if p.name in only or scenario in only]
            rows.extend(_run_scenario(scenario, files, pairs, work / f"run-{scenario}", sizes.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _run_scenario(
    scenario: str, files: list[Path], pairs: list[pairlib.Pair], work: Path, runs: int
) -> list[Row]:
    rows = {p.name: Row(scenario, p.name) for p in pairs}
    ready: list[pairlib.Pair] = []
    for pair in pairs:
        try:
            pair.setup(files, work / pair.slug)
            ready.append(pair)
        except Exception as e:  # a missing peer skips that pair only
            try:
                pair.teardown()  # what it started before failing
            except Exception:
                pass
            rows[pair.name].skipped = str(e).splitlines()[0]
            print(f"{scenario} {pair.name}: skipped: {rows[pair.name].skipped}", file=sys.stderr)
    try:
        for i in range(runs):
            for pair in ready:  # alternate the pairs within each round
                try:
                    m = pair.measure()
                except Exception as e:
                    rows[pair.name].skipped = f"failed: {e}".splitlines()[0]
                    print(f"{scenario} {pair.name} run {i}: {e}", file=sys.stderr)
                    continue
                rows[pair.name].runs.append(m)
                print(f"{scenario} {pair.name} run {i}: {m}", file=sys.stderr)
    finally:
        for pair in ready:
            pair.teardown()
    return list(rows.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--runs", type=int, help="rounds per scenario (default 3, quick 1)")
    parser.add_argument("--only", nargs="*", help="scenario names (S1) or pair names")
    parser.add_argument("--chart", type=Path, help="also draw S1/S2 rates to this PNG")
    parser.add_argument(
        "--baseline", type=Path, help="an earlier results file: the CPU target is judged on it"
    )
    parser.add_argument("--note", default="", help="what this run is, kept in the results file")
    parser.add_argument(
        "--judge",
        type=Path,
        help="measure nothing: judge the targets of this results file again, with --baseline"
        " (its verdicts are rewritten by bench/targets.py from its own rows)",
    )
    args = parser.parse_args()
    if args.judge:
        return _judge_again(args.judge, args.baseline)
    # SIGTERM ends the run through its finally blocks: the peers started are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Peers get two minutes to start: on a 2-core machine shared with test runs (load
    # average above 10) twistd took longer than the default 15 s to import and listen.
    peers.START_TIMEOUT = 120.0
    sizes = QUICK if args.quick else Sizes()
    if args.runs:
        sizes.runs = args.runs
    started = time.strftime("%Y%m%dT%H%M%S")
    load_start = os.getloadavg()
    commit = _commit()  # at the start: commits made while it runs are not what it measured
    rows = [asdict(r) for r in run(sizes, set(args.only) if args.only else None)]
    load_end = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started}.json"
    baseline = json.loads(args.baseline.read_text())["rows"] if args.baseline else None
    result = {
        "started": started,
        "note": args.note,
        "commit": commit,
        "baseline": args.baseline.stem if args.baseline else None,
        "load_average": {"start": load_start, "end": load_end},
        "sizes": asdict(sizes),
        "quick": args.quick,
        "rows": rows,
        "targets": judge(rows, baseline),
    }
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(report.results_table(result))
    print()
    print(report.targets_table(result))
    print(f"\nresults: {out}")
    if args.chart:
        from bench.chart import draw

        draw(json.loads(out.read_text()), args.chart)
        print(f"chart: {args.chart}")
        if any(r["scenario"] == "S6" and r["runs"] for r in rows):
            from bench.chart import draw_s6

            s6_png = args.chart.with_name(f"{args.chart.stem}-s6.png")
            draw_s6(result, s6_png)
            print(f"chart: {s6_png}")
    return 0


def _judge_again(path: Path, baseline: Path | None) -> int:
    """The targets of a finished run judged by bench/targets.py again, e.g. against a
    baseline run that ended after it; the file records which baseline."""
    result = json.loads(path.read_text())
    rows = json.loads(baseline.read_text())["rows"] if baseline else None
    result["targets"] = judge(result["rows"], rows)
    result["baseline"] = baseline.stem if baseline else None
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(report.targets_table(result))
    return 0


def _commit() -> str:
    """The commit measured (with "+changes" when the work tree differs from it)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    return head + ("+changes" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
