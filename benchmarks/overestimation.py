"""DQN against DDQN: how far Q(s, a) lies above the discounted return actually obtained.

Runs dqn.py and ddqn.py with their default hyperparameters (CleanRL's) on the same environments
and seeds, reads charts/q_overestimation (and the episodic returns) from their TensorBoard logs,
and writes a Markdown table and a PNG of the curves. See OverestimationMeter in dqn.py for how the
gap is measured and how episodes cut by the time limit are handled.

Run:  python benchmarks/overestimation.py --env-ids CartPole-v1 Acrobot-v1 --seeds 1 2 3 --out docs/overestimation
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.runlogs import read_scalars  # noqa: E402
SCRIPTS = ("dqn", "ddqn")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env-ids", nargs="+", default=["CartPole-v1", "Acrobot-v1"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--total-timesteps", type=int, default=500_000, help="steps of every run (the scripts' default)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="runs at once, one torch thread each")
    p.add_argument("--out", type=Path, default=Path("docs/overestimation"), help="writes OUT.md and OUT.png")
    p.add_argument("--runs-dir", type=Path, help="keep the runs here (default: a temporary directory)")
    p.add_argument("--cuda", action="store_true", help="run the scripts on the GPU (default: on the CPU, with --no-cuda)")
    args = p.parse_args(argv)
    if args.total_timesteps <= 10_000 or args.workers <= 0:
        p.error("need --total-timesteps > 10000 (the default --learning-starts) and --workers > 0")
    return args


def run(script: str, env_id: str, seed: int, total_timesteps: int, runs_dir: Path, cuda: bool = False) -> dict:
    """One training run; returns its logged curves as {tag: (steps, values)}."""
    workdir = runs_dir / f"{script}__{env_id}__{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / f"{script}.py"), "--env-id", env_id, "--seed", str(seed),
           "--total-timesteps", str(total_timesteps), "--cuda" if cuda else "--no-cuda"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    (run_dir,) = (workdir / "runs").iterdir()
    scalars = read_scalars(run_dir)
    return {tag: (np.array([s for s, _ in scalars[tag]]), np.array([v for _, v in scalars[tag]]))
            for tag in ("charts/q_overestimation", "charts/q_predicted", "charts/discounted_return",
                        "charts/episodic_return")}


def binned(curves: list, total: int, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Each run's curve averaged within `bins` equal step intervals: returns (bin centres, [runs, bins])."""
    edges = np.linspace(0, total, bins + 1)
    rows = []
    for steps, values in curves:
        idx = np.digitize(steps, edges) - 1
        rows.append([values[idx == b].mean() if (idx == b).any() else np.nan for b in range(bins)])
    return (edges[:-1] + edges[1:]) / 2, np.array(rows)


def main() -> None:
    args = parse_args()
    jobs = [(s, e, seed) for e in args.env_ids for s in SCRIPTS for seed in args.seeds]
    with tempfile.TemporaryDirectory(prefix="overestimation-") as tmp:
        runs_dir = args.runs_dir or Path(tmp)
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            futures = {job: pool.submit(run, *job, args.total_timesteps, runs_dir, args.cuda) for job in jobs}
            results = {}
            for job, future in futures.items():
                results[job] = future.result()
                print(f"done: {job[0]} on {job[1]}, seed {job[2]}", flush=True)

    # the table: second half of training, mean over each run's episodes, then mean ± std over seeds
    half = args.total_timesteps / 2
    lines = [f"Second half of training ({half:,.0f}–{args.total_timesteps:,} steps), mean ± std over "
             f"{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}); default hyperparameters.", "",
             "| env | script | Q(s,a) predicted | G obtained | Q − G | (Q − G) / G | episodic return |",
             "|---|---|---|---|---|---|---|"]
    fmt = lambda x: f"{np.mean(x):.2f} ± {np.std(x):.2f}"  # noqa: E731
    for env_id in args.env_ids:
        for script in SCRIPTS:
            per_seed = {tag: [] for tag in ("charts/q_predicted", "charts/discounted_return", "charts/q_overestimation",
                                            "charts/episodic_return", "relative")}
            for seed in args.seeds:
                curves = results[(script, env_id, seed)]
                for tag in per_seed:
                    if tag != "relative":
                        steps, values = curves[tag]
                        per_seed[tag].append(values[steps > half].mean())
                per_seed["relative"].append(per_seed["charts/q_overestimation"][-1] / abs(per_seed["charts/discounted_return"][-1]))
            lines.append(f"| {env_id} | {script} | {fmt(per_seed['charts/q_predicted'])} | "
                         f"{fmt(per_seed['charts/discounted_return'])} | {fmt(per_seed['charts/q_overestimation'])} | "
                         f"{fmt(per_seed['relative'])} | {fmt(per_seed['charts/episodic_return'])} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(args.env_ids), figsize=(5 * len(args.env_ids), 7), squeeze=False)
    for col, env_id in enumerate(args.env_ids):
        for script, color in zip(SCRIPTS, ("tab:red", "tab:blue")):
            for row, tag in enumerate(("charts/q_overestimation", "charts/episodic_return")):
                x, y = binned([results[(script, env_id, s)][tag] for s in args.seeds], args.total_timesteps)
                mean, std = np.nanmean(y, 0), np.nanstd(y, 0)
                ax = axes[row, col]
                ax.plot(x, mean, color=color, label=script)
                ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
                ax.set_title(env_id if row == 0 else "")
                ax.set_ylabel("Q(s,a) − G (mean ± std over seeds)" if tag.endswith("overestimation") else "episodic return")
                ax.set_xlabel("environment steps")
        axes[0, col].axhline(0, color="grey", lw=0.8)
        axes[0, col].legend()
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=100)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
