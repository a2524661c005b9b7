"""plumbing.py's own pieces, tested directly: the seeds of a run's random streams."""
import gymnasium as gym
import numpy as np

import plumbing

STREAMS = {"env resets": (plumbing.ENV_RESETS, 8), "action spaces": (plumbing.ACTION_SPACES, 8),
           "vector actions": (plumbing.VECTOR_ACTIONS, 1), "evaluation": (plumbing.EVALUATION, 10)}


def test_different_seeds_and_streams_never_share_a_seed():
    """With seed + i, --seed 2's environment 0 replayed --seed 1's environment 1, and adjacent seeds
    shared 9 of 10 evaluation episodes. Drawn from SeedSequence, no two (seed, stream) pairs share one."""
    drawn = {}
    for seed in range(1, 101):
        for name, (stream, n) in STREAMS.items():
            drawn[seed, name] = plumbing.seeds(seed, stream, n)
        for step in (1000, 2000):
            drawn[seed, f"resumed at {step}"] = plumbing.seeds(seed, plumbing.RESUMED_RESETS, 8, step)
    values = [v for vs in drawn.values() for v in vs]
    assert len(set(values)) == len(values)
    assert plumbing.seeds(1, plumbing.EVALUATION, 10) == plumbing.seeds(1, plumbing.EVALUATION, 10)  # reproducible


def test_adjacent_seeds_start_different_environments():
    def first_observations(seed):
        envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 4)
        obs, _ = envs.reset(seed=plumbing.seeds(seed, plumbing.ENV_RESETS, 4))
        envs.close()
        return obs

    one, two = first_observations(1), first_observations(2)
    assert not any(np.array_equal(a, b) for a in one for b in two)
