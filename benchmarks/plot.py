"""Learning curves (PNG) and a table of final figures (Markdown) from a benchmarks/grid.py CSV.

The PNG has one panel per environment and one line per arm: the mean across seeds of each seed's
curve (smoothed over --smooth points, then interpolated onto common steps), with a shaded band of
± one standard deviation across seeds. The Markdown table has one row per environment and arm: the
number of seeds, then for each --table tag the mean ± std across seeds, and for the first one also
the interquartile mean (IQM: the mean of the middle half of the seeds) with its 95 % stratified-
bootstrap confidence interval (rliable, Agarwal et al., NeurIPS 2021), and the value of each seed.
A tag of the CSV's `final/` figures is one value per seed (final/return_lastN, where a run did not
write it, is the mean of its last N episodic returns: final/return_last100 is CleanRL's published
measure); any other tag (a curve, such as charts/q_overestimation) counts as its mean over the second
half of the run's steps.

--claim "A > B" (repeatable) adds, per environment, the probability of improvement P(A > B) on the
first --table figure (the chance that a run of A scores above a run of B; 0.5 is no effect) with its
95 % bootstrap interval, and the verdict of this rule:
  "A > B": supported if the interval lies above 0.5 (it excludes no effect), not supported if it
           lies below 0.5 (it excludes the claimed effect), not resolved otherwise;
  "A ~ B" (a claim of equality): supported if the interval lies within 0.5 ± --margin (stated before
           the run), not supported if it lies wholly outside that band, not resolved otherwise.

Run:  python benchmarks/plot.py results/sac/results.csv --out docs/claims/sac
      python benchmarks/plot.py results/dqn/results.csv --out docs/claims/dqn --table charts/q_overestimation \
          --claim "dqn > ddqn"
"""
import argparse
import contextlib
import csv
import importlib
import re
import sys
import warnings
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
    """One number per seed: a final/ figure as it is; a curve's mean over the second half of its steps.
    final/return_lastN that a run did not write (grid.py writes last 10) is the mean of its last N
    episodic returns (CleanRL's published measure is last 100)."""
    points = tags.get(tag)
    last_n = re.fullmatch(r"final/return_last(\d+)", tag)
    if not points and last_n and tags.get("charts/episodic_return"):
        returns = [v for _, v in tags["charts/episodic_return"][-int(last_n.group(1)):]]
        return float(np.mean(returns))
    if not points:
        return None
    if tag.startswith("final/"):
        return points[-1][1]
    half = points[-1][0] / 2
    return float(np.mean([v for s, v in points if s >= half]))


REPS = 2_000  # bootstrap resamples: the interval ends move by about 0.01 from one resampling to another


@contextlib.contextmanager
def fixed_draws():
    """The same bootstrap resamples on every call: rliable 1.2 passes its random_state to arch, which ignores it
    (deprecated there) and draws from numpy's global generator; seeded here, its state restored after."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        yield
    finally:
        np.random.set_state(state)


def iqm_interval(values: list[float]) -> tuple[float, float, float]:
    """The interquartile mean of the seeds' values (the mean of the middle half, rliable's trimmed
    mean) and its 95 % stratified-bootstrap confidence interval: (IQM, low, high)."""
    from rliable import library as rly, metrics

    scores = {"arm": np.asarray(values, dtype=float)[:, None]}  # runs × tasks: one task here
    with warnings.catch_warnings(), fixed_draws():  # arch: random_state is deprecated (rliable 1.2 passes it)
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = rly.get_interval_estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=REPS,
                                                     random_state=np.random.RandomState(0))
    return float(point["arm"][0]), float(interval["arm"][0, 0]), float(interval["arm"][1, 0])


def improvement(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """P(A > B), the probability that a run of A scores above a run of B (ties count half), and its 95 %
    bootstrap interval, resampling each arm's seeds on their own: (P, low, high)."""
    from rliable import library as rly, metrics

    pair = {"a,b": (np.asarray(a, dtype=float)[:, None], np.asarray(b, dtype=float)[:, None])}
    with warnings.catch_warnings(), fixed_draws():  # arch: random_state is deprecated (rliable 1.2 passes it)
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = rly.get_interval_estimates(pair, lambda x, y: np.array([metrics.probability_of_improvement(x, y)]),
                                                     reps=REPS, random_state=np.random.RandomState(0))
    return float(point["a,b"][0]), float(interval["a,b"][0, 0]), float(interval["a,b"][1, 0])


