"""plumbing.py's own pieces, tested directly: the seeds of a run's random streams, and the thread count
shared with other processes."""
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

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


class Writer:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


@pytest.mark.skipif(not os.path.exists("/proc/self/stat") or os.cpu_count() < 2, reason="reads Linux's /proc; needs 2 cores")
def test_torch_gives_busy_cores_back_and_takes_them_again(monkeypatch, capsys):
    """Other processes' CPU use (all processes' ticks minus ours, per second) decides the thread count:
    a busy core costs torch a thread, free cores give it back, the note is printed once, and with
    OMP_NUM_THREADS set nothing changes."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "sysconf", lambda name: 100)  # 100 ticks per second
    before = torch.get_num_threads()
    clock, ticks = [0.0], [(0, 0)]
    monkeypatch.setattr(plumbing.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(plumbing.CoreShare, "ticks", staticmethod(lambda: ticks[0]))
    try:
        torch.set_num_threads(2)
        writer = Writer()
        share = plumbing.CoreShare(writer, every=3.0)

        def after(seconds, all_ticks, own_ticks, step):
            clock[0] += seconds
            ticks[0] = (ticks[0][0] + all_ticks, ticks[0][1] + own_ticks)
            share.check(step)
            return torch.get_num_threads()

        assert after(1.0, 200, 200, 1) == 2  # not yet time to look
        assert after(3.0, 600, 300, 2) == 1  # others used 500 ticks in 4 s: 1.25 cores
        assert after(3.0, 600, 300, 3) == 1  # a core still busy
        assert after(3.0, 630, 600, 4) == 2  # others: 0.1 core
        assert after(3.0, 600, 420, 5) == 1  # 0.6 core
        assert writer.scalars == [("charts/torch_threads", 1, 2), ("charts/torch_threads", 2, 4), ("charts/torch_threads", 1, 5)]
        assert capsys.readouterr().out.count("note: other processes are using") == 1

        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        share = plumbing.CoreShare(writer, every=3.0)
        assert after(3.0, 600, 0, 6) == 2  # the user's count stays
    finally:
        torch.set_num_threads(before)
