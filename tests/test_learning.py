"""Each script learns Pendulum-v1 within 20k steps: mean of its last 10 episodes >= -300.

A random policy scores about -1200 on Pendulum-v1 and a solved one about -150. Every script runs
with its default hyperparameters except --learning-starts 1000 (the defaults wait 5k or 25k steps,
sized for MuJoCo). Seed 1 is the one tested; the multi-seed figures are in the README.
"""
import numpy as np
import pytest

from conftest import CONTINUOUS, read_scalars, run_dirs, run_script

PENDULUM = ["--env-id", "Pendulum-v1", "--total-timesteps", "20000", "--learning-starts", "1000", "--seed", "1"]


@pytest.mark.learning
@pytest.mark.parametrize("script", CONTINUOUS)
def test_learns_pendulum_in_20k_steps(script, workdir):
    proc = run_script(script, *PENDULUM, cwd=workdir, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    returns = [value for _, value in read_scalars(run_dirs(workdir)[0])["charts/episodic_return"]]
    assert len(returns) == 100  # 20k steps of 200-step episodes
    assert np.mean(returns[-10:]) >= -300, f"last 10 episodes: {np.round(returns[-10:])}"
