"""The README's "What to expect": each script on its home environments, beside Stable-Baselines3.

Every row of ROWS runs our script over 5 seeds and its SB3 counterpart (benchmarks/sb3_run.py, the same
hyperparameters) over 3, with --save-model so that each run ends with 10 deterministic evaluation
episodes. The runs are grid.py's (resumable: a finished run is not run again), two at a time with one
torch thread each (--workers, --threads), on the CPU (--gpus-per-run 1: ours on the GPU). Per row the
table gives the median wall time of a run, and over the seeds the mean ± std of the last 10 training
episodes' mean return (CleanRL's measure) and of the evaluation's mean return. --write puts the table
into README.md and docs/results.md (between their `expect` markers) and the curves into
docs/expect-<environment>.png. Rows measured by an earlier --only run stay in the table as they were,
each with the commit it was measured at in a comment at the end of its line, so the table can be filled
one environment at a time. --write also keeps a summary of every finished run (its identity, figures and
a binned curve) in docs/expect-runs.csv: a run whose summary is there with the identity the run would
have now (same command, same code) is not run again, so a long row can be filled over several sittings
on machines that do not keep results/.

Run:  python benchmarks/expect.py --out results/expect --write        (about 7 hours on 2 cores)
      python benchmarks/expect.py --out results/expect --only Pendulum-v1 CartPole-v1
      python benchmarks/expect.py --out results/expect --only Hopper-v4 --scripts td3 ddpg --write
      python benchmarks/expect.py --out results/expect --only Hopper-v4 --collect --write   (after stopping a grid part-way)
      python benchmarks/expect.py --out ../long --budget 1M                  (CleanRL's budget: 15 runs of hours each)
"""
import argparse
import csv
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import grid  # noqa: E402
import plot  # noqa: E402

KEPT = ROOT / "docs" / "expect-runs.csv"  # one line per finished run: see keep()
CURVE_BINS = 100  # a kept run's learning curve: the mean return of the episodes ending in each of 100 equal spans of steps
PENDULUM = "--total-timesteps 20000 --learning-starts 1000"
MILLION = "--total-timesteps 1000000 --compile"
# (our script, environment, its flags: the budget, SB3's algorithm or None)
ROWS = [
    ("sac_continuous", "Pendulum-v1", PENDULUM, "SAC"),
    ("sac_no_reparam", "Pendulum-v1", PENDULUM, "SAC"),
    ("td3", "Pendulum-v1", PENDULUM, "TD3"),
    ("ddpg", "Pendulum-v1", PENDULUM, "DDPG"),
    ("sac_continuous", "Hopper-v4", "--total-timesteps 100000", "SAC"),
    ("sac_no_reparam", "Hopper-v4", "--total-timesteps 100000", "SAC"),
    ("td3", "Hopper-v4", "--total-timesteps 100000", "TD3"),
    ("ddpg", "Hopper-v4", "--total-timesteps 100000", "DDPG"),
    ("dqn", "CartPole-v1", "--total-timesteps 500000", "DQN"),
    ("ddqn", "CartPole-v1", "--total-timesteps 500000", None),  # SB3 has no Double DQN
    ("ppo", "CartPole-v1", "--total-timesteps 500000", "PPO"),
    ("a2c", "CartPole-v1", "--total-timesteps 500000", "A2C"),
    ("ppo", "Hopper-v4", "--total-timesteps 100000", "PPO"),
    ("a2c", "Hopper-v4", "--total-timesteps 100000", "A2C"),
    # CleanRL's budget, 1M steps (CleanRL's table below): ours alone, over LONG_SEEDS, with --compile (the same
    # function, computed faster) and, for the hours-long off-policy runs, a checkpoint to --resume from
    ("sac_continuous", "Hopper-v4", f"{MILLION} --checkpoint-frequency 100000", None),
    ("ppo", "Hopper-v4", MILLION, None),
    ("td3", "Hopper-v4", f"{MILLION} --checkpoint-frequency 100000", None),
    ("ddpg", "Hopper-v4", f"{MILLION} --checkpoint-frequency 100000", None),
    ("sac_no_reparam", "Hopper-v4", f"{MILLION} --checkpoint-frequency 100000", None),
]
OUR_SEEDS, SB3_SEEDS = (1, 2, 3, 4, 5), (1, 2, 3)
LONG_SEEDS = (1, 2, 3)  # the 1M rows: CleanRL's own seed count


