"""PNG charts of a benchmark result (medians).

python bench/chart.py bench/results/<timestamp>.json docs/benchmarks.png   # S1, S2 by pair
python bench/chart.py --s6 bench/results/<timestamp>.json docs/benchmarks-s6.png
                                        # S6: instances/s versus study size
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def medians(result: dict[str, Any], scenario: str, key: str) -> list[tuple[str, float]]:
    out = []
    for row in result["rows"]:
        values = [r[key] for r in row["runs"] if key in r]
        if row["scenario"] == scenario and values:
            out.append((row["pair"], statistics.median(values)))
    return out


def draw(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("S1", "instances_per_s", "S1: 1 study of ~100 KB instances — instances/s"),
              ("S2", "mb_per_s", "S2: ~50 MB instances — MB/s")]  # fmt: skip
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 9))
    for ax, (scenario, key, title) in zip(axes, panels, strict=True):
        data = medians(result, scenario, key)
        names = [n for n, _ in data]
        values = [v for _, v in data]
        colors = ["#1f77b4" if n.startswith("stowpair") else "#999999" for n in names]
        ax.barh(names, values, color=colors)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=11)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.0f}", va="center", fontsize=8)
    fig.suptitle(f"stowpair benchmark {result['started']} (median of {result['sizes']['runs']})")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def draw_s6(result: dict[str, Any], png: Path) -> None:
    """S6: the export rate (instances/s) of each study size, sizes read from the pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for name, rate in medians(result, "S6", "instances_per_s"):
        size = int(name.split(", ")[-1].split("-")[0].replace(",", ""))
        points.append((size, rate))
    points.sort()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([x for x, _ in points], [y for _, y in points], marker="o")
    for x, y in points:
        ax.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center")
    ax.set_xlabel("instances in the study (~20 KB each)")
    ax.set_ylabel("instances/s (stowpair→stowrsd c4 b10)")
    ax.set_ylim(0, max((y for _, y in points), default=1) * 1.25)
    ax.set_title(f"S6: export rate versus study size, run {result['started']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main() -> int:
    args = sys.argv[1:]
    s6 = args[:1] == ["--s6"]
    if s6:
        args = args[1:]
    result = json.loads(Path(args[0]).read_text())
    (draw_s6 if s6 else draw)(result, Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
