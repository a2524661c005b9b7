"""The README's "What to expect": each script on its home environments, beside Stable-Baselines3.

Every row of ROWS runs our script over 5 seeds and its SB3 counterpart (benchmarks/sb3_run.py, the
same hyperparameters) over 3, with --save-model so that each run ends with 10 deterministic
evaluation episodes. The runs are grid.py's (resumable: a finished run is not run again), two at a
time with one torch thread each (--workers, --threads), on the CPU (--gpus-per-run 1: ours on the GPU). Per row the table gives the median wall time
of the row's runs, and over the seeds the mean ± population std (ddof 0) of each run's mean return over
its last 10 training episodes and of its evaluation's mean return, and the commits the row's runs were
measured at. --write puts the table into README.md and docs/results.md (between their `expect` markers)
and the curves into docs/expect-<environment>.png. Rows measured by an earlier --only run stay in the
table as they were, so the table can be filled one environment at a time. --write also keeps a summary
of every finished run (its identity, figures and a binned curve) in docs/expect-runs.csv: a run whose
summary is there with the identity the run would have now (the same command, threads and tags, and the
same bytes in every file of its code: the script and the repository modules it imports) is not run
again, so a long row can be filled over several sittings on machines that do not keep results/. Any
other run is run again, even where only a comment of its code changed; --plan says which runs those
are and why, and runs nothing.

Run:  python benchmarks/expect.py --out results/expect --plan         (what --write would run, and why)
      python benchmarks/expect.py --out results/expect --write        (the runs kept in docs/expect-runs.csv
                                                                       took 8.3 hours of run time in all)
      python benchmarks/expect.py --out results/expect --only Pendulum-v1 CartPole-v1
      python benchmarks/expect.py --out results/expect --only Hopper-v4 --scripts td3 ddpg --write
      python benchmarks/expect.py --out results/expect --only Hopper-v4 --collect --write   (after stopping a grid part-way)
      python benchmarks/expect.py --out ../long --budget 1M                  (CleanRL's budget: 15 runs of hours each)
"""
import argparse
import csv
import hashlib
import json
import re
import statistics
import subprocess
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
# CleanRL's published figures at the default budgets, the reference the README gives beside ours: (script, environment,
# budget, CleanRL's figure), rounded from CleanRL's documentation (github.com/vwxyzjn/cleanrl, docs/ at fe8d8a0):
# the Hopper-v4 rows and PPO on CartPole-v1 from docs/benchmark/{sac,td3,ddpg,ppo_continuous_action,ppo}.md
# (2310.46 ± 342.82, 3134.61 ± 360.18, 1576.78 ± 818.98, 2382.86 ± 271.74, 490.04 ± 6.12: runs tagged pr-424,
# 3 seeds each in benchmark/*.sh, tabulated by openrlbenchmark's rlops: per run the mean of its last 100 training
# episodes, then mean ± numpy's std, ddof 0, over the runs), DQN on CartPole-v1 from docs/rl-algorithms/dqn.md
# (488.69 ± 16.11, "average episodic returns", 3 seeds in benchmark/dqn.sh; the page does not say over which episodes).
# Ours is the mean of the last 10 training episodes, not 100.
CLEANRL = [
    ("sac_continuous", "Hopper-v4", "1M", "2310 ± 343"),
    ("sac_no_reparam", "Hopper-v4", "1M", None),  # nothing published: read against sac_continuous.py's row
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
    bins, returns = {}, []
    for _, _, _, _, tag, step, value in rows:
        if tag == "charts/episodic_return":
            returns.append(float(value))
            bins.setdefault(min(int(step) * CURVE_BINS // steps, CURVE_BINS - 1), []).append((int(step), float(value)))
    curve = [(round(statistics.mean(s for s, _ in b)), round(statistics.mean(v for _, v in b), 1)) for _, b in sorted(bins.items())]
    return {"seconds": final["final/seconds"], "last10": final.get("final/return_last10", float("nan")),
            "last100": statistics.mean(returns[-100:]) if returns else float("nan"),  # CleanRL's published measure
            "eval": final.get("final/eval_return", float("nan")), "peak_rss": final.get("final/peak_rss_mib", float("nan")),
            "curve": curve}


def read_kept(path: Path = KEPT) -> dict:
    """{run folder name: its kept summary, with "hash" (its identity) and "commit"}."""
    if not path.is_file():
        return {}
    with path.open() as f:
        return {r["run"]: {"hash": r["hash"], "commit": r["commit"], "seconds": float(r["seconds"]), "last10": float(r["last10"]),
                           "eval": float(r["eval"]), "peak_rss": float(r.get("peak_rss_mib") or "nan"),  # not kept before 145f397
                           "last100": float(r.get("last100") or "nan"),
                           "curve": [tuple(map(float, p.split(":"))) for p in r["curve"].split()]}
                for r in csv.DictReader(f)}


def keep(kept: dict, path: Path = KEPT) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["run", "hash", "commit", "seconds", "last10", "eval", "curve", "peak_rss_mib", "last100"])
        for name, r in sorted(kept.items()):
            rss, last100 = r.get("peak_rss", float("nan")), r.get("last100", float("nan"))
            out.writerow([name, r["hash"], r["commit"], f"{r['seconds']:.1f}", f"{r['last10']:.2f}", f"{r['eval']:.2f}",
                          " ".join(f"{s:.0f}:{v:g}" for s, v in r["curve"]), "" if rss != rss else f"{rss:.0f}",
                          "" if last100 != last100 else f"{last100:.2f}"])


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


def git_blob(commit: str, path: str) -> bytes | None:
    """The file at `path` as it was at `commit`, or None where git does not have it there."""
    proc = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def why_not_kept(run: grid.Run, entry: dict, blob=git_blob) -> str:
    """Why a kept run's identity is no longer the one the run would have now: the files of its code that
    differ from the commit it was measured at, and whether that accounts for the whole difference (the kept
    identity is this command's at that commit) or the command, threads or code it ran with differed too."""
    commit = entry["commit"].split("+")[0]
    now = grid.identity(run)
    then = {path: blob(commit, path) for path in now["code"]}
    if all(b is None for b in then.values()):
        return f"measured at {entry['commit']}, which git does not have here"
    changed = [path for path, b in then.items() if b is None or hashlib.sha256(b).hexdigest() != now["code"][path]]
    text = f"{', '.join(changed)} changed since {commit}" if changed else f"no file of its code changed since {commit}"
    described = {"command": now["command"], "threads": now["threads"], "tags": now["tags"],
                 "code": {path: hashlib.sha256(b).hexdigest() for path, b in then.items() if b is not None}}
    if hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16] != entry["hash"]:
        text += f"; its command, threads or code at {entry['commit']} also differ from these"
    return text


def states(runs: list[grid.Run], kept: dict, out: Path, blob=git_blob) -> list[tuple[grid.Run, str, str]]:
    """(run, what `--write` would do with it, why), reading only: "kept" (its summary in docs/expect-runs.csv
    has the identity the run would have now), "done" (finished in --out with that identity: tabulated, not
    run) or "would run" (with the reason)."""
    found = []
    for run in runs:
        wanted, entry = grid.identity(run)["hash"], kept.get(Path(run.folder).name)
        stored = Path(run.folder) / "identity.json"
        if entry and entry["hash"] == wanted:
            found.append((run, "kept", f"measured at {entry['commit']}"))
        elif stored.is_file() and json.loads(stored.read_text()).get("hash") == wanted and (Path(run.folder) / "result.csv").is_file():
            found.append((run, "done", f"finished in {out}"))
        elif entry:
            found.append((run, "would run", why_not_kept(run, entry, blob)))
        else:
            found.append((run, "would run", "not measured"))
    return found


def plan_lines(found: list[tuple[grid.Run, str, str]]) -> list[str]:
    """One line per row and arm: how many of its seeds are kept, done or would run, and why."""
    groups = {}
    for run, state, reason in found:
        row = (run.arm, run.env_id, budget(" ".join(run.flags)))
        groups.setdefault(row, {}).setdefault((state, reason), []).append(run.seed)
    lines = []
    for (arm, env_id, steps), by in groups.items():
        said = "; ".join(f"{state} {len(seeds)} (seeds {', '.join(map(str, seeds))}): {reason}" for (state, reason), seeds in by.items())
        lines.append(f"{arm}, {env_id}, {steps}: {said}")
    return lines


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
                               {"seconds": [], "last10": [], "last100": [], "eval": [], "peak_rss": [], "curves": [], "commits": set()})
        for key, column in (("seconds", "seconds"), ("last10", "last10"), ("last100", "last100"), ("eval", "eval"),
                            ("peak_rss", "peak_rss"), ("curve", "curves")):
            entry[column].append(found.get(key, float("nan")))
        entry["commits"].add(found["commit"])
    return out