def our_seeds(flags: str) -> tuple[int, ...]:
    return LONG_SEEDS if budget(flags) == "1M" else OUR_SEEDS
# CleanRL's published figures at the default budgets (the mean of the last 10 training episodes over its seeds),
# the reference the README gives beside ours: (script, environment, budget, CleanRL's figure)
CLEANRL = [
    ("sac_continuous", "Hopper-v4", "1M", "2310 ± 343"),
    ("td3", "Hopper-v4", "1M", "3135 ± 360"),
    ("ddpg", "Hopper-v4", "1M", "1577 ± 819"),
    ("ppo", "Hopper-v4", "1M", "2383 ± 272"),
    ("dqn", "CartPole-v1", "500k", "489 ± 16"),
    ("ppo", "CartPole-v1", "500k", "490 ± 6"),
]


def budget(flags: str) -> str:
    steps = int(re.search(r"--total-timesteps (\d+)", flags).group(1))
    return f"{steps // 1_000_000}M" if steps % 1_000_000 == 0 else f"{steps // 1000}k"


def plan(args: argparse.Namespace) -> list[grid.Run]:
    """The grid's runs: ours and SB3's for every row (a shared SB3 arm runs once)."""
    runs = {}
    for script, env_id, flags, sb3 in ROWS:
        if (args.only and env_id not in args.only) or (getattr(args, "scripts", None) and script not in args.scripts) \
                or (getattr(args, "budget", None) and budget(flags) not in args.budget):
            continue
        arms = [(script, f"{script}.py", our_seeds(flags))]
        if sb3:
            arms.append((f"sb3-{sb3.lower()}", f"benchmarks/sb3_run.py --algo {sb3}", SB3_SEEDS))
        for arm, command, seeds in arms:
            words = command.split()
            all_flags = (*words[1:], *flags.split(), "--save-model" if arm == script else "", "--eval-episodes", "10")
            for seed in seeds:
                folder = args.out / "runs" / f"{arm}__{env_id}__{budget(flags)}__{seed}"
                runs[folder] = grid.Run(arm, words[0], tuple(f for f in all_flags if f), env_id, seed, str(folder), args.threads,
                                        (), getattr(args, "gpus_per_run", 0) if arm == script else 0)
    return list(runs.values())


