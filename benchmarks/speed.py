"""Training-phase speed of our scripts against Stable-Baselines3, or against our scripts at a git revision.

Each run is a fresh subprocess on the CPU with torch limited to --threads threads. Off-policy
algorithms: --learning-starts steps of random actions, then --steps steps of training (one gradient
update per step for the actor-critics; one per 10 steps for DQN, its CartPole default), and the
figure is that of the training phase only (steps after learning_starts per second of wall time,
updates included). On-policy algorithms (PPO, A2C): --steps steps, all of them timed, rollouts and
updates. Our scripts print the figure as "training-phase SPS: ..."; for SB3 this file runs itself as
a worker that times the same phase with a callback and prints the same line, with the same
hyperparameters as our scripts (and for SBX, Stable-Baselines-Jax, timed after its JAX compilation).
--against chooses what ours is compared with: sb3, sbx, cleanrl-jax (CleanRL's own JAX TD3 or DDPG
file, run unchanged from a CleanRL checkout given with --cleanrl, timed from its 10th minibatch draw,
after JAX compiled its updates, to its last), rev:REV (our scripts at a git revision, for a
speed change: e.g. rev:main), and/or plain (our scripts without --flags: eager beside --flags=--compile).
With --cuda our runs (plain and rev: too) train on the GPU; the others stay on the CPU. Each algorithm's runs follow
each other, their order turned every repeat, --repeats times; the table gives the median of each,
their ratio, and the median and range of the repeats' own ratios (runs next to each other, which the
machine's drift affects least). With --concurrent, our run and the other run at the same time, each
pinned to a core with one thread, so that the drift slows both alike.

Run:  python benchmarks/speed.py --algos sac td3 dqn ppo a2c --repeats 3 --json speed.json
      python benchmarks/speed.py --against rev:main --repeats 7          (did a change slow a script?)
      python benchmarks/speed.py --repeats 5 --concurrent
      python benchmarks/speed.py --algos sac td3 --against sb3 sbx --flags=--compile --repeats 3
      python benchmarks/speed.py --algos sac --against plain --flags=--compile --cuda     (compiled against eager, on a GPU)
      python benchmarks/speed.py --algos sac --threads 0 --busy-loop     (under load, threads as a user runs)
      git clone https://github.com/vwxyzjn/cleanrl ../cleanrl
      python benchmarks/speed.py --algos td3 --against sb3 sbx cleanrl-jax --cleanrl ../cleanrl --flags=--compile
"""
import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from runlogs import SPS_LINE  # noqa: E402
class Algo(NamedTuple):
    script: str  # our script
    sb3: str  # the SB3 algorithm it is compared with
    env_id: str  # the environment of the comparison (--env-id overrides it)
    steps: int  # timed training steps (--steps overrides it): enough for a stable figure
    flags: tuple = ()  # flags of our script that match SB3's defaults used here
    on_policy: bool = False  # no --learning-starts: every step of the run is timed


