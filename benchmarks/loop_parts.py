"""What one step of sac_continuous.py's training loop costs outside its update, part by part.

Times, each over --steps calls after one warm-up call, the pieces of the loop as the script builds
them (its Actor and ReplayBuffer, the vector env of plumbing.make_envs with episode statistics):
the environment step, acting (a ~ π_θ(·|s) for one state, to numpy), the replay write and the
minibatch draw. The update itself is what benchmarks/speed.py and profile_split.py measure.

Run:  OMP_NUM_THREADS=2 python benchmarks/loop_parts.py --env-id Hopper-v4
"""
import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sac_continuous as sac  # noqa: E402


def per_call_ms(f, steps: int) -> float:
    f()
    start = time.perf_counter()
    for _ in range(steps):
        f()
    return (time.perf_counter() - start) / steps * 1e3


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env-id", default="Hopper-v4")
    p.add_argument("--steps", type=int, default=3000)
    args = p.parse_args(argv)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(gym.vector.SyncVectorEnv(
        [lambda: gym.make(args.env_id)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP))
    obs, _ = envs.reset(seed=0)
    space = envs.single_action_space
    obs_dim, act_dim = envs.single_observation_space.shape[0], space.shape[0]
    actor = sac.Actor(obs_dim, act_dim, space.low, space.high)
    rb = sac.ReplayBuffer(100_000, obs_dim, act_dim, torch.device("cpu"))
    actions, rewards, ends = envs.action_space.sample(), np.zeros(1), np.zeros(1, bool)

    def act():
        with torch.no_grad():
            return actor.sample(torch.as_tensor(obs, dtype=torch.float32))[0].cpu().numpy()

    parts = {"environment step (vector env, episode statistics)": lambda: envs.step(actions),
             "acting: a ~ π_θ(·|s), one state": act,
             "replay write (rb.add)": lambda: rb.add(obs, actions, rewards, obs, ends, ends),
             "minibatch draw (rb.sample(256))": lambda: rb.sample(256)}
    print(f"{args.env_id}, {torch.get_num_threads()} torch threads, per call over {args.steps} calls:")
    for name, f in parts.items():
        print(f"  {name:52s} {per_call_ms(f, args.steps):.3f} ms")


if __name__ == "__main__":
    main()