def summary(folder: Path, steps: int) -> dict | None:
    """A finished run's figures from its result.csv, its episodic returns binned into CURVE_BINS spans of steps."""
    path = folder / "result.csv"
    if not path.is_file():
        return None
    rows = grid.read_rows(path)
    final = {tag: float(value) for _, _, _, _, tag, _, value in rows if tag.startswith("final/")}
    bins = {}
    for _, _, _, _, tag, step, value in rows:
        if tag == "charts/episodic_return":
            bins.setdefault(min(int(step) * CURVE_BINS // steps, CURVE_BINS - 1), []).append((int(step), float(value)))
    curve = [(round(statistics.mean(s for s, _ in b)), round(statistics.mean(v for _, v in b), 1)) for _, b in sorted(bins.items())]
    return {"seconds": final["final/seconds"], "last10": final.get("final/return_last10", float("nan")),
            "eval": final.get("final/eval_return", float("nan")), "curve": curve}


def read_kept(path: Path = KEPT) -> dict:
    """{run folder name: its kept summary, with "hash" (its identity) and "commit"}."""
    if not path.is_file():
        return {}
    with path.open() as f:
        return {r["run"]: {"hash": r["hash"], "commit": r["commit"], "seconds": float(r["seconds"]), "last10": float(r["last10"]),
                           "eval": float(r["eval"]), "curve": [tuple(map(float, p.split(":"))) for p in r["curve"].split()]}
                for r in csv.DictReader(f)}


def keep(kept: dict, path: Path = KEPT) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["run", "hash", "commit", "seconds", "last10", "eval", "curve"])
        for name, r in sorted(kept.items()):
            out.writerow([name, r["hash"], r["commit"], f"{r['seconds']:.1f}", f"{r['last10']:.2f}", f"{r['eval']:.2f}",
                          " ".join(f"{s:.0f}:{v:g}" for s, v in r["curve"])])


def ran(run: grid.Run) -> dict | None:
    """A finished run's summary from its folder, with the identity hash and commit it ran with."""
    folder = Path(run.folder)
    found = summary(folder, int(run.flags[run.flags.index("--total-timesteps") + 1]))
    if found is None or not (folder / "identity.json").is_file():
        return None
    commit = (folder / "commit.txt").read_text().strip() if (folder / "commit.txt").is_file() else "unknown"
    return {**found, "hash": json.loads((folder / "identity.json").read_text())["hash"], "commit": commit}


def done_and_kept(runs: list[grid.Run], kept: dict) -> list[grid.Run]:
    """The runs whose kept summary has the identity the run would have now: they need not run again."""
    return [run for run in runs if kept.get(Path(run.folder).name, {}).get("hash") == grid.identity(run)["hash"]]


def figures(runs: list[grid.Run], kept: dict) -> dict:
    """{(arm, env_id, budget): {"seconds": [...], "last10": [...], "eval": [...], "curves": [...], "commits": {...}}}
    of the finished runs: in their folder where it has the run's identity now, else as kept, whatever code they ran
    (a row measured at an earlier commit stays, marked with it, until it is run again)."""
    out = {}
    for run in runs:
        found = ran(run)
        if found is None or found["hash"] != grid.identity(run)["hash"]:
            found = kept.get(Path(run.folder).name)
        if found is None:
            continue
        entry = out.setdefault((run.arm, run.env_id, budget(" ".join(run.flags))),
                               {"seconds": [], "last10": [], "eval": [], "curves": [], "commits": set()})
        for key, column in (("seconds", "seconds"), ("last10", "last10"), ("eval", "eval"), ("curve", "curves")):
            entry[column].append(found[key])
        entry["commits"].add(found["commit"])
    return out


def cell(values: list[float], of: int = 0) -> str:
    """mean ± std, and "(n of `of` seeds)" while a row is measured in part."""
    text = f"{statistics.mean(values):.0f} ± {statistics.pstdev(values):.0f}" if values else "—"
    return text + (f" ({len(values)} of {of} seeds)" if values and of and len(values) != of else "")


def minutes(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) / 60:.1f} min" if seconds else "—"


HEADER = ["| script | environment, steps | time per run | last 10 training episodes | evaluation (10 episodes) "
          "| SB3: time per run | SB3: last 10 | SB3: evaluation |", "|---|---|---|---|---|---|---|---|"]


def row_key(line: str) -> tuple[str, str, str] | None:
    """(script, environment, budget) of one of the table's rows, e.g. "| `td3.py` | Pendulum-v1, 20k | …"."""
    m = re.match(r"\| `(\w+)\.py` \| ([^,|]+), (\w+) \|", line)
    return m.groups() if m else None