ALGOS = {
    "sac": Algo("sac_continuous.py", "SAC", "Hopper-v4", 2000),
    "sac_no_reparam": Algo("sac_no_reparam.py", "SAC", "Hopper-v4", 2000),
    "td3": Algo("td3.py", "TD3", "Hopper-v4", 2000),
    "ddpg": Algo("ddpg.py", "DDPG", "Hopper-v4", 2000),
    "dqn": Algo("dqn.py", "DQN", "CartPole-v1", 20000, ("--loss", "huber")),  # SB3's DQN: Huber loss
    "ddqn": Algo("ddqn.py", "DQN", "CartPole-v1", 20000, ("--loss", "huber")),  # SB3 has no Double DQN: its DQN
    "ppo": Algo("ppo.py", "PPO", "Hopper-v4", 20480, on_policy=True),  # 10 rollouts of 2048 steps
    "a2c": Algo("a2c.py", "A2C", "CartPole-v1", 50000, on_policy=True),
}
POLICY_LR, Q_LR = 3e-4, 1e-3  # our scripts' learning rates (SAC: log α uses Q_LR, TD3/DDPG: both 3e-4)
# CleanRL's JAX files of our algorithms and the flags that give them our scripts' hyperparameters (ours took
# CleanRL's defaults, except DDPG's actor step: every step in ours, SB3 and SBX, every second in CleanRL's DDPG)
CLEANRL_JAX = {"td3": ("cleanrl/td3_continuous_action_jax.py", ()),
               "ddpg": ("cleanrl/ddpg_continuous_action_jax.py", ("--policy-frequency", "1"))}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env-id", help="the environment of every algorithm (default: each its own, see ALGOS)")
    p.add_argument("--steps", type=int, help="timed training steps after --learning-starts (default: see ALGOS)")
    p.add_argument("--learning-starts", type=int, default=1000, help="untimed steps of random actions first")
    p.add_argument("--repeats", type=int, default=3, help="runs of each implementation (median reported)")
    p.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    p.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads of every run; 0 leaves them unset, as a user runs a script (ours then share the "
                        "cores with other processes, see plumbing.CoreShare; SB3 and SBX take every core)")
    p.add_argument("--busy-loop", action="store_true",
                   help="a Python busy loop (one core) runs beside every run: how each keeps its speed under load")
    p.add_argument("--against", nargs="+", default=["sb3"], metavar="IMPL",
                   help="what ours is compared with: sb3 (Stable-Baselines3, the default), sbx (Stable-Baselines-Jax), "
                        "cleanrl-jax (CleanRL's JAX TD3 and DDPG; needs --cleanrl), and/or rev:REV, our scripts at the "
                        "git revision REV (e.g. rev:main), and/or plain, our scripts without --flags (e.g. eager beside "
                        "--flags=--compile), all run round-robin")
    p.add_argument("--cuda", action="store_true", help="our runs (plain and rev: too) on the GPU torch sees; the others stay on the CPU")
    p.add_argument("--cleanrl", type=Path, help="a checkout of github.com/vwxyzjn/cleanrl, for --against cleanrl-jax")
    p.add_argument("--flags", default="", help="more flags for our scripts' runs (not the --against ones), e.g. --flags=--compile (with =, as the value starts with --)")
    p.add_argument("--concurrent", action="store_true",
                   help="run each of our scripts at the same time as its SB3 counterpart, each pinned to a core of "
                        "its own with 1 thread (--threads ignored), swapping cores every repeat: the machine's drift "
                        "then slows both alike, and the ratio is the median of the pairs' ratios")
    p.add_argument("--seed", type=int, default=1, help="seed of the first repeat (repeat r uses seed + r)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--sb3-worker", choices=sorted({a.sb3 for a in ALGOS.values()}), help=argparse.SUPPRESS)
    p.add_argument("--sbx-worker", choices=["SAC", "TD3", "DDPG", "DQN", "PPO"], help=argparse.SUPPRESS)
    p.add_argument("--cleanrl-worker", choices=list(CLEANRL_JAX), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if ("cleanrl-jax" in args.against or args.cleanrl_worker) and not (args.cleanrl and (args.cleanrl / "cleanrl_utils").is_dir()):
        p.error(f"--against cleanrl-jax needs --cleanrl DIR, a checkout of github.com/vwxyzjn/cleanrl (got {args.cleanrl})")
    if (args.steps is not None and args.steps <= 0) or args.learning_starts < 1 or args.repeats <= 0 or args.threads < 0:
        p.error("need --steps > 0, --learning-starts >= 1, --repeats > 0, --threads >= 0")
    return args


# ---------------------------------------------------------------------------------------------
# SB3 worker: one SB3 run in this process (started by run() below with --sb3-worker NAME)
# ---------------------------------------------------------------------------------------------
def build_sb3(name: str, env_id: str, learning_starts: int, seed: int):
    """SB3's `name` with our scripts' hyperparameters (DQN: its gradient clipping at norm 10 stays on)."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DDPG, DQN, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.utils import update_learning_rate

    class SplitLrSAC(SAC):
        """SB3's SAC has one learning rate for all optimizers; ours has policy 3e-4, critics and log α 1e-3."""

        def _update_learning_rate(self, optimizers) -> None:
            for optimizer, lr in ((self.actor.optimizer, POLICY_LR), (self.critic.optimizer, Q_LR),
                                  (self.ent_coef_optimizer, Q_LR)):
                update_learning_rate(optimizer, lr)

    if name in ("PPO", "A2C"):
        return build_sb3_on_policy(name, env_id, seed)
    env = gym.make(env_id)
    if name == "DQN":  # our dqn.py's defaults (CleanRL's): 120-84 MLP, hard target copy every 500 steps
        return DQN("MlpPolicy", env, learning_rate=2.5e-4, buffer_size=10_000, batch_size=128, gamma=0.99,
                   tau=1.0, target_update_interval=500, train_freq=10, gradient_steps=1,
                   exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                   learning_starts=learning_starts, policy_kwargs=dict(net_arch=[120, 84]), device="cpu",
                   seed=seed, verbose=0)
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


def build_sb3_on_policy(name: str, env_id: str, seed: int):
    """SB3's PPO with our ppo.py's Box defaults (CleanRL's, observation and reward normalisation
    included), or SB3's A2C with our a2c.py's Discrete defaults (8 envs)."""
    import torch.nn as nn
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    nets = dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=nn.Tanh)  # two 64-64 tanh MLPs, as ours
    if name == "PPO":
        envs = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), gamma=0.99, clip_obs=10.0, clip_reward=10.0)
        return PPO("MlpPolicy", envs, learning_rate=3e-4, n_steps=2048, batch_size=64, n_epochs=10, gamma=0.99,
                   gae_lambda=0.95, clip_range=0.2, clip_range_vf=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                   policy_kwargs=nets, device="cpu", seed=seed, verbose=0)
    envs = make_vec_env(env_id, n_envs=8, seed=seed)
    return A2C("MlpPolicy", envs, learning_rate=7e-4, n_steps=5, gamma=0.99, gae_lambda=1.0, ent_coef=0.0, vf_coef=0.5,
               max_grad_norm=0.5, use_rms_prop=True, rms_prop_eps=1e-5, normalize_advantage=False,
               policy_kwargs=nets, device="cpu", seed=seed, verbose=0)


