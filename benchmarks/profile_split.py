"""Where the training time goes, ours against stable-baselines3: a torch.profiler breakdown.

For one algorithm of benchmarks/speed.py, runs our script and its SB3 counterpart with the same
flags and hyperparameters as speed.py, one after the other, each in a fresh subprocess with
--threads torch threads, under torch.profiler from the first optimizer step to the end of training
(so off-policy warm-up steps and the first on-policy rollout are left out). The training time of
each is split into, per environment step:
- matmul: the matrix products (mm, bmm, addmm, baddbmm, ...), forward and backward;
- optimizer: optimizer.step and zero_grad, whole;
- other torch: every other torch op, autograd's bookkeeping included (elementwise ops, indexing,
  copies, distributions, losses);
- env: the environment's own step (TimeLimit.step and everything below it: physics, reward);
- the rest: Python between the ops (the training loop, the vector env and its wrappers, logging).

The profiler itself costs time around every op (it shows up in "other torch" and "the rest"), so
each implementation also runs once unprofiled, timed over the same phase: the "unprofiled" column
and the ratio printed below the table come from those runs. The last line is a ceiling: the ratio to
SB3's unprofiled time that our script would reach if it cost nothing but its matmuls and its
environment steps (as profiled). No change that keeps the arithmetic (same networks, batch, updates
per step) can go past it. The machine's drift moves all these figures; --repeats takes medians.

The unprofiled runs also time the update, from its first call (our off-policy scripts' rb.sample,
our on-policy scripts' to_device of the rollout; SB3's train()) to its last optimizer step, and print
the second bound: the ratio to SB3 that our script would reach if its updates took no time at all
and everything else (acting, the env, the replay or rollout writes, logging) stayed as it is.
(Our on-policy update so timed includes the batched pass for log π and V and the GAE, which SB3
computes while collecting, outside its train().) To wrap our update's first call, the worker runs
the script's source with one line added before its `if __name__ == "__main__":` block, so a
traceback from that block is one line off.

Run:  python benchmarks/profile_split.py --algo sac --threads 2
      python benchmarks/profile_split.py --algo ppo --threads 1
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed  # noqa: E402  (the algorithms, their flags and SB3 configurations)

MATMULS = {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addmv", "aten::mv", "aten::addbmm"}
BUCKETS = ("matmul", "optimizer", "other torch", "env", "the rest")
# on-policy: steps collected before the first update (one rollout; our and SB3's defaults as in speed.py)
FIRST_UPDATE_AFTER = {"ppo": 2048, "a2c": 5 * 8}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algo", choices=list(speed.ALGOS), default="sac")
    p.add_argument("--steps", type=int, help="profiled training steps (default: a quarter of speed.py's)")
    p.add_argument("--learning-starts", type=int, default=1000, help="off-policy: unprofiled steps of random actions first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads of both runs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="runs of each kind (medians reported)")
    p.add_argument("--only", choices=("ours", "sb3"), help="profile one of the two (ours needs no SB3 installed)")
    p.add_argument("--json", type=Path, help="also write the breakdowns to this file")
    p.add_argument("--worker", choices=("ours", "sb3"), help=argparse.SUPPRESS)
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # worker: time the phase, no profiler
    args = p.parse_args(argv)
    if (args.steps is not None and args.steps <= 0) or args.learning_starts < 1 or args.threads <= 0 or args.repeats <= 0:
        p.error("need --steps > 0, --learning-starts >= 1, --threads > 0, --repeats > 0")
    return args


def run_args(args: argparse.Namespace) -> argparse.Namespace:
    """speed.py's arguments for the same runs (its command lines and SB3 configurations are reused)."""
    algo = speed.ALGOS[args.algo]
    steps = args.steps or algo.steps // 4
    rollout = FIRST_UPDATE_AFTER.get(args.algo)
    if rollout:  # whole rollouts (SB3 always finishes the one it started)
        steps = max(steps // rollout, 2) * rollout
    return argparse.Namespace(env_id=None, steps=steps, learning_starts=args.learning_starts, threads=args.threads)


def steps_before_first_update(args: argparse.Namespace) -> int:
    return FIRST_UPDATE_AFTER[args.algo] if speed.ALGOS[args.algo].on_policy else args.learning_starts


# ---------------------------------------------------------------------------------------------
# Worker: one run in this process, profiled from its first optimizer step
# ---------------------------------------------------------------------------------------------
def breakdown(events, wall: float) -> dict[str, float]:
    """Seconds per bucket from the profiler's events (a tree: each op's children are the ops it called)."""
    out = dict.fromkeys(BUCKETS, 0.0)
    matmul = sum(e.self_cpu_time_total for e in events if e.name in MATMULS)
    top = [e for e in events if e.cpu_parent is None]
    for e in top:
        if e.name == "env.step":
            out["env"] += e.cpu_time_total
        elif e.name.startswith("Optimizer."):
            out["optimizer"] += e.cpu_time_total
        else:
            out["other torch"] += e.cpu_time_total
    out = {k: v / 1e6 for k, v in out.items()}  # µs → s
    out["matmul"] = matmul / 1e6
    out["other torch"] -= out["matmul"]  # no matmul runs inside an optimizer or env step
    out["the rest"] = wall - sum(out.values())
    return out


class UpdateClock:
    """The spans of the updates: from `start()` (the update's first call) to the last optimizer step
    after it; an environment step closes the span."""

    def __init__(self):
        self.spans, self.start_time, self.end_time = [], None, None

    def start(self) -> None:
        if self.start_time is None:
            self.start_time = time.perf_counter()

    def optimizer_stepped(self, *_) -> None:
        if self.start_time is not None:
            self.end_time = time.perf_counter()

    def close(self) -> None:
        if self.start_time is not None and self.end_time is not None:
            self.spans.append((self.start_time, self.end_time))
        self.start_time = self.end_time = None

    def seconds_after(self, t0: float) -> float:
        self.close()
        return sum(max(0.0, end - max(start, t0)) for start, end in self.spans)


def run_script(path: str, clock: UpdateClock) -> None:
    """Runs our script as __main__ (as runpy does), with its update's first call wrapped to start the
    clock: ReplayBuffer.sample (off-policy) or to_device (on-policy), patched before its main block runs."""
    source = Path(path).read_text()
    main_block = '\nif __name__ == "__main__":\n'
    if main_block not in source:
        sys.exit(f"error: {path} has no main block")

    def hook(g: dict) -> None:  # the script's globals, everything defined, train() not yet called
        def started(fn):
            def wrapper(*a, **k):
                clock.start()
                return fn(*a, **k)
            return wrapper
        if "ReplayBuffer" in g:
            g["ReplayBuffer"].sample = started(g["ReplayBuffer"].sample)
        else:
            g["to_device"] = started(g["to_device"])

    module = types.ModuleType("__main__")
    module.__file__, module.__profile_split_hook__ = path, hook
    code = compile(source.replace(main_block, "\n__profile_split_hook__(globals())" + main_block, 1), path, "exec")
    saved, sys.modules["__main__"] = sys.modules["__main__"], module
    sys.path.insert(0, str(Path(path).parent))  # as `python script.py` does: plumbing.py is beside the script
    try:
        exec(code, module.__dict__)
    finally:
        sys.modules["__main__"] = saved


def worker(args: argparse.Namespace) -> None:
    import gymnasium
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
    from torch.profiler import ProfilerActivity, profile, record_function

    torch.set_num_threads(args.threads)
    env_step = gymnasium.wrappers.TimeLimit.step
    clock = UpdateClock()

    def timed_env_step(self, action):  # the environment's own step, marked in the profile; it ends an update
        clock.close()
        with record_function("env.step"):
            return env_step(self, action)

    gymnasium.wrappers.TimeLimit.step = timed_env_step
    prof = profile(activities=[ProfilerActivity.CPU])
    started = []

    def start_at_first_step(optimizer, *_):
        if not started:
            started.append(time.perf_counter())
            if not args.plain:
                prof.start()

    register_optimizer_step_pre_hook(start_at_first_step)
    register_optimizer_step_post_hook(clock.optimizer_stepped)
    r, algo = run_args(args), speed.ALGOS[args.algo]
    if args.worker == "ours":
        cmd = speed.command(speed.Impl("ours", args.algo, algo.env_id, r.steps), r, args.seed)
        sys.argv = cmd[1:]
        run_script(cmd[1], clock)
        total = int(cmd[cmd.index("--total-timesteps") + 1])
    else:
        learning_starts = 0 if algo.on_policy else args.learning_starts
        model = speed.build_sb3(algo.sb3, algo.env_id, learning_starts, args.seed)
        sb3_train = model.train

        def timed_train(*a, **k):  # SB3's update
            clock.start()
            sb3_train(*a, **k)
            clock.close()

        model.train = timed_train
        total = learning_starts + r.steps
        model.learn(total_timesteps=total)
    wall = time.perf_counter() - started[0]
    update = clock.seconds_after(started[0])
    steps = total - steps_before_first_update(args)
    seconds = None
    if not args.plain:
        prof.stop()
        seconds = breakdown(prof.events(), wall)
    print("PROFILE " + json.dumps(dict(steps=steps, wall=wall, update=update, seconds=seconds)))


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def profile_run(kind: str, args: argparse.Namespace, workdir: str, plain: bool) -> dict:
    """One worker run: the per-step breakdown (or, plain, only the wall time) of its training phase."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, *(["--plain"] if plain else []), "--algo", args.algo, "--threads",
           str(args.threads), "--learning-starts", str(args.learning_starts), "--seed", str(args.seed)]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    proc = subprocess.run(cmd, cwd=workdir, env=speed.run_env(args.threads, workdir), capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROFILE ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"error: the {kind} run failed:\n{proc.stderr[-2000:]}")
    res = json.loads(lines[-1][len("PROFILE "):])
    ms = lambda seconds: 1e3 * seconds / res["steps"]  # noqa: E731  (per environment step)
    if res["seconds"]:
        return dict(total=ms(res["wall"]), **{k: ms(v) for k, v in res["seconds"].items()})
    return dict(total=ms(res["wall"]), update=ms(res["update"]))


def summarize(runs: list[dict]) -> dict[str, float]:
    """The median of each figure over the repeats."""
    return {k: speed.median([run[k] for run in runs]) for k in runs[0]}


def table(profiled: dict[str, dict], plain: dict[str, dict]) -> str:
    """Milliseconds per environment step by bucket (each bucket's share of the profiled total), and
    the unprofiled total."""
    lines = ["| | " + " | ".join(BUCKETS) + " | total | unprofiled |", "|---|" + "---|" * (len(BUCKETS) + 2)]
    for kind, res in profiled.items():
        cells = [f"{res[k]:.3f} ({100 * res[k] / res['total']:.0f} %)" for k in BUCKETS]
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {res['total']:.3f} | {plain[kind]['total']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    kinds = [args.only] if args.only else ["ours", "sb3"]
    algo = speed.ALGOS[args.algo]
    print(f"{args.algo}: {algo.script} and SB3's {algo.sb3} on {algo.env_id}, {args.threads} torch threads; "
          f"ms per environment step in the profiled training phase", flush=True)
    runs = {(kind, plain): [] for kind in kinds for plain in (True, False)}
    with tempfile.TemporaryDirectory(prefix="profile-") as workdir:
        for r in range(args.repeats):
            for kind, plain in runs:  # round-robin: the machine's drift spreads over all of them
                runs[kind, plain].append(profile_run(kind, args, workdir, plain))
                print(f"[repeat {r + 1}/{args.repeats}] {kind:4} {'unprofiled' if plain else 'profiled':10} "
                      f"{runs[kind, plain][-1]['total']:.3f} ms per step", flush=True)
    profiled = {kind: summarize(runs[kind, False]) for kind in kinds}
    plain = {kind: summarize(runs[kind, True]) for kind in kinds}
    print(table(profiled, plain))
    for kind in kinds:
        print(f"{kind}, unprofiled: the update takes {plain[kind]['update']:.3f} of the {plain[kind]['total']:.3f} ms per step")
    if len(kinds) == 2:
        ceiling = plain["sb3"]["total"] / (profiled["ours"]["matmul"] + profiled["ours"]["env"])
        no_update = plain["sb3"]["total"] / (plain["ours"]["total"] - plain["ours"]["update"])
        print(f"ours/SB3, unprofiled: {plain['sb3']['total'] / plain['ours']['total']:.2f}; "
              f"ceiling if ours cost only its matmuls and env steps: {ceiling:.2f}; "
              f"if its updates took no time: {no_update:.2f}")
    if args.json:
        result = dict(algo=args.algo, threads=args.threads, repeats=args.repeats, command=sys.argv, profiled=profiled,
                      unprofiled=plain, runs={f"{k}:{'unprofiled' if p else 'profiled'}": v for (k, p), v in runs.items()})
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