def cell(values: list[float], of: int = 0) -> str:
    """mean ± std (one run: its value alone, with no spread to show), and "(n of `of` seeds)" while a row is
    measured in part."""
    text = "—" if not values else f"{values[0]:.0f}" if len(values) == 1 else f"{statistics.mean(values):.0f} ± {statistics.pstdev(values):.0f}"
    return text + (f" ({len(values)} of {of} seeds)" if values and of and len(values) != of else "")


def seeds_said(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def minutes(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) / 60:.1f} min" if seconds else "—"


HEADER = ["| script | environment, steps | time per run | last 10 training episodes | evaluation (10 episodes) "
          "| SB3: time per run | SB3: last 10 | SB3: evaluation | measured at |", "|---|---|---|---|---|---|---|---|---|"]


def row_key(line: str) -> tuple[str, str, str] | None:
    """(script, environment, budget) of one of the table's rows, e.g. "| `td3.py` | Pendulum-v1, 20k | …"."""
    m = re.match(r"\| `(\w+)\.py` \| ([^,|]+), (\w+) \|", line)
    return m.groups() if m else None


def table(found: dict, earlier: str = "") -> str:
    """The table in ROWS order: the rows of `found` (each with the commits its runs were measured at),
    then, in their place, the rows of the `earlier` table that `found` does not have."""
    kept = {row_key(line): line for line in earlier.splitlines() if row_key(line)}
    lines = list(HEADER)
    for script, env_id, flags, sb3 in ROWS:
        if budget(flags) == "1M":  # CleanRL's budget: in reference()'s table
            continue
        ours = found.get((script, env_id, budget(flags)))
        if ours is None:
            if (script, env_id, budget(flags)) in kept:
                lines.append(kept[script, env_id, budget(flags)])
            continue
        theirs = found.get((f"sb3-{sb3.lower()}", env_id, budget(flags)), {}) if sb3 else {}
        lines.append(f"| `{script}.py` | {env_id}, {budget(flags)} | {minutes(ours['seconds'])} | {cell(ours['last10'], len(our_seeds(flags)))} "
                     f"| {cell(ours['eval'])} | {minutes(theirs.get('seconds', []))} | {cell(theirs.get('last10', []), len(SB3_SEEDS))} "
                     f"| {cell(theirs.get('eval', []))} | {', '.join(sorted(ours['commits'] | theirs.get('commits', set())))} |")
    return "\n".join(lines)