def build_sbx(name: str, env_id: str, learning_starts: int, seed: int):
    """SBX (Stable-Baselines-Jax) with our scripts' hyperparameters, as build_sb3 configures SB3. SBX has no A2C."""
    import gymnasium as gym
    import numpy as np
    from sbx import DDPG, DQN, PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import VecNormalize

    if name == "PPO":  # our ppo.py's Box defaults, as build_sb3_on_policy
        envs = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), gamma=0.99, clip_obs=10.0, clip_reward=10.0)
        return PPO("MlpPolicy", envs, learning_rate=3e-4, n_steps=2048, batch_size=64, n_epochs=10, gamma=0.99, gae_lambda=0.95,
                   clip_range=0.2, clip_range_vf=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                   policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])), seed=seed, verbose=0)
    env = gym.make(env_id)
    if name == "DQN":
        return DQN("MlpPolicy", env, learning_rate=2.5e-4, buffer_size=10_000, batch_size=128, gamma=0.99, tau=1.0,
                   target_update_interval=500, train_freq=10, gradient_steps=1, exploration_fraction=0.5,
                   exploration_initial_eps=1.0, exploration_final_eps=0.05, learning_starts=learning_starts,
                   policy_kwargs=dict(net_arch=[120, 84]), seed=seed, verbose=0)
    act_dim = env.action_space.shape[0]
    noise = NormalActionNoise(np.zeros(act_dim), 0.1 * np.ones(act_dim))
    common = dict(buffer_size=1_000_000, batch_size=256, gamma=0.99, tau=0.005, train_freq=1, gradient_steps=1,
                  learning_starts=learning_starts, policy_kwargs=dict(net_arch=[256, 256]), seed=seed, verbose=0)
    if name == "SAC":  # the actor and α every step, as SB3's SAC here: the same number of updates as ours
        return SAC("MlpPolicy", env, learning_rate=POLICY_LR, qf_learning_rate=Q_LR, policy_delay=1, ent_coef="auto_0.2", **common)
    if name == "TD3":
        return TD3("MlpPolicy", env, learning_rate=POLICY_LR, action_noise=noise, policy_delay=2, target_policy_noise=0.2,
                   target_noise_clip=0.5, **common)
    return DDPG("MlpPolicy", env, learning_rate=POLICY_LR, action_noise=noise, **common)


