"""Each script learns: a fixed budget, a fixed seed, a threshold on the mean of its last 10 episodes
at the end of the run.

The thresholds are the issues' targets; the figures over several seeds are in the README, so that
a reader can see how much margin seed 1 has, and on which seeds the same test would fail.
"""
import numpy as np
import pytest

from conftest import CONTINUOUS, read_scalars, run_dirs, run_script

# Pendulum-v1: random policy about −1200, solved about −150. Every actor-critic runs with its
# default hyperparameters except --learning-starts 1000 (the defaults wait 5k or 25k steps, sized for MuJoCo).
PENDULUM = ["--env-id", "Pendulum-v1", "--total-timesteps", "20000", "--learning-starts", "1000", "--seed", "1"]

# CartPole-v1 within 60k steps. CleanRL's defaults, scaled down, do not get there (exploration over half
# the run, 10k steps before learning). These are RL-Zoo's tuned DQN settings for CartPole mapped onto
# these scripts' flags (RL-Zoo trains 128 gradient steps every 256 env steps and syncs the target once
# per burst; here one gradient step every 2 steps and a target copy every 256), with its lr 2.3e-3
# lowered to 1e-3 and its final ε 0.04 to 0.01. Of the settings tried (README, "DQN and DDQN on
# CartPole-v1") it did best on seeds 1–3, where both scripts pass; but on seeds 4 and 5 DQN ends at
# 240 and 188 and DDQN on seed 5 at 265: this test, on seed 1, would not pass on every seed.
DQN_CARTPOLE = ["--env-id", "CartPole-v1", "--total-timesteps", "60000", "--learning-starts", "1000",
                "--learning-rate", "1e-3", "--batch-size", "64", "--buffer-size", "100000", "--train-frequency", "2",
                "--target-network-frequency", "256", "--exploration-fraction", "0.16", "--end-e", "0.01", "--seed", "1"]

# PPO on CartPole-v1 within 100k steps: RL-Zoo's tuned PPO settings for CartPole (8 envs × 32 steps,
# 20 epochs of one 256-sample minibatch, γ 0.98, λ 0.8, no entropy bonus, lr 1e-3 annealed to 0).
PPO_CARTPOLE = ["--env-id", "CartPole-v1", "--total-timesteps", "100000", "--num-envs", "8", "--num-steps", "32",
                "--num-minibatches", "1", "--update-epochs", "20", "--gamma", "0.98", "--gae-lambda", "0.8",
                "--ent-coef", "0.0", "--learning-rate", "1e-3", "--seed", "1"]

# A2C on CartPole-v1 within 200k steps. With its SB3-like defaults A2C learns and then collapses:
# seeds 1, 2, 3 reached a last-10 mean of 300 after 18k, 20k and 52k steps but ended at 418, 90 and
# 130. Normalised advantages, λ = 0.95 and a gradient-norm limit of 5 instead of 0.5 held it on
# all three seeds (README, "PPO and A2C", lists the settings tried).
A2C_CARTPOLE = ["--env-id", "CartPole-v1", "--total-timesteps", "200000", "--norm-adv", "--gae-lambda", "0.95",
                "--max-grad-norm", "5", "--seed", "1"]


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


# CartPole-v1: (script, flags, the threshold on the last-10 mean at the end; the budget is in the flags)
CARTPOLE = [("dqn", DQN_CARTPOLE, 400), ("ddqn", DQN_CARTPOLE, 400), ("ppo", PPO_CARTPOLE, 400), ("a2c", A2C_CARTPOLE, 300)]


@pytest.mark.learning
@pytest.mark.parametrize("script,flags,threshold", CARTPOLE, ids=[c[0] for c in CARTPOLE])
def test_learns_cartpole(script, flags, threshold, workdir):
    returns, mean = train_and_read(script, flags, workdir)
    assert mean >= threshold, f"last 10 episodes: {np.round(returns[-10:])}"


@pytest.mark.learning
def test_ppo_improves_on_pendulum_in_200k_steps_with_its_defaults(workdir):
    """Pendulum ends every episode by truncation at 200 steps: the case a truncation-as-termination
    PPO gets wrong. A uniformly random policy scores about −1200 here, a solved one about −150; seeds
    1–3 scored −125, −218, −218, and seed 1 with --no-truncation-bootstrap −868 (README)."""
    returns, mean = train_and_read("ppo", ["--env-id", "Pendulum-v1", "--total-timesteps", "200000", "--seed", "1"], workdir)
    assert len(returns) == 993  # 97 whole rollouts of 2048 steps
    assert mean >= -400, f"last 10 episodes: {np.round(returns[-10:])}"