def verdict(ours: list[float], theirs: str, seeds: int) -> str:
    """docs/results.md's rule, fixed before the 1M runs ended: "at its level" when our mean over all the row's seeds is
    at least the reference's mean minus its std, "below" otherwise; no verdict until every seed has run."""
    if len(ours) < seeds:
        return f"pending ({len(ours)} of {seeds} seeds)"
    mean, std = (float(x) for x in theirs.split(" ± "))
    return "at its level" if statistics.mean(ours) >= mean - std else "below"


def memory(values: list[float]) -> str:
    values = [v for v in values if v == v]
    return f"{max(values):.0f} MiB" if values else "—"


REFERENCE_HEADER = ["| script | environment, budget | CleanRL (last 100) | ours: last 100 | ours: last 10 | ours: evaluation "
                    "| time per run | peak memory | verdict | measured at |", "|---|---|---|---|---|---|---|---|---|---|"]


def reference(found: dict, earlier: str = "") -> str:
    """CleanRL's figures beside ours, in CleanRL's measure (per run the mean return of its last 100 training episodes;
    mean ± std over the runs), with our last 10, our evaluation, the median time of a run, the largest peak resident
    memory and the verdict of verdict(); sac_no_reparam.py, which has no published figure, is read against our
    sac_continuous.py row. A row whose runs kept no last-100 figure gets no verdict. An `earlier` table's row stays
    where this run measured nothing."""
    kept = {row_key(line): line for line in earlier.splitlines()  # (rows of this table's present columns only)
            if row_key(line) and line.count("|") == REFERENCE_HEADER[0].count("|")}
    lines = list(REFERENCE_HEADER)
    for script, env_id, steps, theirs in CLEANRL:
        ours = found.get((script, env_id, steps))
        seeds = len(LONG_SEEDS if steps == "1M" else OUR_SEEDS)
        if theirs is None:  # the reference is our own sac_continuous.py row, once complete
            sac = [v for v in found.get(("sac_continuous", env_id, steps), {}).get("last100", []) if v == v]
            theirs = cell(sac) if len(sac) >= seeds else None
            shown = f"none; `sac_continuous.py`: {theirs or 'pending'}"
        else:
            shown = theirs
        if ours:
            last100 = [v for v in ours.get("last100", []) if v == v]
            judged = "— (no last-100 kept)" if not last100 else verdict(last100, theirs, seeds) if theirs else "pending"
            lines.append(f"| `{script}.py` | {env_id}, {steps} | {shown} | {f'{cell(last100)} ({seeds_said(len(last100))})' if last100 else '—'} "
                         f"| {cell(ours['last10'])} | {cell(ours['eval'])} | {minutes(ours['seconds'])} "
                         f"| {memory(ours.get('peak_rss', []))} | {judged} | {', '.join(sorted(ours['commits']))} |")
        else:
            fresh = f"| `{script}.py` | {env_id}, {steps} | {shown} | not measured | | | | | | |"
            old_row = kept.get((script, env_id, steps), fresh)  # a row measured before, or a fresh reference where none was
            lines.append(fresh if "| not measured |" in old_row else old_row)
    return "\n".join(lines)