def table(found: dict, earlier: str = "") -> str:
    """The table in ROWS order: the rows of `found` (each marked with the commits its runs were measured at),
    then, in their place, the rows of the `earlier` table that `found` does not have."""
    kept = {row_key(line): line for line in earlier.splitlines() if row_key(line)}
    lines = list(HEADER)
    for script, env_id, flags, sb3 in ROWS:
        ours = found.get((script, env_id, budget(flags)))
        if ours is None:
            if (script, env_id, budget(flags)) in kept:
                lines.append(kept[script, env_id, budget(flags)])
            continue
        theirs = found.get((f"sb3-{sb3.lower()}", env_id, budget(flags)), {}) if sb3 else {}
        lines.append(f"| `{script}.py` | {env_id}, {budget(flags)} | {minutes(ours['seconds'])} | {cell(ours['last10'], len(our_seeds(flags)))} "
                     f"| {cell(ours['eval'])} | {minutes(theirs.get('seconds', []))} | {cell(theirs.get('last10', []), len(SB3_SEEDS))} "
                     f"| {cell(theirs.get('eval', []))} |"
                     + f" <!-- at {', '.join(sorted(ours['commits'] | theirs.get('commits', set())))} -->")
    return "\n".join(lines)


def reference(found: dict, earlier: str = "") -> str:
    """CleanRL's figures beside ours (the last 10 training episodes, mean ± std over our seeds) where a
    row of ROWS has CleanRL's budget; an `earlier` table's cell stays where this run measured nothing."""
    kept = {row_key(line): line for line in earlier.splitlines() if row_key(line)}
    lines = ["| script | environment, budget | CleanRL | ours |", "|---|---|---|---|"]
    for script, env_id, steps, theirs in CLEANRL:
        ours = found.get((script, env_id, steps))
        if ours:
            lines.append(f"| `{script}.py` | {env_id}, {steps} | {theirs} | {cell(ours['last10'])} ({len(ours['last10'])} seeds) "
                         f"| <!-- at {', '.join(sorted(ours['commits']))} -->")
        else:
            lines.append(kept.get((script, env_id, steps), f"| `{script}.py` | {env_id}, {steps} | {theirs} | not measured |"))
    return "\n".join(lines)


def commit_of_scripts() -> str:
    """HEAD's short hash, with "+changes" when a script or repository module differs from it."""
    import subprocess

    def git(*words):
        return subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "*.py", ":!tests", ":!benchmarks/expect.py", ":!benchmarks/plot.py")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+changes" if dirty else "")


def read_between(path: Path, marker: str) -> str:
    content = path.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    return content.split(start, 1)[1].split(end, 1)[0] if start in content and end in content else ""


