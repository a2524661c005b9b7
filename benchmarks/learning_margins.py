"""How much margin the CartPole learning tests have: each test's own flags, run over many seeds.

tests/test_learning.py runs each CartPole test on seed 1 only. A test that passes on seed 1 but not
on seed 5 would also fail on a machine whose floating-point rounding differs, so this runs the same
flags (imported from the test file, not copied) on every --seeds with benchmarks/grid.py, and prints
per test, as a Markdown table:
- reached: on how many seeds the mean of 10 consecutive episodes reached the test's bar within the
  budget (what the test asserts), and at which step (median, range);
- held: on how many seeds the last 10 episodes of the run were still at the bar or above;
- the mean of the last 10 episodes of every seed.

Run:  python benchmarks/learning_margins.py --seeds 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 --out results/margins
"""
import argparse
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]  # tests/conftest.py imports benchmarks.runlogs
import grid  # noqa: E402
from runlogs import window_means  # noqa: E402


def arms(tests: list) -> list[str]:
    """grid.py --arm values, one per test, with the test's own --seed taken out (the grid sets it)."""
    out = []
    for script, flags, _ in tests:
        flags = list(flags)
        if "--seed" in flags:
            i = flags.index("--seed")
            del flags[i:i + 2]
        out.append(f"{script}={script}.py " + " ".join(flags))
    return out


def first_reach(curve: list[tuple[int, float]], bar: float, window: int = 10) -> tuple[int | None, float]:
    """The step at which the mean of `window` consecutive episodes first reached `bar` (None: never),
    and the mean of the last `window` episodes."""
    steps = np.array([s for s, _ in curve])
    means = window_means([v for _, v in curve], window)
    hits = np.flatnonzero(means >= bar)
    return (int(steps[hits[0] + window - 1]) if len(hits) else None), float(means[-1])


def summarize(rows: list[dict], bars: dict[str, float]) -> str:
    """rows of grid.py's results.csv → the Markdown table described at the top."""
    curves = defaultdict(list)
    for r in rows:
        if r["tag"] == "charts/episodic_return":
            curves[r["arm"], int(r["seed"])].append((int(r["step"]), float(r["value"])))
    lines = ["| test | bar | reached | at step (median, range) | held to the end | mean of the last 10, per seed |",
             "|---|---|---|---|---|---|"]
    for arm, bar in bars.items():
        seeds = sorted(seed for a, seed in curves if a == arm)
        if not seeds:
            continue
        results = {seed: first_reach(sorted(curves[arm, seed]), bar) for seed in seeds}
        reached = [step for step, _ in results.values() if step is not None]
        held = sum(end >= bar for _, end in results.values())
        at = f"{statistics.median(reached) / 1000:.0f}k ({min(reached) / 1000:.0f}k–{max(reached) / 1000:.0f}k)" if reached else "–"
        ends = ", ".join(f"{seed}: {end:.0f}" for seed, (_, end) in results.items())
        lines.append(f"| {arm} | {bar:g} | {len(reached)}/{len(seeds)} | {at} | {held}/{len(seeds)} | {ends} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    from test_learning import CARTPOLE

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", nargs="+", type=int, default=list(range(1, 9)))
    p.add_argument("--tests", nargs="+", choices=[t[0] for t in CARTPOLE], default=[t[0] for t in CARTPOLE])
    p.add_argument("--out", type=Path, required=True, help="the grid's folder (a rerun skips the runs done)")
    p.add_argument("--workers", type=int, help="runs at a time (default: the cores)")
    args = p.parse_args(argv)
    tests = [t for t in CARTPOLE if t[0] in args.tests]
    argv_grid = ["--env-ids", "CartPole-v1", "--seeds", *map(str, args.seeds), "--out", str(args.out)]
    for arm in arms(tests):
        argv_grid += ["--arm", arm]
    if args.workers:
        argv_grid += ["--workers", str(args.workers)]
    grid.main(argv_grid)
    with open(args.out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    print(summarize(rows, {script: bar for script, _, bar in tests}))


if __name__ == "__main__":
    main()
