"""stowpair benchmark: each scenario's pairs run alternately, medians reported.

    python bench/run.py            # full: S1 1,000 x 100 KB, S2 20 x 50 MB, S3 200 SV1,
                                   # D1/D2 (DICOM C-STORE) on the S1 study
    python bench/run.py --quick    # smoke run, under a minute
    python bench/run.py --only D1 D2   # only the DICOM scenarios
    python bench/run.py --only C1      # S1's instances as 20 studies, queued, on
                                       # 1 SQLite node and 1, 2, 3 PostgreSQL nodes

Writes bench/results/<timestamp>.json and prints a Markdown table. Peers (Orthanc, nginx,
dcmtk) come from Debian; a pair whose peer is missing is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data
from bench import pairs as pairlib

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
    runs: int = 3


QUICK = Sizes(
    s1_instances=100, s2_instances=3, s2_kb=10 * 1024, s3_instances=20, s4_instances=0, runs=1
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
    print(f"data ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return sets


def run(sizes: Sizes, only: set[str] | None) -> list[Row]:
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


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | pair | instances/s | MB/s | sender peak RSS MB | receiver peak RSS MB "
        "| runs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r.runs:
            lines.append(f"| {r.scenario} | {r.pair} | – | – | – | – | skipped: {r.skipped} |")
            continue

        def cell(key: str, fmt: str = "{:.1f}", r: Row = r) -> str:
            v = r.median(key)
            return "–" if v != v else fmt.format(v)

        lines.append(
            f"| {r.scenario} | {r.pair} | {cell('instances_per_s')} | {cell('mb_per_s')} | "
            f"{cell('sender_rss_mb', '{:.0f}')} | {cell('receiver_rss_mb', '{:.0f}')} | "
            f"{len(r.runs)} |"
        )
    return "\n".join(lines)


TargetCheck = Callable[[dict[tuple[str, str], Row]], list[str]]


def targets(rows: list[Row]) -> list[str]:
    by = {(r.scenario, r.pair): r for r in rows}
    out = []

    def ratio(a: tuple[str, str], b: tuple[str, str], key: str, goal: float, label: str) -> None:
        if a in by and b in by and by[a].runs and by[b].runs:
            x = by[a].median(key) / by[b].median(key)
            verdict = "met" if x >= goal else "NOT met"
            out.append(f"{label}: {x:.2f}x (target >= {goal}x) {verdict}")
        else:
            out.append(f"{label}: not measured ({a[1]} or {b[1]} missing)")

    ratio(
        ("S1", "stowpair→stowrsd c4 b10"),
        ("S1", "orthanc→orthanc"),
        "instances_per_s",
        2.0,
        "S1 stowpair→stowrsd vs Orthanc→Orthanc (inst/s)",
    )
    ratio(
        ("S1", "stowpair→orthanc c4 b10"),
        ("S1", "orthanc→orthanc"),
        "instances_per_s",
        2.0,
        "S1 (same receiver) stowpair exporter→Orthanc vs Orthanc→Orthanc (inst/s)",
    )
    ratio(
        ("S2", "stowpair→stowrsd c1 b1 (--ignore)"),
        ("S2", "curl→nginx sink"),
        "mb_per_s",
        0.5,
        "S2 stowpair→stowrsd --ignore vs curl→nginx sink (MB/s)",
    )
    ratio(
        ("S2", "stowpair→stowrsd c1 b1"),
        ("S2", "cp + sync (same disk)"),
        "mb_per_s",
        0.5,
        "S2 stowpair→stowrsd storing with fsync vs cp + sync (MB/s)",
    )
    ratio(
        ("S3", "stowpair→stowrsd EVRLE"),
        ("S3", "dcmdjpeg"),
        "instances_per_s",
        0.8,
        "S3 stowpair decompress+send vs dcmdjpeg (inst/s)",
    )
    ratio(
        ("C1", "3 nodes, postgresql"),
        ("C1", "1 node, sqlite"),
        "instances_per_s",
        0.8,
        "C1 3 nodes sharing PostgreSQL vs 1 node on SQLite, same machine (inst/s)",
    )
    ratio(
        ("D1", "storescu→stowpair SCP"),
        ("D1", "storescu→orthanc"),
        "instances_per_s",
        1.0,
        "D1 storescu→stowpair C-STORE SCP vs storescu→Orthanc (inst/s)",
    )
    ratio(
        ("D2", "stowpair dicom: exporter→storescp"),
        ("D2", "orthanc C-STORE SCU→storescp"),
        "instances_per_s",
        1.0,
        "D2 stowpair dicom: exporter vs Orthanc C-STORE SCU, to storescp (inst/s)",
    )
    # Our processes: the sender of stowpair→X pairs, the receiver of X→stowrsd pairs.
    ours = [
        r.median(key)
        for r in rows
        if r.runs
        for key, mine in (
            ("sender_rss_mb", r.pair.startswith("stowpair")),
            ("receiver_rss_mb", "→stowrsd" in r.pair or "→stowpair" in r.pair),
        )
        if mine and r.median(key) == r.median(key)
    ]
    peak = max(ours, default=None)
    if peak is not None:
        out.append(
            f"stowpair peak RSS: {peak:.0f} MB (target < 150 MB) "
            f"{'met' if peak < 150 else 'NOT met'}"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--runs", type=int, help="rounds per scenario (default 3, quick 1)")
    parser.add_argument("--only", nargs="*", help="scenario names (S1) or pair names")
    parser.add_argument("--chart", type=Path, help="also draw S1/S2 rates to this PNG")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    if args.runs:
        sizes.runs = args.runs
    started = time.strftime("%Y%m%dT%H%M%S")
    rows = run(sizes, set(args.only) if args.only else None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started}.json"
    checks = targets(rows)
    out.write_text(
        json.dumps(
            {
                "started": started,
                "sizes": asdict(sizes),
                "quick": args.quick,
                "rows": [asdict(r) for r in rows],
                "targets": checks,
            },
            indent=1,
        )
    )
    print(table(rows))
    print()
    for line in checks:
        print(f"- {line}")
    print(f"\nresults: {out}")
    if args.chart:
        from bench.chart import draw

        draw(json.loads(out.read_text()), args.chart)
        print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
