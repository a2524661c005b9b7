"""Environments that go wrong on purpose, for the test of the NaN guard. A script reaches them as
`--env-id nan_envs:NanPendulum-v0` (gymnasium imports the module named before the colon), with this
folder on PYTHONPATH."""
import gymnasium as gym
import numpy as np


class NanRewardAfter(gym.Wrapper):
    """The reward turns NaN once this environment has taken `steps` steps, across episodes."""

    def __init__(self, env: gym.Env, steps: int):
        super().__init__(env)
        self.steps, self.count = steps, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        return obs, (np.nan if self.count > self.steps else reward), terminated, truncated, info


for name, base in (("NanPendulum-v0", "Pendulum-v1"), ("NanCartPole-v0", "CartPole-v1")):
    gym.register(name, entry_point=lambda base=base, **kwargs: NanRewardAfter(gym.make(base, **kwargs), steps=150))
