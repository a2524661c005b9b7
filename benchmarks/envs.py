"""Small environments built for one claim of the notes, registered on import so that every script
takes them unchanged: `python dqn.py --env-id benchmarks.envs:MaxBias-v0` (gymnasium imports the
module named before the colon, which registers the id after it).

MaxBias-v0: where the maximisation bias of notes 001 operates. The model is the example that
motivates Double Q-learning (van Hasselt, NeurIPS 2010; Sutton & Barto, Reinforcement Learning,
2nd ed., Example 6.7), as a two-step episode with a flat observation and one action space:

- state A (observation [1, 0]): action 0 ends the episode with reward 0; every other action moves
  to state B with reward 0;
- state B (observation [0, 1]): every action ends the episode with a reward drawn from
  N(−0.1, 1), the same distribution for all actions.

So Q*(B, a) = −0.1 for every a, Q*(A, 0) = 0 and Q*(A, a ≠ 0) = −0.1γ: going to B is a mistake.
Each estimate of Q(B, a) is a noisy average of rewards, and max_a of n_actions such estimates is
above −0.1 in expectation (E[max] ≥ max E), which is the bias DQN's target y = r + γ max_a'
Q(s', a'; θ⁻) carries back to Q(A, a ≠ 0). Double DQN's target evaluates the online network's
argmax with the target network, whose errors are partly independent of it.

MaxBiasChain-v0: the same with a chain of 5 B states (B_1 → … → B_5 → end, every action of every
B_k rewarded N(−0.1, 1)), so that the bias of each bootstrapped max adds up along the chain.

The Q − G meter of dqn.py and ddqn.py measures Q(s_t, a_t) at the actions taken, and a greedy action
is the one whose estimate came out highest: in B both scripts show that selection bias alike (its
target is the reward alone). What differs between them is the target of the steps before B.
"""
import gymnasium as gym
import numpy as np


class MaxBias(gym.Env):
    """State A, then a chain of `chain` B states; see the module docstring. n_actions: how many actions (≥ 2)."""

    def __init__(self, n_actions: int = 10, chain: int = 1, mean: float = -0.1, std: float = 1.0):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1 + chain,), np.float32)  # one-hot: A, B_1 … B_chain
        self.action_space = gym.spaces.Discrete(n_actions)
        self.chain, self.mean, self.std = chain, mean, std
        self.position = 0  # 0: A; k ≥ 1: B_k

    def observation(self) -> np.ndarray:
        return np.eye(1 + self.chain, dtype=np.float32)[min(self.position, self.chain)]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return self.observation(), {}

    def step(self, action):
        if self.position == 0 and int(action) == 0:  # "left" in A: the end, reward 0
            return self.observation(), 0.0, True, False, {}
        reward = 0.0 if self.position == 0 else float(self.np_random.normal(self.mean, self.std))  # any action in B_k
        self.position += 1
        return self.observation(), reward, self.position > self.chain, False, {}


gym.register("MaxBias-v0", entry_point=MaxBias)
gym.register("MaxBiasChain-v0", entry_point=MaxBias, kwargs={"chain": 5})