def commit_of_scripts() -> str:
    """HEAD's short hash, with "+changes" when a script or repository module differs from it."""
    def git(*words):
        return subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "*.py", ":!tests", ":!benchmarks/expect.py", ":!benchmarks/plot.py")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+changes" if dirty else "")


def read_between(path: Path, marker: str) -> str:
    content = path.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    return content.split(start, 1)[1].split(end, 1)[0] if start in content and end in content else ""


def draw(found: dict, env_id: str, path: Path, long: bool = False) -> None:
    """The learning curves of the rows on one environment, ours against SB3's; with `long`, those of the 1M rows,
    with CleanRL's published mean ± std marked at 1M."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in ROWS if r[1] == env_id and (r[0], r[1], budget(r[2])) in found and (budget(r[2]) == "1M") == long]
    cols = 4
    fig, axes = plt.subplots((len(rows) + cols - 1) // cols, cols, figsize=(18, 3.6 * ((len(rows) + cols - 1) // cols)), squeeze=False)
    for ax, (script, env_id, flags, sb3) in zip(axes.flat, rows):
        twin = "sac_continuous" if long and script == "sac_no_reparam" else None  # its reference, having no published one
        for arm, color, name in ((script, "C0", "ours"), (f"sb3-{sb3.lower()}" if sb3 else None, "C1", "SB3"), (twin, "C2", f"{twin}.py")):
            entry = found.get((arm, env_id, budget(flags)))
            if not entry or not all(entry["curves"]):
                continue
            steps, ys = plot.curves_on_common_steps(entry["curves"], 3, CURVE_BINS)  # the curves are already binned
            ax.plot(steps, ys.mean(0), color=color, label=f"{name} ({seeds_said(len(ys))})")
            ax.fill_between(steps, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0), color=color, alpha=0.2, linewidth=0)
        published = [theirs for s, e, b, theirs in CLEANRL if (s, e, b) == (script, env_id, budget(flags)) and theirs]
        if published:
            mean, std = (float(x) for x in published[0].split(" ± "))
            ax.errorbar([1_000_000 if long else int(re.search(r"--total-timesteps (\d+)", flags).group(1))], [mean], yerr=[std],
                        fmt="o", color="k", capsize=4, label=f"CleanRL: {published[0]}")
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
    p.add_argument("--plan", action="store_true", help="run and write nothing: per row and arm, which runs --write would keep "
                   "and which it would run, and why (the files changed since the commit a kept run was measured at)")
    args = p.parse_args(argv)
    if args.write:  # before hours of runs, not after: the plot needs matplotlib
        plot.need("matplotlib")
    runs, kept = plan(args), read_kept()
    if args.plan:
        found = states(runs, kept, args.out)
        print("\n".join(plan_lines(found)))
        print(f"{len(found)} runs: " + ", ".join(f"{sum(s == state for _, s, _ in found)} {state}" for state in ("kept", "done", "would run")))
        return
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
        seeds = lambda seeds: ", ".join(map(str, seeds))  # noqa: E731
        conditions = (f"Measured with `python benchmarks/expect.py --out results/expect --only <environment> [--scripts ...] --write`, "
                      f"{args.workers} runs at a time on a 2-core CPU, {args.threads} torch thread each (the machines are named "
                      f"below); ours over seeds {seeds(OUR_SEEDS)} ({seeds(LONG_SEEDS)} at 1M steps), SB3 2.9.2 over "
                      f"{seeds(SB3_SEEDS)}. Time per run: the median over the runs of its column. Returns: each run's mean over its last 10 "
                      f"training episodes or its 10 evaluation episodes, then the mean ± population std (ddof 0) across seeds. "
                      f"Finished runs are kept in docs/expect-runs.csv; `--plan` in place of `--write` says which of them the "
                      f"command would run again, and why.")
        shown = {row_key(line) for line in text.splitlines() if row_key(line)}
        missing = [f"`{script}.py` on {env_id} ({budget(flags)})" for script, env_id, flags, _ in ROWS
                   if (script, env_id, budget(flags)) not in shown and budget(flags) != "1M"]
        if missing:
            conditions += " Not measured yet: " + ", ".join(missing) + "."
        for env_id in sorted({key[1] for key in found if key[2] != "1M"}):
            draw(found, env_id, ROOT / "docs" / f"expect-{env_id}.png")
        for env_id in sorted({key[1] for key in found if key[2] == "1M"}):
            draw(found, env_id, ROOT / "docs" / f"expect-{env_id}-1M.png", long=True)
        plots = ", ".join(f"[{env_id}](docs/expect-{env_id}.png)" for env_id in dict.fromkeys(r[1] for r in ROWS)
                          if (ROOT / "docs" / f"expect-{env_id}.png").is_file())
        conditions += f" Learning curves: {plots}."
        write_between(ROOT / "README.md", "expect", text + "\n\n" + conditions)
        long_plots = [env_id for env_id in dict.fromkeys(r[1] for r in ROWS if budget(r[2]) == "1M")
                      if (ROOT / "docs" / f"expect-{env_id}-1M.png").is_file()]
        cleanrl = reference(found, read_between(ROOT / "README.md", "cleanrl"))
        cleanrl_conditions = ("1M rows: seeds " + ", ".join(map(str, LONG_SEEDS)) + ", `--compile`, 2 runs at a time, 1 torch thread each"
                              + ("; learning curves: " + ", ".join(f"[{e}, 1M](docs/expect-{e}-1M.png)" for e in long_plots) if long_plots else "")
                              + ". 500k rows: the runs of the table above. Verdict rule: [docs/results.md](docs/results.md).")
        write_between(ROOT / "README.md", "cleanrl", cleanrl + "\n\n" + cleanrl_conditions)
        write_between(ROOT / "docs" / "results.md", "cleanrl", cleanrl + "\n\n" + cleanrl_conditions.replace("(docs/", "("))
        write_between(ROOT / "docs" / "results.md", "expect", text + "\n\n" + conditions.replace("(docs/", "("))
    if failures:
        sys.exit(f"error: {len(failures)} run(s) failed; run the same command again to retry them")


if __name__ == "__main__":
    main()
