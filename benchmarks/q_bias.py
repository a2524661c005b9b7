"""How far a trained TD3 or DDPG critic overestimates: the mean of Q_θ1(s_t, μ_φ(s_t)) − G_t over
evaluation episodes of the deterministic actor μ_φ, for every run of a benchmarks/grid.py folder
that was run with --save-model. Writes {grid}/q_bias.csv in the grid's format (tag final/q_bias),
which benchmarks/plot.py tables beside results.csv.

G_t is the discounted return the actor then obtains from s_t. A time limit would cut the rewards
after it out of G_t, so the episodes run with a longer limit (--max-episode-steps) and, in an
episode that is cut, only the steps with γ^(T−t) ≤ 0.01 count (as in dqn.py's OverestimationMeter):
for them the missing rewards weigh at most 1 % of the value at the cut. Pendulum's dynamics do not
depend on time, so the critic, trained with truncation bootstrapped, estimates the same quantity.

Run:  python benchmarks/q_bias.py results/td3_ddpg --episodes 5 --max-episode-steps 1000
"""
import argparse
import csv
import importlib.util
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # the scripts import plumbing.py from the root
from grid import write_rows  # noqa: E402  (the grid's CSV format, so plot.py reads both)


def load_script(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def q_bias(module, model_path: Path, episodes: int, max_steps: int, seed: int) -> float:
    saved = torch.load(model_path, map_location="cpu", weights_only=True)
    gamma = saved["args"]["gamma"]
    env = gym.make(saved["args"]["env_id"], max_episode_steps=max_steps)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    actor = module.Actor(obs_dim, act_dim, env.action_space.low, env.action_space.high)
    actor.load_state_dict(saved["actor"])
    qf = module.TwinQ(obs_dim, act_dim) if hasattr(module, "TwinQ") else module.QNetwork(obs_dim, act_dim)
    qf.load_state_dict(saved["qf"])
    q1 = qf.q1 if hasattr(qf, "q1") else qf  # Q_θ1, the critic the actor follows (DDPG's only one)
    horizon = math.log(0.01) / math.log(gamma)  # γ^k ≤ 0.01 for k ≥ horizon
    gaps = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        states, rewards, terminated, truncated = [], [], False, False
        while not (terminated or truncated):
            states.append(obs)
            with torch.no_grad():
                action = actor(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(float(reward))
        returns, running = np.zeros(len(rewards)), 0.0
        for t in reversed(range(len(rewards))):  # G_t = r_t + γ G_{t+1}
            running = rewards[t] + gamma * running
            returns[t] = running
        counted = len(rewards) if terminated else max(0, math.floor(len(rewards) - horizon) + 1)
        with torch.no_grad():
            s = torch.as_tensor(np.array(states[:counted]), dtype=torch.float32)
            q = q1(s, actor(s)).numpy()  # Q_θ1(s_t, μ_φ(s_t))
        gaps.extend(q - returns[:counted])
    env.close()
    if not gaps:
        sys.exit(f"error: no step counted: --max-episode-steps must exceed {horizon:.0f} for γ = {gamma}")
    return float(np.mean(gaps))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("grid", type=Path, help="the --out folder of a benchmarks/grid.py run")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--max-episode-steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=10_000, help="seed of the first evaluation episode")
    args = p.parse_args(argv)
    rows, modules = [], {}
    for result in sorted(args.grid.glob("runs/*/result.csv")):
        with open(result, newline="") as f:
            first = next(csv.DictReader(f))
        script = first["script"]
        models = sorted(result.parent.glob(f"runs/*/{Path(script).stem}.pt"))
        if not models:
            sys.exit(f"error: {result.parent} has no saved model: run the grid with --save-model")
        module = modules.setdefault(script, load_script(script))
        bias = q_bias(module, models[-1], args.episodes, args.max_episode_steps, args.seed)
        rows.append([first["arm"], script, first["env_id"], first["seed"], "final/q_bias", first["step"], bias])
        print(f"{first['arm']} {first['env_id']} seed {first['seed']}: Q − G = {bias:.2f}")
    write_rows(args.grid / "q_bias.csv", rows)
    print(f"wrote {args.grid / 'q_bias.csv'} ({len(rows)} runs)")


if __name__ == "__main__":
    main()