def draw(found: dict, env_id: str, path: Path) -> None:
    """The learning curves of the rows on one environment, ours against SB3's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in ROWS if r[1] == env_id and (r[0], r[1], budget(r[2])) in found]
    cols = 4
    fig, axes = plt.subplots((len(rows) + cols - 1) // cols, cols, figsize=(18, 3.6 * ((len(rows) + cols - 1) // cols)), squeeze=False)
    for ax, (script, env_id, flags, sb3) in zip(axes.flat, rows):
        for arm, color in ((script, "C0"), (f"sb3-{sb3.lower()}" if sb3 else None, "C1")):
            entry = found.get((arm, env_id, budget(flags)))
            if not entry or not all(entry["curves"]):
                continue
            steps, ys = plot.curves_on_common_steps(entry["curves"], 3, CURVE_BINS)  # the curves are already binned
            ax.plot(steps, ys.mean(0), color=color, label=f"{'ours' if arm == script else 'SB3'} ({len(ys)} seeds)")
            ax.fill_between(steps, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0), color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"{script}.py, {env_id}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.suptitle("episodic return against environment steps; line: mean across seeds, band: ± 1 std", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_between(path: Path, marker: str, text: str) -> None:
    """Replaces what lies between `<!-- {marker} -->` and `<!-- /{marker} -->` in a Markdown file."""
    content = path.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in content or end not in content:
        sys.exit(f"error: {path} has no {start} … {end} markers")
    head, rest = content.split(start, 1)
    path.write_text(head + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def main(argv=None) -> None:
    from tqdm import tqdm

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder of the runs")
    p.add_argument("--workers", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    p.add_argument("--gpus-per-run", type=float, default=0, help="0: our scripts run on the CPU (--no-cuda); 1: each on the GPU "
                   "(SB3's runs stay on the CPU); a GPU run is another run than the CPU one (grid.py's identity)")
    p.add_argument("--only", nargs="*", help="only the rows on these environments")
    p.add_argument("--scripts", nargs="*", help="only the rows of these scripts (e.g. td3 ddpg)")
    p.add_argument("--budget", nargs="*", help="only the rows of these budgets (e.g. 1M, 100k)")
    p.add_argument("--write", action="store_true", help="write the table into README.md and docs/results.md, the plot to docs/")
    p.add_argument("--collect", action="store_true", help="run nothing: tabulate (and with --write, keep) the runs that finished, "
                   "e.g. after a grid was stopped part-way")
    args = p.parse_args(argv)
    runs, kept = plan(args), read_kept()
    carried = done_and_kept(runs, kept)
    todo, done, stale = ([], 0, 0) if args.collect else grid.sort_out([r for r in runs if r not in carried], args.out)
    for run in todo:  # the commit of the code it runs (the identity hash says exactly which files)
        (Path(run.folder) / "commit.txt").write_text(commit_of_scripts() + "\n")
    print(f"{len(runs)} runs, {done} already done, {len(carried)} kept in {KEPT.relative_to(ROOT)}, {len(todo)} to run, "
          f"{args.workers} at a time"
          + (f"; {stale} stale (other flags or code) moved to {args.out / 'stale'}" if stale else ""))
    with tqdm(total=len(todo), unit="run", dynamic_ncols=True) as progress:
        failures = grid.run_local(todo, args.workers, progress)
    if args.write:  # every finished run's summary, so that a later sitting need not run it again
        for run, fresh in ((r, ran(r)) for r in runs):
            if fresh and kept.get(Path(run.folder).name, {}).get("hash") != fresh["hash"]:  # not kept yet
                kept[Path(run.folder).name] = fresh
        keep(kept)
    # the table and plots from every row's finished runs, whether this command ran them or not
    found = figures(plan(argparse.Namespace(**{**vars(args), "only": None, "scripts": None, "budget": None})), kept)
    text = table(found, read_between(ROOT / "README.md", "expect") if args.write else "")
    print(text)
    if args.write:
        conditions = (f"Measured with `python benchmarks/expect.py --out results/expect --only <environment> [--scripts ...] --write` "
                      f"(finished runs are kept in docs/expect-runs.csv; the same command runs only what is missing): "
                      f"{args.workers} runs at a time on a 2-core CPU, {args.threads} torch thread each; ours over seeds "
                      f"{', '.join(map(str, OUR_SEEDS))}, SB3 2.9.2 over {', '.join(map(str, SB3_SEEDS))}; mean ± std "
                      f"across seeds.")
        shown = {row_key(line) for line in text.splitlines() if row_key(line)}
        missing = [f"`{script}.py` on {env_id} ({budget(flags)})" for script, env_id, flags, _ in ROWS
                   if (script, env_id, budget(flags)) not in shown]
        if missing:
            conditions += " Not measured yet: " + ", ".join(missing) + "."
        for env_id in sorted({key[1] for key in found}):
            draw(found, env_id, ROOT / "docs" / f"expect-{env_id}.png")
        plots = ", ".join(f"[{env_id}](docs/expect-{env_id}.png)" for env_id in dict.fromkeys(r[1] for r in ROWS)
                          if (ROOT / "docs" / f"expect-{env_id}.png").is_file())
        conditions += f" Learning curves: {plots}."
        write_between(ROOT / "README.md", "expect", text + "\n\n" + conditions)
        write_between(ROOT / "README.md", "cleanrl", reference(found, read_between(ROOT / "README.md", "cleanrl")))
        write_between(ROOT / "docs" / "results.md", "expect", text + "\n\n" + conditions.replace("(docs/", "("))
    if failures:
        sys.exit(f"error: {len(failures)} run(s) failed; run the same command again to retry them")


if __name__ == "__main__":
    main()
