"""The targets of docs/benchmarks.md, judged once, when a run ends, from its medians.

Each verdict is written into the results file (``targets``); bench/report.py copies it
into the docs and never judges again.
"""

from __future__ import annotations

import statistics
from typing import Any

Rows = list[dict[str, Any]]


def median(rows: Rows, scenario: str, pair: str, key: str) -> float | None:
    for row in rows:
        if row["scenario"] == scenario and row["pair"] == pair:
            values = [r[key] for r in row["runs"] if key in r and r[key] == r[key]]
            return statistics.median(values) if values else None
    return None


def _check(figure: str, measured: str, target: str, ok: bool | None) -> dict[str, str]:
    verdict = "not measured" if ok is None else "met" if ok else "NOT met"
    return {"figure": figure, "measured": measured, "target": target, "verdict": verdict}


def _ratio(
    rows: Rows, a: tuple[str, str], b: tuple[str, str], key: str, goal: float, figure: str
) -> dict[str, str]:
    x, y = median(rows, *a, key), median(rows, *b, key)
    if x is None or y is None or not y:
        missing = a[1] if x is None else b[1]
        return _check(figure, f"{missing}: not measured", f"≥ {goal}×", None)
    r = x / y
    return _check(figure, f"{x:.1f} / {y:.1f} = {r:.2f}×", f"≥ {goal}×", r >= goal)


S1_DEFAULTS = "stowpair→stowrsd c1 b1"
S1_BEST = "stowpair→stowrsd c4 b10"
CPU_PAIRS = [
    ("S1", S1_DEFAULTS, "sender"),
    ("S1", S1_BEST, "sender"),
    ("S1", "orthanc→stowrsd", "receiver"),
    ("S1", S1_BEST, "receiver"),
]


def judge(rows: Rows, baseline: Rows | None = None) -> list[dict[str, str]]:
    """The targets of issue 17 (performance, second round) against this run's medians;
    ``baseline``: the rows of the "before" run, for the CPU target (halved)."""
    ips, mbs = "instances_per_s", "mb_per_s"
    oo = ("S1", "orthanc→orthanc")
    out = [
        _ratio(rows, ("S1", S1_DEFAULTS), oo, ips, 1.5,
               "S1 stowpair→stowrsd, defaults (c1 b1) ÷ Orthanc→Orthanc"),
        _ratio(rows, ("S1", S1_BEST), oo, ips, 2.5,
               "S1 stowpair→stowrsd, best documented settings (c4 b10) ÷ Orthanc→Orthanc"),
        _ratio(rows, ("S1", "orthanc→stowrsd"), oo, ips, 2.0,
               "S1 Orthanc→stowrsd ÷ Orthanc→Orthanc (receiver)"),
        _ratio(rows, ("S2", "stowpair→stowrsd c1 b1"), ("S2", "cp + sync (same disk)"), mbs,
               0.6, "S2 stowpair→stowrsd storing with fsync ÷ cp + sync"),
        _ratio(rows, ("S2", "stowpair→stowrsd c1 b1 (--ignore)"), ("S2", "curl→nginx sink"),
               mbs, 0.8, "S2 into stowrsd --ignore ÷ curl→nginx sink"),
        _ratio(rows, ("S3", "stowpair→stowrsd EVRLE"),
               ("S3", "dcmdjpeg, 2 at a time (xargs -P)"), ips, 1.0,
               "S3 JPEG-LL → EVRLE export ÷ dcmdjpeg 2 at a time"),
        _ratio(rows, ("D1", "storescu→stowpair SCP"), ("D1", "storescu→orthanc"), ips, 1.0,
               "D1 storescu→stowpair C-STORE SCP ÷ storescu→Orthanc"),
        _ratio(rows, ("D2", "stowpair dicom: exporter→storescp"),
               ("D2", "orthanc C-STORE SCU→storescp"), ips, 1.0,
               "D2 stowpair dicom: exporter ÷ Orthanc's C-STORE SCU, to storescp"),
        _ratio(rows, ("C1", "3 nodes, postgresql"), ("C1", "1 node, sqlite"), ips, 0.8,
               "C1 3 nodes sharing PostgreSQL ÷ 1 node on SQLite, same machine"),
    ]  # fmt: skip
    for scenario, pair, side in CPU_PAIRS:
        key = f"{side}_cpu_s_per_1k"
        now = median(rows, scenario, pair, key)
        figure = f"CPU s per 1,000 {scenario} instances, {side} ({pair})"
        before = median(baseline, scenario, pair, key) if baseline else None
        if now is None:
            out.append(_check(figure, "not measured", "reported, and halved", None))
        elif before is None:
            out.append({"figure": figure, "measured": f"{now:.2f} s",
                        "target": "reported, and halved", "verdict": "no baseline"})  # fmt: skip
        else:
            measured = f"{now:.2f} s, before {before:.2f} s = {now / before:.2f}×"
            out.append(_check(figure, measured, "≤ 0.5× before", now <= before / 2))
    out.append(_peak_rss(rows))
    out += _s8(rows)
    out.append(_s6(rows))
    s7 = next((r["pair"] for r in rows if r["scenario"] == "S7"), "")
    for key, what in (("page_ms", "first page"), ("count_ms", "/count")):
        ms = median(rows, "S7", s7, key) if s7 else None
        figure = f"S7 /monitor/export {what}, slowest filter ({s7.split(':')[0] or 'tasks'})"
        if ms is None:
            out.append(_check(figure, "not measured", "< 50 ms", None))
        else:
            out.append(_check(figure, f"{ms:.1f} ms", "< 50 ms", ms < 50))
    return out


