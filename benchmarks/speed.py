"""Training-phase speed of our scripts against stable-baselines3 with the same hyperparameters.

Each run is a fresh subprocess on the CPU with torch limited to --threads threads: --learning-starts
steps of random actions, then --steps steps with one gradient update each. The figure is that of
the training phase only (steps after learning_starts per second of wall time, updates included):
our scripts print it as "training-phase SPS: ..."; for SB3 this file runs itself as a worker that
times the same phase with a callback and prints the same line. Implementations run round-robin,
--repeats times, and the table shows the median of each.

Run:  python benchmarks/speed.py --algos sac td3 --steps 2000 --repeats 3 --json speed.json
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALGOS = {  # our algorithm: (our script, the SB3 algorithm it is compared with)
    "sac": ("sac_continuous.py", "SAC"),
    "sac_no_reparam": ("sac_no_reparam.py", "SAC"),
    "td3": ("td3.py", "TD3"),
    "ddpg": ("ddpg.py", "DDPG"),
}
SPS_LINE = re.compile(r"training-phase SPS: ([0-9.eE+-]+)")
POLICY_LR, Q_LR = 3e-4, 1e-3  # our scripts' learning rates (SAC: log α uses Q_LR, TD3/DDPG: both 3e-4)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env-id", default="Hopper-v4")
    p.add_argument("--steps", type=int, default=2000, help="timed training steps after --learning-starts")
    p.add_argument("--learning-starts", type=int, default=1000, help="untimed steps of random actions first")
    p.add_argument("--repeats", type=int, default=3, help="runs of each implementation (median reported)")
    p.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads of every run")
    p.add_argument("--seed", type=int, default=1, help="seed of the first repeat (repeat r uses seed + r)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--sb3-worker", choices=sorted({sb3 for _, sb3 in ALGOS.values()}), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps <= 0 or args.learning_starts < 1 or args.repeats <= 0 or args.threads <= 0:
        p.error("need --steps > 0, --learning-starts >= 1, --repeats > 0, --threads > 0")
    return args


# ---------------------------------------------------------------------------------------------
# SB3 worker: one SB3 run in this process (started by run() below with --sb3-worker NAME)
# ---------------------------------------------------------------------------------------------
def build_sb3(name: str, env_id: str, learning_starts: int, seed: int):
    """SB3's `name` with our scripts' hyperparameters."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DDPG, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.utils import update_learning_rate

    class SplitLrSAC(SAC):
        """SB3's SAC has one learning rate for all optimizers; ours has policy 3e-4, critics and log α 1e-3."""

        def _update_learning_rate(self, optimizers) -> None:
            for optimizer, lr in ((self.actor.optimizer, POLICY_LR), (self.critic.optimizer, Q_LR),
                                  (self.ent_coef_optimizer, Q_LR)):
                update_learning_rate(optimizer, lr)

    env = gym.make(env_id)
    act_dim = env.action_space.shape[0]
    noise = NormalActionNoise(np.zeros(act_dim), 0.1 * np.ones(act_dim))  # in SB3's [-1, 1] action units
    table = {
        "SAC": (SplitLrSAC, dict(ent_coef="auto_0.2", target_entropy="auto", target_update_interval=1)),
        "TD3": (TD3, dict(action_noise=noise, policy_delay=2, target_policy_noise=0.2, target_noise_clip=0.5)),
        "DDPG": (DDPG, dict(action_noise=noise)),  # SB3's DDPG: TD3 with 1 critic, no delay, no target noise
    }
    cls, kwargs = table[name]
    return cls("MlpPolicy", env, learning_rate=POLICY_LR, buffer_size=1_000_000, batch_size=256, gamma=0.99,
               tau=0.005, train_freq=1, gradient_steps=1, learning_starts=learning_starts,
               policy_kwargs=dict(net_arch=[256, 256]), device="cpu", seed=seed, verbose=0, **kwargs)


