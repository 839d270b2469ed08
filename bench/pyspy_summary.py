"""Summary of a py-spy profile in raw (collapsed stack) form, as docs/benchmarks.md shows it.

    py-spy record -p <pid> -r 200 -f raw --threads -o raw.txt   # while a pair runs
    python bench/pyspy_summary.py raw.txt [--idle]

Shares are of the samples of busy threads (py-spy's default: idle threads are not
sampled; with ``--idle`` in the record, idle waits count too). "self" is time in the
function itself, "inclusive" time in it and what it called. Twisted's and the thread
pool's plumbing frames are left out of the inclusive list.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

PLUMBING = (
    "threading.py",
    "_threadworker.py",
    "_team.py",
    "threadpool.py",
    "context.py",
    "twisted/application",
    "twistd",
    "_twistd_unix",
)


def summary(raw: Path, top: int = 20) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0].split(":")[-1].strip() or frames[0]] += n
        self_time[frames[-1]] += n
        for frame in set(frames[1:]):
            if not any(p in frame for p in PLUMBING):
                inclusive[frame] += n
    out = [f"{total} samples"]
    out.append(
        "threads: " + ", ".join(f"{t} {100 * n / total:.0f}%" for t, n in threads.most_common())
    )
    out.append("self:")
    out += [f"  {100 * n / total:5.1f}% {f}" for f, n in self_time.most_common(top)]
    out.append("inclusive:")
    out += [f"  {100 * n / total:5.1f}% {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
