"""Each script learns: a fixed budget, a fixed seed, a threshold on its episodic returns.

Pendulum-v1 (the off-policy actor-critics, and PPO): the mean of the last 10 episodes at the end of
the run. CartPole-v1 (DQN, DDQN, PPO, A2C): the mean of 10 consecutive episodes reaches the bar
within the budget. DQN and A2C on CartPole learn, forget and relearn, so where a run stands at its
very last step is partly luck of the seed; whether it got to the bar is not. Each threshold lies
between a random policy's return and a solved one's (Pendulum about −1200 and −150, CartPole about 20
and 500). How much margin each CartPole test has over 16 seeds, and how often the run still stood at
the bar at its end, is in docs/results.md ("The CartPole learning tests over 16 seeds", measured with
benchmarks/learning_margins.py, which imports the flags from this file).
"""
import numpy as np
import pytest

from benchmarks.runlogs import window_means
from conftest import CONTINUOUS, read_scalars, run_dirs, run_script

# Pendulum-v1: random policy about −1200, solved about −150. Every actor-critic runs with its
# default hyperparameters except --learning-starts 1000 (the defaults wait 5k or 25k steps, sized for MuJoCo).
PENDULUM = ["--env-id", "Pendulum-v1", "--total-timesteps", "20000", "--learning-starts", "1000", "--seed", "1"]

# CartPole-v1 within 60k steps. CleanRL's defaults, scaled down, do not get there (exploration over half
# the run, 10k steps before learning). These are RL-Zoo's tuned DQN settings for CartPole mapped onto
# these scripts' flags (RL-Zoo trains 128 gradient steps every 256 env steps; here one every 2), with
# its lr 2.3e-3 lowered to 1e-3, its final ε 0.04 to 0.01, and a soft target update every step
# (τ = 0.005) instead of a hard copy: with a copy every 256 steps DQN ended at 400 or more on 4 of
# seeds 1–8, with the soft update on 7 (docs/results.md, at 0ec4263).
DQN_CARTPOLE = ["--env-id", "CartPole-v1", "--total-timesteps", "60000", "--learning-starts", "1000",
                "--learning-rate", "1e-3", "--batch-size", "64", "--buffer-size", "100000", "--train-frequency", "2",
                "--target-network-frequency", "1", "--tau", "0.005", "--exploration-fraction", "0.16",
                "--end-e", "0.01", "--seed", "1"]

# PPO on CartPole-v1 within 100k steps: RL-Zoo's tuned PPO settings for CartPole (8 envs × 32 steps,
# 20 epochs of one 256-sample minibatch, γ 0.98, λ 0.8, no entropy bonus, lr 1e-3 annealed to 0).
PPO_CARTPOLE = ["--env-id", "CartPole-v1", "--total-timesteps", "100000", "--num-envs", "8", "--num-steps", "32",
                "--num-minibatches", "1", "--update-epochs", "20", "--gamma", "0.98", "--gae-lambda", "0.8",
                "--ent-coef", "0.0", "--learning-rate", "1e-3", "--seed", "1"]

# A2C on CartPole-v1 within 200k steps. With its SB3-like defaults A2C learns and does not keep it
# (seeds 1–3 ended at 446, 81 and 421). Normalised advantages, λ = 0.95, a gradient-norm limit of 5
# instead of 0.5, and 32-step rollouts with lr 1e-3 instead of 5 steps and 7e-4: on seeds 1–8 the
# 10-episode mean reached 300 on all 8 within 44k steps (docs/results.md, at b339167, lists the
# settings tried).
A2C_CARTPOLE = ["--env-id", "CartPole-v1", "--total-timesteps", "200000", "--norm-adv", "--gae-lambda", "0.95",
                "--max-grad-norm", "5", "--num-steps", "32", "--learning-rate", "1e-3", "--seed", "1"]


def train_and_read(script: str, flags: list[str], workdir) -> tuple[list[float], float]:
    """Runs the script to the end; returns its episodic returns and the mean of the last 10."""
    proc = run_script(script, *flags, cwd=workdir, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    returns = [value for _, value in read_scalars(run_dirs(workdir)[0])["charts/episodic_return"]]
    return returns, float(np.mean(returns[-10:]))


@pytest.mark.learning
@pytest.mark.parametrize("script", CONTINUOUS)
def test_learns_pendulum_in_20k_steps(script, workdir):
    returns, mean = train_and_read(script, PENDULUM, workdir)
    assert len(returns) == 100  # 20k steps of 200-step episodes
    assert mean >= -300, f"last 10 episodes: {np.round(returns[-10:])}"


# CartPole-v1: (script, flags, the bar the mean of 10 consecutive episodes must reach within the budget in the flags)
CARTPOLE = [("dqn", DQN_CARTPOLE, 400), ("ddqn", DQN_CARTPOLE, 400), ("ppo", PPO_CARTPOLE, 400), ("a2c", A2C_CARTPOLE, 300)]


@pytest.mark.learning
@pytest.mark.parametrize("script,flags,threshold", CARTPOLE, ids=[c[0] for c in CARTPOLE])
def test_reaches_the_cartpole_bar_within_its_budget(script, flags, threshold, workdir):
    returns, last10 = train_and_read(script, flags, workdir)
    best = window_means(returns, 10).max()  # the best mean of 10 consecutive episodes
    assert best >= threshold, f"best mean of 10 consecutive episodes {best:.1f}, of the last 10 {last10:.1f}"


@pytest.mark.learning
def test_ppo_improves_on_pendulum_in_200k_steps_with_its_defaults(workdir):
    """Pendulum ends every episode by truncation at 200 steps: the case a truncation-as-termination
    PPO gets wrong. A uniformly random policy scores about −1200 here, a solved one about −150; seeds
    1–3 scored −113, −240, −230, and seed 1 with --no-truncation-bootstrap −911 (docs/results.md, at
    b339167)."""
    returns, mean = train_and_read("ppo", ["--env-id", "Pendulum-v1", "--total-timesteps", "200000", "--seed", "1"], workdir)
    assert len(returns) == 993  # 97 whole rollouts of 2048 steps
    assert mean >= -400, f"last 10 episodes: {np.round(returns[-10:])}"