def sb3_worker(args: argparse.Namespace) -> None:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(args.threads)
    model = build_sb3(args.sb3_worker, args.env_id, args.learning_starts, args.seed)

    class PhaseStart(BaseCallback):
        """Notes (time, step) at the first step past learning_starts, before its first update."""
        start = None

        def _on_step(self) -> bool:
            if self.start is None and self.num_timesteps > args.learning_starts:
                self.start = (time.time(), self.num_timesteps)
            return True

    timer = PhaseStart()
    model.learn(total_timesteps=args.learning_starts + args.steps, callback=timer)
    sps = (model.num_timesteps - timer.start[1]) / (time.time() - timer.start[0])
    print(f"training-phase SPS: {sps:.1f} (steps after learning_starts per second)")


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def command(impl: tuple[str, str], args: argparse.Namespace, seed: int) -> list[str]:
    """The command line of one run of impl = ("ours", algo) or ("sb3", SB3 name)."""
    kind, name = impl
    common = ["--env-id", args.env_id, "--learning-starts", str(args.learning_starts), "--seed", str(seed)]
    if kind == "ours":
        return [sys.executable, str(ROOT / ALGOS[name][0]), *common,
                "--total-timesteps", str(args.learning_starts + args.steps), "--no-cuda"]
    return [sys.executable, str(Path(__file__).resolve()), "--sb3-worker", name, *common,
            "--steps", str(args.steps), "--threads", str(args.threads)]


def run(impl: tuple[str, str], args: argparse.Namespace, seed: int, workdir: str) -> float | None:
    """One subprocess run in workdir (where our scripts write runs/); its training-phase SPS or None."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(command(impl, args, seed), cwd=workdir, env=env, capture_output=True, text=True)
    match = SPS_LINE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        tail = "\n    ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        print(f"  {impl[0]} {impl[1]} failed (exit code {proc.returncode}):\n    {tail}", flush=True)
        return None
    return float(match.group(1))


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    args = parse_args()
    if args.sb3_worker:
        return sb3_worker(args)

    algos = []
    for algo in args.algos:
        if (ROOT / ALGOS[algo][0]).exists():
            algos.append(algo)
        else:
            print(f"skipping {algo}: {ROOT / ALGOS[algo][0]} does not exist")
    # each of our scripts followed by its SB3 counterpart, each run once (sac_no_reparam reuses SB3's SAC)
    impls = list(dict.fromkeys(impl for a in algos for impl in (("ours", a), ("sb3", ALGOS[a][1]))))
    sps = {impl: [] for impl in impls}
    print(f"{args.env_id}: {args.learning_starts} random steps, then {args.steps} timed training steps; "
          f"{args.threads} torch threads on CPU; {args.repeats} round-robin repeats of {len(impls)} runs")
    load_before = os.getloadavg()[0]
    print(f"load average before: {load_before:.2f} on {os.cpu_count()} CPUs (other work on the CPUs skews the figures)")
    with tempfile.TemporaryDirectory(prefix="speed-") as workdir:
        for r in range(args.repeats):
            for impl in impls:
                sps[impl].append(run(impl, args, args.seed + r, workdir))
                value = "failed" if sps[impl][-1] is None else f"{sps[impl][-1]:.1f} SPS"
                print(f"[repeat {r + 1}/{args.repeats}] {impl[0]:4} {impl[1]:15} {value}", flush=True)

    rows = []
    for algo in algos:
        ours, sb3 = median(sps[("ours", algo)]), median(sps[("sb3", ALGOS[algo][1])])
        rows.append(dict(algo=algo, ours_sps=ours, sb3_algo=ALGOS[algo][1], sb3_sps=sb3,
                         ratio=ours / sb3 if ours and sb3 else None))
    fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
    print(f"\n{'algorithm':16} {'ours SPS':>9} {'SB3':>5} {'SB3 SPS':>9} {'ours/SB3':>9}")
    for row in rows:
        print(f"{row['algo']:16} {fmt(row['ours_sps'], '9.1f')} {row['sb3_algo']:>5} "
              f"{fmt(row['sb3_sps'], '9.1f')} {fmt(row['ratio'], '9.2f')}")
    load_after = os.getloadavg()[0]
    print(f"(median of {args.repeats} runs each; load average after: {load_after:.2f})")

    if args.json:
        import stable_baselines3
        import torch

        result = dict(env_id=args.env_id, steps=args.steps, learning_starts=args.learning_starts,
                      repeats=args.repeats, threads=args.threads, seed=args.seed, command=sys.argv,
                      cpus=os.cpu_count(), load_average_before=load_before, load_average_after=load_after,
                      versions=dict(torch=torch.__version__, stable_baselines3=stable_baselines3.__version__),
                      rows=rows, runs=[dict(impl=f"{kind}:{name}", sps=v) for (kind, name), v in sps.items()])
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