def _peak_rss(rows: Rows) -> dict[str, str]:
    """Our processes: the sender of stowpair→X pairs, the receiver of X→stowrsd pairs
    (S8, with its own target, apart)."""
    ours = []
    for row in rows:
        if row["scenario"] in ("S7", "S8"):
            continue
        for key, mine in (
            ("sender_rss_mb", row["pair"].startswith("stowpair")),
            ("receiver_rss_mb", "→stowrsd" in row["pair"] or "→stowpair" in row["pair"]),
            ("header_worker_rss_mb", "→stowrsd" in row["pair"]),
        ):
            value = median(rows, row["scenario"], row["pair"], key)
            if mine and value is not None:
                ours.append(value)
    figure = "peak RSS per stowpair/stowrsd process, any study size"
    if not ours:
        return _check(figure, "not measured", "< 150 MB", None)
    return _check(figure, f"{min(ours):.0f}–{max(ours):.0f} MB", "< 150 MB", max(ours) < 150)


def _s8(rows: Rows) -> list[dict[str, str]]:
    row = next((r for r in rows if r["scenario"] == "S8"), None)
    figure = "S8 concurrent clients into stowrsd: errors, instances/s, receiver RSS"
    target = "0 errors, ≥ S1 Orthanc→stowrsd instances/s, < 250 MB"
    if row is None or not row["runs"]:
        return [_check(figure, "not measured", target, None)]
    rate = median(rows, "S8", row["pair"], "instances_per_s") or 0.0
    # stowrsd's peak RSS plus its header workers' share (bench/pairs.py receiver_rss)
    rss = (
        median(rows, "S8", row["pair"], "receiver_total_mb")
        or median(rows, "S8", row["pair"], "receiver_rss_mb")
        or 0.0
    )
    s1 = median(rows, "S1", "orthanc→stowrsd", "instances_per_s")
    most_errors = max(r.get("errors", 0.0) for r in row["runs"])
    measured = (
        f"{most_errors:.0f} errors (most in a round), {rate:.1f} instances/s"
        f" (S1 receiver {s1:.1f}), {rss:.0f} MB"
        if s1 is not None
        else f"{most_errors:.0f} errors, {rate:.1f} instances/s (S1 receiver not measured),"
        f" {rss:.0f} MB"
    )
    ok = None if s1 is None else most_errors == 0 and rate >= s1 and rss < 250
    return [_check(figure, measured, target, ok)]


def _s6(rows: Rows) -> dict[str, str]:
    s6 = [r for r in rows if r["scenario"] == "S6" and r["runs"]]
    figure = "S6 export rate, largest study ÷ 1,000-instance study"
    if len(s6) < 2:
        return _check(figure, "not measured", "≥ 0.9×", None)
    small = median(rows, "S6", s6[0]["pair"], "instances_per_s") or 0.0
    large = median(rows, "S6", s6[-1]["pair"], "instances_per_s") or 0.0
    r = large / small if small else 0.0
    return _check(figure, f"{large:.1f} / {small:.1f} = {r:.2f}× ({s6[-1]['pair']})", "≥ 0.9×",
                  r >= 0.9)  # fmt: skip