def sb3_worker(args: argparse.Namespace) -> None:
    """One SB3 (or SBX) run, timed over the same phase as our scripts' training-phase SPS."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.sb3_worker or args.sbx_worker
    on_policy = name in ("PPO", "A2C")
    learning_starts = 0 if on_policy else args.learning_starts  # on-policy: every step is timed
    model = (build_sb3 if args.sb3_worker else build_sbx)(name, args.env_id, learning_starts, args.seed)

    # SBX compiles its updates with JAX at their first calls: the timing starts after them, as our scripts'
    # training-phase SPS leaves out --compile's compiling (on-policy: after the first rollout and update)
    warmup = (2048 + 1 if on_policy else 10) if args.sbx_worker else 0

    class PhaseStart(BaseCallback):
        """Notes (time, step) at the first step past learning_starts (and SBX's warm-up), before its update."""
        start = None

        def _on_step(self) -> bool:
            if self.start is None and self.num_timesteps > learning_starts + warmup:
                self.start = (time.time(), self.num_timesteps)
            return True

    timer = PhaseStart()
    model.learn(total_timesteps=learning_starts + args.steps, callback=timer)
    sps = (model.num_timesteps - timer.start[1]) / (time.time() - timer.start[0])
    print(f"training-phase SPS: {sps:.1f} (steps after learning_starts per second)")


def cleanrl_worker(args: argparse.Namespace) -> None:
    """One run of CleanRL's JAX file, as its author wrote it, timed over the training phase from the draws
    of its replay buffer: one per training step, from the 10th (JAX has compiled both updates by then) to
    the last. (It reads `final_observation`, which gymnasium 1.x no longer gives: a run must not reach a
    time limit, which a few thousand Hopper steps do not.)"""
    import runpy

    sys.path.insert(0, str(args.cleanrl))
    from cleanrl_utils import buffers

    draws, sample = [], buffers.ReplayBuffer.sample

    def timed_sample(self, *a, **kw):
        draws.append(time.time())
        return sample(self, *a, **kw)

    buffers.ReplayBuffer.sample = timed_sample
    path, flags = CLEANRL_JAX[args.cleanrl_worker]
    script = str(args.cleanrl / path)
    sys.argv = [script, "--env-id", args.env_id, "--seed", str(args.seed), "--learning-starts", str(args.learning_starts),
                "--total-timesteps", str(args.learning_starts + args.steps), *flags]
    runpy.run_path(script, run_name="__main__")
    print(f"training-phase SPS: {(len(draws) - 10) / (draws[-1] - draws[9]):.1f} (training steps per second after the 10th)")


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
class Impl(NamedTuple):
    kind: str  # "ours", "sb3", "sbx", "cleanrl-jax", or "rev:<git revision>" (our scripts as they were at that revision)
    name: str  # our algorithm (a key of ALGOS) or the SB3 algorithm's name
    env_id: str
    steps: int


def impls_of(algo: str, args: argparse.Namespace) -> list[Impl]:
    """Our run of `algo`, then the runs it is compared with (--against), on the same env for the same steps."""
    a = ALGOS[algo]
    env_id, steps = args.env_id or a.env_id, args.steps or a.steps
    missing = {"sbx": a.sb3 == "A2C", "cleanrl-jax": algo not in CLEANRL_JAX}  # SBX has no A2C; CleanRL's JAX files
    others = [k for k in args.against if not missing.get(k)]
    return [Impl("ours", algo, env_id, steps)] + [Impl(k, a.sb3 if k in ("sb3", "sbx") else algo, env_id, steps) for k in others]


def command(impl: Impl, args: argparse.Namespace, seed: int) -> list[str]:
    """The command line of one run."""
    if impl.kind in ("sb3", "sbx"):
        return [sys.executable, str(Path(__file__).resolve()), f"--{impl.kind}-worker", impl.name, "--env-id", impl.env_id,
                "--learning-starts", str(args.learning_starts), "--seed", str(seed), "--steps", str(impl.steps),
                "--threads", str(args.threads)]
    if impl.kind == "cleanrl-jax":
        return [sys.executable, str(Path(__file__).resolve()), "--cleanrl-worker", impl.name, "--cleanrl", str(args.cleanrl.resolve()),
                "--env-id", impl.env_id, "--learning-starts", str(args.learning_starts), "--seed", str(seed), "--steps", str(impl.steps)]
    algo = ALGOS[impl.name]
    root = args.worktrees[impl.kind] if impl.kind.startswith("rev:") else ROOT
    warmup = [] if algo.on_policy else ["--learning-starts", str(args.learning_starts)]
    total = impl.steps if algo.on_policy else args.learning_starts + impl.steps
    extra = shlex.split(getattr(args, "flags", "")) if impl.kind == "ours" else []
    return [sys.executable, str(root / algo.script), "--env-id", impl.env_id, "--seed", str(seed), *warmup,
            *algo.flags, "--total-timesteps", str(total), "--cuda" if on_gpu(impl, args) else "--no-cuda", *extra]


def on_gpu(impl: Impl, args: argparse.Namespace) -> bool:
    """--cuda: our scripts' runs train on the GPU (SB3's, SBX's and CleanRL's stay on the CPU)."""
    return getattr(args, "cuda", False) and impl.kind not in ("sb3", "sbx", "cleanrl-jax")


def run_env(threads: int, workdir: str, gpu: bool = False) -> dict:
    """The environment of a benchmark subprocess: `threads` CPU threads, no GPU unless `gpu`, temp files in workdir."""
    xla = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"} if threads == 1 else {}  # SBX's JAX
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    counts = dict(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)) if threads else {}
    hidden = {} if gpu else {"CUDA_VISIBLE_DEVICES": ""}
    return dict(env, **counts, **xla, **hidden, TMPDIR=workdir)  # SB3 makes an (empty) log folder in the temp dir


