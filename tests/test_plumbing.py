"""plumbing.py's own pieces, tested directly: the seeds of a run's random streams, the thread count shared with
other processes, the NaN guard's reading of diagnostics, flags, spaces and weights that do not fit."""
import os
import sys

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


class Closable:
    def close(self):
        pass


def test_a_diagnostic_that_is_not_finite_never_stops_a_run():
    """Only a skipped gradient step (a loss a step follows was not finite) stops the run; the line names such a loss
    before a diagnostic. At 145f397 a NaN explained variance stopped A2C's one-step rollouts."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    run = plumbing.Run.__new__(plumbing.Run)
    run.state, run.global_step, run.progress, run.writer = {"optimizer": optimizer}, 7, Closable(), Closable()
    run.save_checkpoint = lambda: "runs/x/checkpoint.pt"
    run.stop_if_not_finite({"losses/explained_variance": float("nan"), "losses/value_loss": 1.0})  # goes on
    optimizer.skipped = 2
    with pytest.raises(SystemExit) as stopped:
        run.stop_if_not_finite({"losses/explained_variance": float("nan"), "losses/value_loss": float("nan")})
    assert str(stopped.value).startswith("error: losses/value_loss is nan at step 7; 2 gradient steps")
    assert str(stopped.value).endswith("saved in runs/x/checkpoint.pt (--eval-model runs/x/checkpoint.pt evaluates its policy)")


def test_the_last_logged_step_of_a_killed_run(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    assert plumbing.last_logged_step(str(tmp_path)) is None  # no log: the resume line says less
    writer = SummaryWriter(str(tmp_path))
    for step in (100, 2300, 2000):
        writer.add_scalar("losses/qf_loss", 1.0, step)
    writer.close()
    assert plumbing.last_logged_step(str(tmp_path)) == 2300


def test_flags_given_in_either_spelling(monkeypatch):
    monkeypatch.setattr(plumbing.sys, "argv", ["ppo.py", "--env_id", "Hopper-v4", "--total-timesteps=5", "--no-save-model", "x_y"])
    assert plumbing.command_line_flags() == {"--env-id", "--total-timesteps", "--no-save-model"}
    assert plumbing.given("env_id") and plumbing.given("total_timesteps") and plumbing.given("save_model")
    assert not plumbing.given("seed") and not plumbing.given("x_y")


def test_spaces_that_a_model_fits():
    box = lambda low, high, n: gym.spaces.Box(low, high, (n,))  # noqa: E731
    assert plumbing.space_difference("observation", box(-1, 1, 11), box(-5, 5, 11)) is None  # bounds of observations: any
    assert plumbing.space_difference("action", box(-1, 1, 3), box(-1, 1, 3)) is None
    assert plumbing.space_difference("action", box(-1, 1, 1), box(-2, 2, 1)).startswith("other action bounds")
    assert plumbing.space_difference("action", gym.spaces.Discrete(2), gym.spaces.Discrete(3)) == \
        "an action space Discrete(3), not Discrete(2)"
    assert plumbing.space_difference("observation", box(-1, 1, 4), box(-1, 1, 6)) == "an observation space Box(6,), not Box(4,)"


def test_weights_that_do_not_fit_are_named(monkeypatch):
    """At 145f397 the line ended at load_state_dict's colon: 'Error(s) in loading state_dict for Actor:'."""
    monkeypatch.setattr(plumbing, "script_name", lambda: "sac_continuous")

    class Args:
        eval_model, cuda = "td3.pt", False

    module = torch.nn.Sequential(torch.nn.Linear(3, 4))
    weights = {"0.weight": torch.zeros(4, 5), "0.bias": torch.zeros(4), "fc_mu.weight": torch.zeros(1)}
    with pytest.raises(SystemExit) as refused:
        plumbing.load_weights(module, weights, Args())
    assert str(refused.value) == ("error: --eval-model 'td3.pt' does not fit sac_continuous.py's Sequential: the file has "
                                  "fc_mu.weight, which it has not; 0.weight (4, 5) (not (4, 3))")


def test_plot_names_the_package_it_misses(monkeypatch):
    from benchmarks import plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it fails
    monkeypatch.setattr(sys, "argv", ["plot.py"])
    with pytest.raises(SystemExit) as stopped:
        plot.main(["results.csv", "--out", "x"])
    assert str(stopped.value) == "error: plot.py needs matplotlib, which is not installed: pip install -r requirements-grid.txt"
