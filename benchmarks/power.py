"""The power of plot.py's verdict rule: how often a grid with N seeds per arm would end "supported",
"not resolved" or "not supported", if each arm's per-seed figure were drawn from a normal distribution
with the mean and std given. Used to choose a claim's seed count before its grid runs (docs/claims.md).

Each simulated grid draws N values per arm, computes P(A > B) (ties count half) and its 95 % percentile
interval from a stratified bootstrap (each arm's seeds resampled on their own, --reps resamples), which
is what plot.improvement computes through rliable, here in numpy so that thousands of grids take seconds
(tests/test_benchmarks.py checks that the two intervals agree), then applies plot.verdict.

A model, not the runs: the rule answers to P(A > B), which a normal's mean and std set only roughly
when the real figures skew, and a std measured on few seeds is itself uncertain. Every row draws from
the same seeded generator, so rows differ by their seed count and not by luck alone. Memory grows as
8 × --reps × seeds² bytes (some 640 MB at 200 seeds per arm, at --reps 2000).

Run:  python benchmarks/power.py --a 0.074 0.024 --b 0.051 0.015 --seeds 10 16 20 30
      python benchmarks/power.py --a -169 29 --b -169 29 --equality --margin 0.25 --seeds 10 20 30
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plot  # noqa: E402  (the rule itself: plot.verdict)


def improvement_interval(a: np.ndarray, b: np.ndarray, reps: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """P(A > B) and its 95 % stratified-bootstrap percentile interval, as plot.improvement."""
    def p_of(x, y):  # x: (..., n_a), y: (..., n_b)
        return ((x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :])).mean(axis=(-2, -1))

    resampled_a = a[rng.integers(0, len(a), size=(reps, len(a)))]
    resampled_b = b[rng.integers(0, len(b), size=(reps, len(b)))]
    low, high = np.percentile(p_of(resampled_a, resampled_b), [2.5, 97.5])
    return float(p_of(a, b)), float(low), float(high)


def power(a: tuple[float, float], b: tuple[float, float], seeds: int, grids: int, reps: int, equality: bool,
          margin: float, seed: int = 0) -> dict[str, float]:
    """The share of `grids` simulated grids of `seeds` seeds per arm that end in each verdict."""
    rng = np.random.default_rng(seed)
    counts = {"supported": 0, "not resolved": 0, "not supported": 0}
    for _ in range(grids):
        _, low, high = improvement_interval(rng.normal(*a, size=seeds), rng.normal(*b, size=seeds), reps, rng)
        counts[plot.verdict(low, high, equality, margin)] += 1
    return {k: v / grids for k, v in counts.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", nargs=2, type=float, required=True, metavar=("MEAN", "STD"), help="arm A's per-seed figure")
    p.add_argument("--b", nargs=2, type=float, required=True, metavar=("MEAN", "STD"), help="arm B's per-seed figure")
    p.add_argument("--seeds", nargs="+", type=int, required=True, help="seed counts per arm to try")
    p.add_argument("--equality", action="store_true", help='the claim "A ~ B" (default: "A > B")')
    p.add_argument("--margin", type=float, default=0.25, help="equivalence margin around 0.5 (with --equality)")
    p.add_argument("--grids", type=int, default=1000, help="simulated grids per seed count")
    p.add_argument("--reps", type=int, default=plot.REPS, help="bootstrap resamples per grid (plot.py's count)")
    args = p.parse_args(argv)
    if min(args.seeds) < 2:
        p.error("--seeds: each count must be at least 2 (a bootstrap of one seed has no spread)")
    if args.a[1] < 0 or args.b[1] < 0:
        p.error("--a/--b: a std must be 0 or more")
    if args.grids < 1 or args.reps < 1:
        p.error("--grids and --reps must be at least 1")
    if not 0 < args.margin < 0.5:
        p.error(f"--margin must lie between 0 and 0.5 (got {args.margin})")
    claim = f"A ~ B (margin ± {args.margin})" if args.equality else "A > B"
    print(f"claim {claim}; A ~ N({args.a[0]}, {args.a[1]}), B ~ N({args.b[0]}, {args.b[1]}); "
          f"{args.grids} simulated grids per row, {args.reps} bootstrap resamples each")
    print("| seeds per arm | supported | not resolved | not supported |\n|---|---|---|---|")
    for n in args.seeds:
        share = power(tuple(args.a), tuple(args.b), n, args.grids, args.reps, args.equality, args.margin)
        print(f"| {n} | {share['supported']:.2f} | {share['not resolved']:.2f} | {share['not supported']:.2f} |")


if __name__ == "__main__":
    main()
