"""Component times of the main command's pipeline, two source trees interleaved.

Runs `benchmarks/pipeline_benchmark.py` of tree A, then of tree B, then A again, and so
on, each in a fresh output folder (nothing cached) and in its own process, so that a
slow minute on a noisy machine falls on both trees alike. Prints, per component, the
median of each tree's runs and B's median as a share of A's, and the wall time of each
whole run on this script's own clock.

    .venv/bin/python benchmarks/component_ab.py --a /path/to/old/worktree \
        --b /path/to/new/worktree [--runs 8] [--clips-per-quadrant 8]

Make tree A with `git worktree add --detach /tmp/tree-a <commit>`. Both trees run with
this checkout's virtualenv (`sys.executable`); each tree's own code is imported first
(`PYTHONPATH=<tree>`). Run it on a quiet machine: it measures everything else running.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A component's line in pipeline_benchmark.py's table: name, seconds, optional "*".
_ROW = re.compile(r"^(?P<node>[A-Za-z_][\w]*)\s+(?P<seconds>\d+(?:\.\d+)?)s\*?\s*$")


def parse_table(stdout: str) -> dict[str, float]:
    """{component: seconds} from pipeline_benchmark.py's output (first run's column)."""
    times = {}
    for line in stdout.splitlines():
        match = _ROW.match(line.strip())
        if match:
            times[match["node"]] = float(match["seconds"])
    return times


def run_once(tree: Path, clips: int) -> tuple[dict[str, float], float]:
    """One fresh pipeline run of `tree`: its component times and this clock's wall time."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    with tempfile.TemporaryDirectory(prefix="mer-ab-") as output:
        command = [sys.executable, str(tree / "benchmarks" / "pipeline_benchmark.py"),
                   "--output", str(Path(output) / "run"),
                   "--clips-per-quadrant", str(clips)]
        start = time.monotonic()
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"component_ab: {tree} failed (exit {done.returncode}):\n"
                         f"{done.stderr[-2000:]}")
    times = parse_table(done.stdout)
    if not times:
        raise SystemExit(f"component_ab: no component times in {tree}'s output:\n"
                         f"{done.stdout[-2000:]}")
    return times, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the reference tree")
    parser.add_argument("--b", type=Path, required=True, help="the tree compared with it")
    parser.add_argument("--runs", type=int, default=8, help="runs of each tree (default 8)")
    parser.add_argument("--clips-per-quadrant", type=int, default=8)
    args = parser.parse_args()
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    results = {name: [] for name in trees}
    for index in range(args.runs):
        for name in ("A", "B") if index % 2 == 0 else ("B", "A"):
            times, wall = run_once(trees[name], args.clips_per_quadrant)
            results[name].append((times, wall))
            print(f"run {index + 1}/{args.runs} {name}: {wall:.1f}s", flush=True)

    nodes = list(dict.fromkeys(n for times, _ in results["A"] + results["B"] for n in times))
    print(f"\nmedians of {args.runs} interleaved runs each; A = {trees['A']}, B = {trees['B']}")
    print(f"{'component':<32}{'A':>10}{'B':>10}{'B/A':>8}")
    for node in nodes + ["wall (this clock)"]:
        if node == "wall (this clock)":
            a = statistics.median(w for _, w in results["A"])
            b = statistics.median(w for _, w in results["B"])
        else:
            a_values = [t[node] for t, _ in results["A"] if node in t]
            b_values = [t[node] for t, _ in results["B"] if node in t]
            if not a_values or not b_values:
                continue
            a, b = statistics.median(a_values), statistics.median(b_values)
        ratio = f"{b / a:.2f}" if a > 0.05 else "-"
        print(f"{node:<32}{a:>9.1f}s{b:>9.1f}s{ratio:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
