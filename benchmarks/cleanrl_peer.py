"""CleanRL's own file of an algorithm, run on this machine: the controlled comparison behind a 1M row
of docs/results.md that falls below CleanRL's published figure (is the gap in our script, or in the
library versions both run on?).

CleanRL's files were written for gymnasium 0.29. This takes one from a CleanRL checkout, changes only
what gymnasium 1.x requires (PATCHES: each change must match CleanRL's text exactly once, so a CleanRL
revision that moved a line stops here with one line instead of running something else), writes the
result to OUT/<file> and runs it once per seed, in OUT/seed<N>/, on the CPU with one torch thread by
default. Each finished run leaves OUT/seed<N>/result.csv in benchmarks/grid.py's format (arm
`cleanrl-<algo>`): its episodic returns, final/return_last10, final/return_last100 (CleanRL's published
measure), final/seconds and final/peak_rss_mib; OUT/results.csv gathers them. A seed with a result.csv
made from the same patched file is skipped; one made from another file is refused.

Run (CleanRL at the commit docs/results.md names):
    git clone https://github.com/vwxyzjn/cleanrl ../cleanrl && git -C ../cleanrl checkout fe8d8a0
    python benchmarks/cleanrl_peer.py --cleanrl ../cleanrl --algo ppo --seeds 1 2 3 --out results/cleanrl-ppo
    python benchmarks/grid.py --arm "ppo=ppo.py --total-timesteps 1000000 --compile --save-model --eval-episodes 10" \\
        --env-ids Hopper-v4 --seeds 1 2 3 --workers 2 --out results/ppo-1M
    python benchmarks/plot.py results/cleanrl-ppo/results.csv results/ppo-1M/results.csv --out results/ppo-vs-cleanrl \\
        --table final/return_last100 final/return_last10 --claim "cleanrl-ppo > ppo"
"""
import argparse
import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from grid import error_line, read_rows, run_process, run_rows, write_rows  # noqa: E402

# algo -> (the file in CleanRL's repository, [(CleanRL's text, the text that replaces it), ...])
PATCHES = {
    "ppo": ("cleanrl/ppo_continuous_action.py", [
        # gymnasium 1.x: TransformObservation takes the new observation space
        ("env = gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10))\n",
         "env = gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10), env.observation_space)"
         "  # gymnasium 1.x signature\n"),
        # gymnasium 1.x resets an ended episode at the next step by default; 0.29 did it within the step
        ("for i in range(args.num_envs)]\n",
         "for i in range(args.num_envs)],\n"
         "        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,  # gymnasium 1.x: the 0.29 behaviour this file was written for\n"),
        # gymnasium 1.x: final_info is one dict of arrays (with a mask per key), not a list of per-env dicts
        ("""            if "final_info" in infos:
                for info in infos["final_info"]:
                    if info and "episode" in info:
                        print(f"global_step={global_step}, episodic_return={info['episode']['r']}")
                        writer.add_scalar("charts/episodic_return", info["episode"]["r"], global_step)
                        writer.add_scalar("charts/episodic_length", info["episode"]["l"], global_step)
""",
         """            if "final_info" in infos and "episode" in infos["final_info"]:  # gymnasium 1.x info layout
                ep = infos["final_info"]["episode"]
                for i in np.flatnonzero(infos["final_info"]["_episode"]):
                    writer.add_scalar("charts/episodic_return", ep["r"][i], global_step)
                    writer.add_scalar("charts/episodic_length", ep["l"][i], global_step)
"""),
        # output only: the speed line printed at every iteration (the same figure goes to TensorBoard)
        ('        print("SPS:", int(global_step / (time.time() - start_time)))\n', ""),
    ]),
}


def patched(text: str, changes: list[tuple[str, str]], name: str) -> str:
    """CleanRL's text with each change applied; exits with one line where a change does not match exactly once."""
    for old, new in changes:
        if text.count(old) != 1:
            sys.exit(f"error: {name}: the line to change for gymnasium 1.x is there {text.count(old)} times, not once: "
                     f"{old.strip().splitlines()[0]!r}; use CleanRL at the commit docs/results.md names (fe8d8a0)")
        text = text.replace(old, new)
    return text


def run_seed(args: argparse.Namespace, script: Path, digest: str, seed: int) -> list[list]:
    from runlogs import read_scalars
    folder = args.out / f"seed{seed}"
    if (folder / "result.csv").is_file():
        made_with = (folder / "file.sha256").read_text().strip() if (folder / "file.sha256").is_file() else "unknown"
        if made_with != digest:
            sys.exit(f"error: {folder} holds a run of another file ({made_with[:12]}, now {digest[:12]}): move it aside or use another --out")
        return read_rows(folder / "result.csv")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "file.sha256").write_text(digest + "\n")
    argv = [sys.executable, str(script.resolve()), "--env-id", args.env_id, "--seed", str(seed), "--no-cuda", *args.flags.split()]
    code, seconds, peak_rss_mib, stdout, stderr = run_process(argv, folder, args.threads)
    if code != 0:
        raise RuntimeError(f"seed {seed}: exit status {code}: {error_line(stderr)}")
    run_dir = max((folder / "runs").iterdir(), key=lambda p: p.stat().st_mtime)  # a seed rerun after a kill: the newest
    scalars = read_scalars(run_dir)
    if not scalars.get("charts/episodic_return"):
        raise RuntimeError(f"seed {seed}: no episodic return logged")
    rows = run_rows([f"cleanrl-{args.algo}", script.name, args.env_id, seed], scalars, (), stdout, seconds, peak_rss_mib,
                    last=(10, 100))  # CleanRL's measure (last 100) beside ours
    write_rows(folder / "result.csv", rows)
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cleanrl", type=Path, required=True, help="a checkout of github.com/vwxyzjn/cleanrl")
    p.add_argument("--algo", choices=sorted(PATCHES), default="ppo")
    p.add_argument("--env-id", default="Hopper-v4")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--flags", default="", help="more flags for CleanRL's file, in one string (e.g. \"--total-timesteps 100000\")")
    p.add_argument("--out", type=Path, required=True, help="folder of the patched file, the runs and results.csv")
    p.add_argument("--workers", type=int, default=1, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    args = p.parse_args(argv)
    relative, changes = PATCHES[args.algo]
    source = args.cleanrl / relative
    if not source.is_file():
        sys.exit(f"error: --cleanrl {args.cleanrl}: no {relative} there; give a checkout of github.com/vwxyzjn/cleanrl")
    text = patched(source.read_text(), changes, relative)
    args.out.mkdir(parents=True, exist_ok=True)
    script = args.out / source.name
    script.write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda seed: run_seed(args, script, digest, seed), args.seeds))
    write_rows(args.out / "results.csv", [row for rows in results for row in rows])
    for seed, rows in zip(args.seeds, results):
        last = {row[4]: float(row[6]) for row in rows if str(row[4]).startswith("final/")}
        print(f"seed {seed}: last 100 {last['final/return_last100']:.0f}, last 10 {last['final/return_last10']:.0f}")
    print(f"wrote {args.out / 'results.csv'}")


if __name__ == "__main__":
    main()