def verdict(low: float, high: float, equality: bool = False, margin: float = 0.25) -> str:
    """The rule of the module docstring, on the interval of P(A > B)."""
    if equality:
        if 0.5 - margin <= low and high <= 0.5 + margin:
            return "supported"
        return "not supported" if high < 0.5 - margin or low > 0.5 + margin else "not resolved"
    return "supported" if low > 0.5 else "not supported" if high < 0.5 else "not resolved"


def parse_claim(text: str) -> tuple[str, str, bool]:
    """"A > B" → (A, B, False); "A ~ B" → (A, B, True)."""
    for sign, equality in ((">", False), ("~", True)):
        if sign in text:
            a, b = (part.strip() for part in text.split(sign, 1))
            if a and b:
                return a, b, equality
    raise argparse.ArgumentTypeError(f"--claim {text!r}: expected \"ARM > ARM\" or \"ARM ~ ARM\"")


def seed_values(series: dict, env: str, arm: str, tag: str) -> list[float]:
    seeds = sorted(seed for e, a, seed in series if (e, a) == (env, arm))
    return [v for v in (seed_figure(series[(env, arm, s)], tag) for s in seeds) if v is not None]


def claims_table(series: dict, tag: str, claims: list[tuple[str, str, bool]], margin: float) -> str:
    lines = [f"| env | claim on {tag} | seeds | P(A > B) [95 % CI] | verdict |", "|---|---|---|---|---|"]
    for env in sorted({env for env, _, _ in series}):
        for a, b, equality in claims:
            xs, ys = seed_values(series, env, a, tag), seed_values(series, env, b, tag)
            if not xs or not ys:
                continue
            p, low, high = improvement(xs, ys)
            said = f"{a} ~ {b} (margin ± {margin:g})" if equality else f"{a} > {b}"
            lines.append(f"| {env} | {said} | {len(xs)}, {len(ys)} | {p:.2f} [{low:.2f}, {high:.2f}] "
                         f"| {verdict(low, high, equality, margin)} |")
    return "\n".join(lines) + "\n"


def table(series: dict, tags: list[str]) -> str:
    envs = sorted({env for env, _, _ in series})
    arms = list(dict.fromkeys(arm for _, arm, _ in series))  # in the CSV's order
    head = ["env", "arm", "seeds"] + [f"{t} (mean ± std)" for t in tags] + [f"{tags[0]} (IQM [95 % CI])", f"{tags[0]} per seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for env in envs:
        for arm in arms:
            seeds = sorted(seed for e, a, seed in series if (e, a) == (env, arm))
            if not seeds:
                continue
            cells = [env, arm, str(len(seeds))]
            for tag in tags:
                values = seed_values(series, env, arm, tag)
                cells.append(f"{np.mean(values):.4g} ± {np.std(values):.3g}" if values else "—")
                if tag == tags[0]:
                    first = values
            cells.append("{:.4g} [{:.4g}, {:.4g}]".format(*iqm_interval(first)) if len(first) >= 4 else "— (under 4 seeds)")
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


def need(*modules: str) -> None:
    """One line, not a traceback, where a package the benchmarks need beyond requirements.txt is missing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            sys.exit(f"error: {Path(sys.argv[0]).name} needs {module}, which is not installed: pip install -r requirements-grid.txt")


def main(argv=None) -> None:
    need("matplotlib", "rliable")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", type=Path, nargs="+", help="results.csv written by benchmarks/grid.py (and more in its format)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.png and OUT.md")
    p.add_argument("--tag", default="charts/episodic_return", help="the curve to plot")
    p.add_argument("--table", nargs="+", default=["final/return_last10"], help="the figures of the table, in columns")
    p.add_argument("--smooth", type=int, default=10, help="points of each seed's moving average")
    p.add_argument("--points", type=int, default=100, help="common steps the seeds are interpolated onto")
    p.add_argument("--title", default="")
    p.add_argument("--claim", type=parse_claim, action="append", default=[],
                   help='"ARM > ARM" or "ARM ~ ARM": P(A > B) on the first --table figure, and the verdict (repeatable)')
    p.add_argument("--margin", type=float, default=0.25, help='"A ~ B" claims: the equivalence margin around P = 0.5')
    args = p.parse_args(argv)
    for path in args.csv:
        if not path.is_file():
            sys.exit(f"error: {path} does not exist (run benchmarks/grid.py first)")
    series = load(args.csv)
    if not series:
        sys.exit(f"error: {' '.join(map(str, args.csv))} has no rows")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(series, args.tag, args.smooth, args.points, args.title, args.out.with_suffix(".png"))
    text = table(series, args.table)
    if args.claim:
        text += "\n" + claims_table(series, args.table[0], args.claim, args.margin)
    args.out.with_suffix(".md").write_text(text)
    print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
