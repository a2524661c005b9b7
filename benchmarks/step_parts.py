"""Where one training step goes inside a real run: our off-policy script against SB3's or SBX's, piece by piece.

Runs one implementation in this process on Hopper-v4 (--learning-starts random steps, a warm-up, then
--steps timed steps) with each piece of its loop wrapped in a timer, and prints milliseconds per
environment step for each piece and for the rest. Ours: the update (`learn`, --compile by default),
the vector env's step, the replay write and the minibatch draw, the episode log and the checkpoint
check; acting and the loop itself are in "the rest". SB3 and SBX (`--impl sb3` / `sbx`): their `train`
(which draws its own minibatch), the vector env's step, the replay write and `_sample_action`.

Pieces timed here cost more than the same pieces timed back to back (loop_parts.py): on this 2-core
virtual machine a MuJoCo step takes about 0.11 ms repeated, and 0.3-0.5 ms after 5 ms of anything
else, an update, a Python busy loop or a sleep. Only pieces timed inside a run add up to its speed.
The machine drifts from run to run: alternate implementations and compare runs made side by side.

Run:  OMP_NUM_THREADS=2 python benchmarks/step_parts.py --algo td3
      OMP_NUM_THREADS=2 python benchmarks/step_parts.py --algo td3 --impl sbx   (requirements-bench.txt)
"""
import argparse
import collections
import importlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
PEERS = {"sac": "SAC", "sac_no_reparam": "SAC", "td3": "TD3", "ddpg": "DDPG"}
WARMUP = 300  # steps after learning starts before the clock starts (SBX's JAX compiles at its first updates)


class Clock:
    """Seconds and calls per named piece, counted once `on` is set."""

    def __init__(self):
        self.seconds, self.calls, self.on, self.start = collections.defaultdict(float), collections.Counter(), False, None
        self.steps, self.end = 0, None

    def wrap(self, name: str, f):
        def timed(*args, **kwargs):
            if not self.on:
                return f(*args, **kwargs)
            start = time.perf_counter()
            out = f(*args, **kwargs)
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1
            return out
        return timed

    def begin(self) -> None:
        self.on, self.start = True, time.perf_counter()

    def step_done(self) -> None:
        """At the end of each environment step: the clock stops at the last one (a run's final evaluation is left out)."""
        if self.on:
            self.steps, self.end = self.steps + 1, time.perf_counter()

    def report(self, title: str) -> None:
        total, steps = self.end - self.start, self.steps
        print(f"{title}: {steps} steps timed, {total / steps * 1e3:.3f} ms per step")
        for name in sorted(self.seconds, key=self.seconds.get, reverse=True):
            print(f"  {name:22s} {self.seconds[name] / steps * 1e3:.3f} ms ({self.calls[name]} calls)")
        print(f"  {'the rest':22s} {(total - sum(self.seconds.values())) / steps * 1e3:.3f} ms")


def run_ours(args: argparse.Namespace, clock: Clock) -> None:
    import gymnasium as gym

    import plumbing

    compiled = plumbing.compiled
    plumbing.compiled = lambda update, optimizers: clock.wrap("learn (the update)", compiled(update, optimizers))
    script = importlib.import_module(args.algo if args.algo != "sac" else "sac_continuous")
    if not args.compile:  # the eager update, wrapped where the script calls it
        script.update = clock.wrap("learn (the update)", script.update)
    script.ReplayBuffer.add = clock.wrap("rb.add", script.ReplayBuffer.add)
    script.ReplayBuffer.sample = clock.wrap("rb.sample", script.ReplayBuffer.sample)
    start_at = args.learning_starts + WARMUP

    class Run(plumbing.Run):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.envs.step = clock.wrap("envs.step", self.envs.step)
            self.record = clock.wrap("run.record", self.record)

        def end_iteration(self, global_step, num_envs):
            clock.step_done()
            if global_step == start_at and not clock.on:
                clock.begin()
            return clock.wrap("run.end_iteration", super().end_iteration)(global_step, num_envs)

    plumbing.Run = Run
    sys.argv = [script.__file__, "--env-id", "Hopper-v4", "--seed", str(args.seed), "--learning-starts", str(args.learning_starts),
                "--total-timesteps", str(start_at + args.steps), "--no-cuda", "--no-save-model", *(["--compile"] if args.compile else [])]
    flags, checkpoint = plumbing.parse(script.Args, (gym.spaces.Box,))
    script.train(flags, checkpoint)


def run_peer(args: argparse.Namespace, clock: Clock) -> None:
    import speed
    from stable_baselines3.common.callbacks import BaseCallback

    build = speed.build_sbx if args.impl == "sbx" else speed.build_sb3
    model = build(PEERS[args.algo], "Hopper-v4", args.learning_starts, args.seed)
    total = args.learning_starts + WARMUP + args.steps
    model._setup_learn(total, callback=None)  # builds the env and buffer the pieces below belong to
    model.train = clock.wrap("train (draw + update)", model.train)
    model.env.step = clock.wrap("env.step", model.env.step)
    model.replay_buffer.add = clock.wrap("replay_buffer.add", model.replay_buffer.add)
    model._sample_action = clock.wrap("_sample_action", model._sample_action)

    class Start(BaseCallback):
        def _on_step(self) -> bool:
            clock.step_done()
            if not clock.on and self.num_timesteps >= args.learning_starts + WARMUP:
                clock.begin()
            return True

    model.learn(total_timesteps=total, callback=Start(), reset_num_timesteps=False)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algo", choices=list(PEERS), default="td3")
    p.add_argument("--impl", choices=("ours", "sb3", "sbx"), default="ours")
    p.add_argument("--steps", type=int, default=1000, help="timed steps")
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--no-compile", dest="compile", action="store_false", help="ours: the eager update")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.steps <= 0 or args.learning_starts <= 0:
        p.error("--steps and --learning-starts must be positive")
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(2)  # as speed.py runs every implementation
    clock = Clock()
    (run_ours if args.impl == "ours" else run_peer)(args, clock)
    clock.report(f"{args.impl} {args.algo}, Hopper-v4")


if __name__ == "__main__":
    main()
