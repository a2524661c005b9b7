"""Learning curves (PNG) and a table of final figures (Markdown) from a benchmarks/grid.py CSV.

The PNG has one panel per environment and one line per arm: the mean across seeds of each seed's
curve (smoothed over --smooth points, then interpolated onto common steps), with a shaded band of
± one standard deviation across seeds. The Markdown table has one row per environment and arm: the
number of seeds, then for each --table tag the mean ± std across seeds, and for the first one also
the interquartile mean (IQM: the mean of the middle half of the seeds) when there are 4 seeds or
more, and the value of each seed.
A tag of the CSV's `final/` figures is one value per seed; any other tag (a curve, such as
charts/q_overestimation) counts as its mean over the second half of the run's steps.

Run:  python benchmarks/plot.py results/sac/results.csv --out docs/claims/sac
"""
import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def load(paths: list[Path]) -> dict:
    """{(env_id, arm, seed): {tag: [(step, value), ...] sorted by step}}, from one or more CSVs"""
    series = defaultdict(lambda: defaultdict(list))
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                series[(row["env_id"], row["arm"], int(row["seed"]))][row["tag"]].append((int(row["step"]), float(row["value"])))
    for tags in series.values():
        for points in tags.values():
            points.sort()
    return series


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    counts = np.minimum(ends, window)
    return (sums[ends] - sums[ends - counts]) / counts


def curves_on_common_steps(per_seed: list[list[tuple[int, float]]], window: int, points: int):
    """The seeds' smoothed curves interpolated onto the steps that all of them cover."""
    lo = max(curve[0][0] for curve in per_seed)
    hi = min(curve[-1][0] for curve in per_seed)
    steps = np.linspace(lo, hi, points) if hi > lo else np.array([float(hi)])
    ys = [np.interp(steps, [s for s, _ in curve], smooth(np.array([v for _, v in curve]), window)) for curve in per_seed]
    return steps, np.array(ys)


def seed_figure(tags: dict, tag: str) -> float | None:
    """One number per seed: a final/ figure as it is; a curve's mean over the second half of its steps."""
    points = tags.get(tag)
    if not points:
        return None
    if tag.startswith("final/"):
        return points[-1][1]
    half = points[-1][0] / 2
    return float(np.mean([v for s, v in points if s >= half]))


def iqm(values: list[float]) -> float:
    """The interquartile mean: the mean of the values left after dropping the lowest and the highest quarter."""
    values = sorted(values)
    k = len(values) // 4
    return float(np.mean(values[k: len(values) - k]))


def table(series: dict, tags: list[str]) -> str:
    envs = sorted({env for env, _, _ in series})
    arms = list(dict.fromkeys(arm for _, arm, _ in series))  # in the CSV's order
    head = ["env", "arm", "seeds"] + [f"{t} (mean ± std)" for t in tags] + [f"{tags[0]} (IQM)", f"{tags[0]} per seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for env in envs:
        for arm in arms:
            seeds = sorted(seed for e, a, seed in series if (e, a) == (env, arm))
            if not seeds:
                continue
            cells = [env, arm, str(len(seeds))]
            for tag in tags:
                values = [v for v in (seed_figure(series[(env, arm, s)], tag) for s in seeds) if v is not None]
                cells.append(f"{np.mean(values):.4g} ± {np.std(values):.3g}" if values else "—")
                if tag == tags[0]:
                    first = values
            cells.append(f"{iqm(first):.4g}" if len(first) >= 4 else "— (under 4 seeds)")
            cells.append(", ".join(f"{v:.4g}" for v in first))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(series: dict, tag: str, window: int, points: int, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({env for env, _, _ in series})
    arms = list(dict.fromkeys(arm for _, arm, _ in series))
    fig, axes = plt.subplots(1, len(envs), figsize=(max(7.0, 5.5 * len(envs)), 4.5), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for i, arm in enumerate(arms):
            per_seed = [tags[tag] for (e, a, _), tags in sorted(series.items()) if (e, a) == (env, arm) and tags.get(tag)]
            if not per_seed:
                continue
            steps, ys = curves_on_common_steps(per_seed, window, points)
            mean, std = ys.mean(0), ys.std(0)
            color = f"C{i}"
            ax.plot(steps, mean, color=color, label=f"{arm} ({len(per_seed)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(tag)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle((f"{title}\n" if title else "") + "line: mean across seeds; band: ± 1 std across seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", type=Path, nargs="+", help="results.csv written by benchmarks/grid.py (and more in its format)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.png and OUT.md")
    p.add_argument("--tag", default="charts/episodic_return", help="the curve to plot")
    p.add_argument("--table", nargs="+", default=["final/return_last10"], help="the figures of the table, in columns")
    p.add_argument("--smooth", type=int, default=10, help="points of each seed's moving average")
    p.add_argument("--points", type=int, default=100, help="common steps the seeds are interpolated onto")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    for path in args.csv:
        if not path.is_file():
            sys.exit(f"error: {path} does not exist (run benchmarks/grid.py first)")
    series = load(args.csv)
    if not series:
        sys.exit(f"error: {' '.join(map(str, args.csv))} has no rows")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(series, args.tag, args.smooth, args.points, args.title, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(table(series, args.table))
    print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