def start(impl: Impl, args: argparse.Namespace, seed: int, workdir: str, cpu: int | None = None) -> subprocess.Popen:
    """One subprocess run in workdir (where our scripts write runs/); with `cpu`, pinned to that core."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    return subprocess.Popen(command(impl, args, seed), cwd=workdir, env=run_env(args.threads, workdir, on_gpu(impl, args)),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=pin)


def result(impl: Impl, proc: subprocess.Popen) -> float | None:
    """Waits for a run; its training-phase SPS, or None (and the end of its output) if it failed."""
    stdout, stderr = proc.communicate()
    match = SPS_LINE.search(stdout)
    if proc.returncode != 0 or match is None:
        tail = "\n    ".join((stderr or stdout).strip().splitlines()[-5:])
        print(f"  {impl.kind} {impl.name} failed (exit code {proc.returncode}):\n    {tail}", flush=True)
        return None
    compiling = re.search(r"not counting ([\d.]+) s of compiling", stdout)
    if compiling:
        print(f"  {impl.kind} {impl.name}: {compiling.group(1)} s of compiling, left out of its SPS", flush=True)
    return float(match.group(1))


def run(impl: Impl, args: argparse.Namespace, seed: int, workdir: str) -> float | None:
    return result(impl, start(impl, args, seed, workdir))


def run_pair(impls: list[Impl], args: argparse.Namespace, r: int, workdir: str) -> list[float | None]:
    """--concurrent: our run and the other at the same time, on cores 0 and 1 (swapped on odd repeats)."""
    cores = (0, 1) if r % 2 == 0 else (1, 0)
    procs = [start(impl, args, args.seed + r, workdir, cpu) for impl, cpu in zip(impls, cores)]
    return [result(impl, proc) for impl, proc in zip(impls, procs)]


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(algo: str, impls: list[Impl], sps: dict) -> list[dict]:
    """Per comparison: both medians, the ratio of the medians, and the ratios of the repeats (ours and the
    other from the same repeat, run next to each other): their median and range. `sps` holds each
    implementation's runs for this algorithm only (SB3's SAC is timed once for sac and once for
    sac_no_reparam in every repeat; each is paired with its own)."""
    ours = sps[impls[0]]
    rows = []
    for other in impls[1:]:
        ratios = [o / b for o, b in zip(ours, sps[other]) if o and b]
        rows.append(dict(algo=algo, env_id=other.env_id, steps=other.steps, ours_sps=median(ours), against=other.kind,
                         against_name=other.name, against_sps=median(sps[other]),
                         ratio=median(ours) / median(sps[other]) if median(ours) and median(sps[other]) else None,
                         repeat_ratios=ratios, repeat_ratio_median=median(ratios)))
    return rows


def main() -> None:
    args = parse_args()
    if args.sb3_worker or args.sbx_worker:
        return sb3_worker(args)
    if args.cleanrl_worker:
        return cleanrl_worker(args)
    algos = [a for a in args.algos if (ROOT / ALGOS[a].script).exists()]
    if args.concurrent:
        if len(os.sched_getaffinity(0)) < 2 or len(args.against) != 1:
            sys.exit("error: --concurrent needs 2 CPUs and one --against: each pair runs side by side, one core each")
        args.threads = 1
    print(f"{args.learning_starts} random steps, then the timed training steps; {args.threads or 'unset'} torch threads on CPU"
          + ("; ours on the GPU" if args.cuda else "") + "; "
          f"{args.repeats} round-robin repeats of ours against {', '.join(args.against)}" + (", side by side" if args.concurrent else "")
          + (", beside a busy loop" if args.busy_loop else ""))
    load_before = os.getloadavg()[0]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy_loop else None
    print(f"load average before: {load_before:.2f} on {os.cpu_count()} CPUs (other work on the CPUs skews the figures)")
    with tempfile.TemporaryDirectory(prefix="speed-") as workdir:
        args.worktrees = {}
        for kind in args.against:  # our scripts at a git revision, checked out beside the working tree
            if kind.startswith("rev:"):
                args.worktrees[kind] = Path(workdir) / f"rev-{len(args.worktrees)}"
                subprocess.run(["git", "worktree", "add", "--detach", "-q", str(args.worktrees[kind]), kind[4:]], cwd=ROOT, check=True)
        try:
            impls = {algo: impls_of(algo, args) for algo in algos}
            sps = {algo: {impl: [] for impl in impls[algo]} for algo in algos}
            for r in range(args.repeats):
                for algo in algos:
                    if args.concurrent:
                        values = run_pair(impls[algo], args, r, workdir)
                    else:  # one after the other, the order turned every repeat
                        order = impls[algo] if r % 2 == 0 else impls[algo][::-1]
                        values = dict(zip(order, [run(impl, args, args.seed + r, workdir) for impl in order]))
                        values = [values[impl] for impl in impls[algo]]
                    for impl, value in zip(impls[algo], values):
                        sps[algo][impl].append(value)
                    print(f"[repeat {r + 1}/{args.repeats}] {algo:15} " + ", ".join(
                        f"{impl.kind} {'failed' if v is None else f'{v:.1f}'}" for impl, v in zip(impls[algo], values)) + " SPS", flush=True)
        finally:
            if busy is not None:
                busy.kill()
            for tree in args.worktrees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)

    rows = [row for algo in algos for row in summarize(algo, impls[algo], sps[algo])]
    fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
    print(f"\n{'algorithm':16} {'env':12} {'ours SPS':>9} {'against':>14} {'its SPS':>9} {'ratio':>6} {'per repeat: median (range)':>28}")
    for row in rows:
        spread = f"{min(row['repeat_ratios']):.2f}–{max(row['repeat_ratios']):.2f}" if row["repeat_ratios"] else "-"
        print(f"{row['algo']:16} {row['env_id']:12} {fmt(row['ours_sps'], '9.1f')} {row['against'][:14]:>14} "
              f"{fmt(row['against_sps'], '9.1f')} {fmt(row['ratio'], '6.2f')} {fmt(row['repeat_ratio_median'], '13.2f')} ({spread})")
    load_after = os.getloadavg()[0]
    print(f"(ratio: ours / the other, medians of {args.repeats} runs each; per repeat: the repeats' own ratios; "
          f"load average after: {load_after:.2f})")
    if args.json:
        import torch

        result = dict(learning_starts=args.learning_starts, repeats=args.repeats, threads=args.threads, concurrent=args.concurrent, busy_loop=args.busy_loop,
                      cuda=args.cuda, gpu=torch.cuda.get_device_name() if args.cuda and torch.cuda.is_available() else None,
                      seed=args.seed, command=sys.argv, cpus=os.cpu_count(), load_average_before=load_before,
                      load_average_after=load_after, versions=dict(torch=torch.__version__), rows=rows,
                      runs=[dict(algo=algo, impl=f"{i.kind}:{i.name}", env_id=i.env_id, sps=v)
                            for algo in algos for i, v in sps[algo].items()])
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
