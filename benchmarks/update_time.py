"""How long one update step of an off-policy script takes, alone, eager against compiled variants.

Each compiled variant runs in a fresh process (inductor's options hold for the process), the variants
alternating round after round. A process builds the script's networks twice, from one seed, at
Hopper-v4's sizes (11-d observations, 3-d actions) and a replay buffer of random transitions, then
times the script's own `update` (the policy delay as the script applies it) eager and compiled in
alternating blocks of --updates calls, after --warmup calls of each that include the compilation.
Per round: the median block of each, in milliseconds per update, and their ratio; printed, the
median over rounds. Interleaving within a process cancels most of this machine's drift.

Variants: compiled (--compile: plumbing.compiled as the scripts use it), cpp_wrapper (compiled, with
inductor's C++ wrapper code instead of its Python one), autotune (compiled, inductor choosing among
its C++ GEMM templates and ATen's kernels; in training its templates do not apply, as the weights
are not constants), skip_guards (compiled; after the warm-up, torch.compiler.set_stance with
skip_guard_eval_unsafe, so that a call checks only what tells the compiled variants apart), sbx (not
ours: SBX's own jitted update with the same hyperparameters, `train` on its own replay buffer, filled
by 1100 Hopper-v4 steps, the last 100 with updates that compile it; needs requirements-bench.txt).

Run:  python benchmarks/update_time.py --algo ddpg --variants compiled cpp_wrapper --rounds 5
      python benchmarks/update_time.py --algo td3 --variants compiled sbx --rounds 3     (ours eager against each)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# each variant's inductor options (sbx is not compiled by us: time_one builds SBX's model instead)
OPTIONS = {"compiled": {}, "cpp_wrapper": {"cpp_wrapper": True}, "skip_guards": {}, "sbx": {},
           "autotune": {"max_autotune": True, "max_autotune_gemm_backends": "CPP,ATEN"}}


def build(script, torch, device):
    """The script's actor, critic, their targets and optimizers at Hopper-v4's sizes, as its train() builds them."""
    obs_dim, act_dim, low, high = 11, 3, -np.ones(3), np.ones(3)
    args = script.Args()
    actor, actor_target = script.Actor(obs_dim, act_dim, low, high), script.Actor(obs_dim, act_dim, low, high)
    actor_target.load_state_dict(actor.state_dict())
    actor_target.requires_grad_(False)
    critic = getattr(script, "TwinQ", script.QNetwork)  # td3.py's two critics Q_θ1, Q_θ2 in one module
    qf, qf_target = critic(obs_dim, act_dim), critic(obs_dim, act_dim)
    qf_target.load_state_dict(qf.state_dict())
    qf_target.requires_grad_(False)
    opt = script.Optimizers(torch.optim.Adam(qf.parameters(), lr=args.learning_rate, fused=True),
                            torch.optim.Adam(actor.parameters(), lr=args.learning_rate, fused=True))
    return args, (actor, actor_target, qf, qf_target, opt)


def time_one(algo: str, variant: str, warmup: int, blocks: int, updates: int, threads: int) -> list[list[float]]:
    """[eager, variant] milliseconds per update in each pair of blocks, alternating, in this process."""
    import importlib

    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    script = importlib.import_module(algo)
    import plumbing

    device = torch.device("cpu")
    torch.manual_seed(0)
    args, eager_nets = build(script, torch, device)
    torch.manual_seed(0)
    _, variant_nets = build(script, torch, device)
    rb = script.ReplayBuffer(10_000, 11, 3, device)
    for _ in range(100):
        rb.add(np.random.randn(100, 11), np.random.uniform(-1, 1, (100, 3)), np.random.randn(100), np.random.randn(100, 11),
               np.random.rand(100) < 0.01, np.zeros(100))
    import torch._inductor.config

    def ours(learn, nets):
        return lambda i: learn(rb.sample(args.batch_size), *nets, args, i % args.policy_frequency == 0)  # update number i

    if variant == "sbx":
        import speed

        model = speed.build_sbx(algo.upper(), "Hopper-v4", 1000, 0)
        model.learn(total_timesteps=1100)
        learners = [ours(script.update, eager_nets), lambda i: model.train(gradient_steps=1, batch_size=args.batch_size)]
    else:
        for key, value in OPTIONS[variant].items():
            setattr(torch._inductor.config, key, value)
        learners = [ours(script.update, eager_nets), ours(plumbing.compiled(script.update, variant_nets[-1]), variant_nets)]
    steps = [0, 0]

    def block(i: int, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            steps[i] += 1
            learners[i](steps[i])
        return (time.perf_counter() - start) / n * 1e3

    block(0, warmup), block(1, warmup)
    if variant == "skip_guards":  # every variant of the update is compiled by now
        torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)
    return [[block(0, updates), block(1, updates)] for _ in range(blocks)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algo", choices=["ddpg", "td3"], default="ddpg")
    p.add_argument("--variants", nargs="+", choices=list(OPTIONS), default=["compiled"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--one", help=argparse.SUPPRESS)  # a child process: time this variant, print JSON
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(time_one(args.algo, args.one, args.warmup, args.blocks, args.updates, args.threads)))
        return
    ratios = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for variant in args.variants:
            out = subprocess.run([sys.executable, __file__, "--algo", args.algo, "--one", variant, "--warmup", str(args.warmup),
                                  "--blocks", str(args.blocks), "--updates", str(args.updates), "--threads", str(args.threads)],
                                 capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            if out.returncode:
                sys.exit(f"error: {variant}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'failed'}")
            pairs = json.loads(out.stdout.strip().splitlines()[-1])
            eager, timed = (statistics.median(p[i] for p in pairs) for i in (0, 1))
            ratios[variant].append((eager, timed, eager / timed))
            print(f"round {r + 1}: eager {eager:.3f} ms, {variant} {timed:.3f} ms: {eager / timed:.2f}×", flush=True)
    print(f"{args.algo}, batch 256, {args.threads} threads; per round the medians of {args.blocks} interleaved blocks of "
          f"{args.updates} updates; median over {args.rounds} rounds:")
    for variant, found in ratios.items():
        print(f"  {variant:12s} eager {statistics.median(e for e, _, _ in found):.3f} ms, {variant} {statistics.median(t for _, t, _ in found):.3f} ms, "
              f"eager / {variant} {statistics.median(x for _, _, x in found):.2f}× ({min(x for _, _, x in found):.2f}–{max(x for _, _, x in found):.2f})")

if __name__ == "__main__":
    main()
