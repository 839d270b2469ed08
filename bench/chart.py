"""PNG chart of a benchmark result: S1 instances/s and S2 MB/s by pair (medians).

python bench/chart.py bench/results/<timestamp>.json docs/benchmarks.png
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


def main() -> int:
    result = json.loads(Path(sys.argv[1]).read_text())
    draw(result, Path(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
