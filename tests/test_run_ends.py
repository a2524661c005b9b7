"""How a run ends, for every script: the summary, signals, a finished run evaluated and extended,
--eval-frequency, --eval-model on another environment or another script's file."""
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import (CONTINUOUS, OFF_POLICY, ON_POLICY, ROOT, SCRIPTS, quick_env, read_scalars, run_dirs, run_script,
                      script_command, script_env)
from test_smoke import SHORT

FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def start(workdir):
    """Starts scripts (see Started); any still running when the test ends is killed."""
    started = []
    yield lambda script, *flags: started.append(Started(script, *flags, cwd=workdir)) or started[-1]
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


class Started:
    """A script started as in a terminal (SIGINT not ignored, even under CI), its stderr read as it comes (the progress
    bar redraws its line with carriage returns: read in pieces, not lines)."""

    def __init__(self, script: str, *flags: str, cwd: Path):
        self.proc = subprocess.Popen(script_command(script, *flags), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=script_env(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.pieces = []  # (time, text) of stderr
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        while piece := self.proc.stderr.read1(65536):
            self.pieces.append((time.time(), piece.decode(errors="replace")))

    def stderr(self) -> str:
        return "".join(text for _, text in list(self.pieces))

    def said(self, text: str) -> float | None:
        """When stderr first held `text`, or None."""
        seen = ""
        for when, piece in list(self.pieces):
            seen += piece
            if text in seen:
                return when
        return None

    def step(self, total: int) -> int:
        """The latest step on the progress bar."""
        return max((int(n) for n in re.findall(rf"(\d+)/{total} ", self.stderr())), default=0)

    def wait_for(self, found, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while not found() and self.proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert found(), f"not seen in {timeout} s; stderr: {self.stderr()[-2000:]}"

    def end(self, timeout: float = 120) -> tuple[int, str, str]:
        self.proc.wait(timeout=timeout)
        stdout = self.proc.stdout.read().decode()
        self.reader.join(timeout=10)
        return self.proc.returncode, stdout, self.stderr()


def test_a_long_ppo_rollout_stops_at_once_on_ctrl_c_dropping_its_part(start, workdir):
    """A 30000-step rollout takes seconds: Ctrl-C is answered with a line at once, and the run stops inside the rollout,
    keeping the model of the last update, not after the rollout and its update."""
    run = start("ppo", "--env-id", "CartPole-v1", "--num-envs", "1", "--num-steps", "30000", "--num-minibatches", "1",
                "--total-timesteps", "300000")
    run.wait_for(lambda: run.step(300000) > 31000)  # the first update is done, the second rollout under way
    sent = time.time()
    run.proc.send_signal(signal.SIGINT)
    run.wait_for(lambda: run.said("Ctrl-C: stopping"), timeout=30)
    assert run.said("Ctrl-C: stopping") - sent < 5
    returncode, stdout, stderr = run.end()
    assert returncode == 130, stderr[-2000:]
    assert "stopped by Ctrl-C at step 30000 (the " in stdout and "steps of the rollout in progress dropped" in stdout, stdout
    (folder,) = run_dirs(workdir)
    assert (folder / "ppo.pt").is_file() and "Traceback" not in stderr


def test_a_second_ctrl_c_stops_at_once_with_a_line(start, workdir):
    """The first Ctrl-C comes during a long update (no check inside it: it ends the iteration); the second stops at once."""
    run = start("ppo", "--env-id", "CartPole-v1", "--num-envs", "1", "--num-steps", "256", "--num-minibatches", "64",
                "--update-epochs", "100000", "--total-timesteps", "1024", "--checkpoint-frequency", "256")
    run.wait_for(lambda: run_dirs(workdir))
    time.sleep(5.0)  # past the first rollout (256 steps: well under a second), inside its update (no progress bar then)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for(lambda: run.said("Ctrl-C: stopping after this iteration"), timeout=30)
    run.proc.send_signal(signal.SIGINT)
    returncode, stdout, stderr = run.end(timeout=30)
    assert returncode == 130
    assert "Ctrl-C again: stopped at once, saving nothing more; kept: the log in runs/" in stderr, stderr[-2000:]
    assert "Traceback" not in stderr and not list(workdir.glob("runs/*/ppo.pt"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_sigterm_keeps_the_model_and_a_checkpoint_and_says_so(script, start, workdir):
    """timeout, SLURM and docker stop send SIGTERM: the run stops as on Ctrl-C, keeps its model and checkpoint, exits 143."""
    early = ["--learning-starts", "100", "--batch-size", "64"] if script in OFF_POLICY else []
    run = start(script, "--env-id", quick_env(script), "--total-timesteps", "1000000", "--checkpoint-frequency", "100000", *early)
    run.wait_for(lambda: run_dirs(workdir))
    time.sleep(8.0)
    run.proc.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = run.end()
    assert returncode == 143, stderr[-2000:]
    assert "SIGTERM: stopping after this iteration, then keeping the log, the model, a checkpoint" in stderr
    (folder,) = run_dirs(workdir)
    first = next((line for line in stdout.splitlines() if line.startswith("stopped by")), stdout)
    assert first.startswith("stopped by SIGTERM at step ") and f"the model in runs/{folder.name}/{script}.pt" in first, stdout
    step = torch.load(folder / "checkpoint.pt", weights_only=True)["global_step"]
    assert f"at step {step}" in first and f"checkpoint.pt (step {step})" in first
    assert (folder / f"{script}.pt").is_file() and "Traceback" not in stderr


# per script, beside its short run (SHORT): a frequency (a multiple of its steps per iteration), a larger total to extend it to
EVERY = {**{s: (100, 500) for s in OFF_POLICY}, "ppo": (256, 1024), "a2c": (200, 1200)}


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_finished_run_is_evaluated_from_its_checkpoint_and_extended(script, workdir):
    """--eval-frequency evaluates during training and keeps the best model; the checkpoint at the end holds the policy
    (--eval-model) and the run, which --resume refuses to run again unchanged but extends to a larger --total-timesteps."""
    every, longer = EVERY[script]
    flags = ["--env-id", quick_env(script), *SHORT[script], "--checkpoint-frequency", str(every), "--eval-frequency", str(every),
             "--eval-episodes", "1"]
    proc = run_script(script, *flags, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = run_dirs(workdir)
    total = torch.load(folder / "checkpoint.pt", weights_only=True)["global_step"]
    evals = sorted(step for step, _ in read_scalars(folder)["eval/episodic_return"])
    assert evals == [0] + list(range(every, total + 1, every)), evals  # the final evaluation's episode 0, then one per `every`
    assert (folder / f"{script}-best.pt").is_file() and "best evaluation during training" in proc.stdout
    assert f"finished at step {total}: kept the log in runs/{folder.name}, the model in runs/{folder.name}/{script}.pt" in proc.stdout

    checkpoint, logs = folder / "checkpoint.pt", sorted(folder.glob("events.*"))
    again = run_script(script, "--resume", str(checkpoint), cwd=workdir)
    lines = again.stderr.strip().splitlines()
    assert again.returncode == 1 and len(lines) == 1 and "the run is finished" in lines[0] and "--eval-model" in lines[0]
    assert sorted(folder.glob("events.*")) == logs  # no log written for a run refused

    evaluated = run_script(script, "--eval-model", str(checkpoint), "--eval-episodes", "2", cwd=workdir)
    assert evaluated.returncode == 0 and f"the checkpoint of {folder.name} at step {total}" in evaluated.stdout, evaluated.stderr
    assert "over 2 episodes" in evaluated.stdout

    extended = run_script(script, "--resume", str(checkpoint), "--total-timesteps", str(longer), cwd=workdir)
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert f"extending the run from --total-timesteps {SHORT[script][1]} to {longer}" in extended.stdout
    assert torch.load(checkpoint, weights_only=True)["global_step"] == longer
    assert run_dirs(workdir) == [folder]
    returns = [step for step, _ in read_scalars(folder)["charts/episodic_return"]]
    assert returns[-1] > total and f"finished at step {longer}" in extended.stdout


def test_eval_model_on_another_environment_when_the_spaces_match(workdir):
    proc = run_script("td3", "--env-id", "Hopper-v4", *SHORT["td3"], "--eval-episodes", "1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (model,) = workdir.glob("runs/*/td3.pt")
    v5 = run_script("td3", "--eval-model", str(model), "--env-id", "Hopper-v5", "--eval-episodes", "1", cwd=workdir)
    assert v5.returncode == 0, v5.stderr[-2000:]
    assert "evaluating on Hopper-v5 (--env-id), not on Hopper-v4" in v5.stdout and "on Hopper-v5: " in v5.stdout

    other = run_script("td3", "--eval-model", str(model), "--env-id", "Pendulum-v1", cwd=workdir)  # 3 observations, 1 action
    lines = other.stderr.strip().splitlines()
    assert other.returncode == 1 and len(lines) == 1, other.stderr[-2000:]
    assert lines[0].startswith("error: --env-id Pendulum-v1: the model was trained on Hopper-v4") and "Box(3,), not Box(11,)" in lines[0]

    twin = run_script("ddpg", "--eval-model", str(model), cwd=workdir)  # the same actor, but another script's file
    assert twin.returncode == 1 and twin.stderr.strip() == (
        f"error: --eval-model {str(model)!r} was saved by td3.py, not ddpg.py: evaluate it with python td3.py --eval-model {model}")


@pytest.mark.parametrize("script,saved_by", [("ddpg", "td3"), ("sac_continuous", "td3"), ("td3", "ddpg"), ("ppo", "a2c"),
                                             ("sac_continuous", "sac_no_reparam")])
def test_another_scripts_model_from_an_earlier_version_is_one_line(script, saved_by, workdir):
    """Files from before models named their script: the flags they were saved with tell another script's (at 145f397,
    `ddpg.py --eval-model td3.pt` evaluated it silently, `sac_continuous.py --eval-model td3.pt` ended its line at a colon)."""
    proc = run_script(script, "--eval-model", str(FIXTURES / f"{saved_by}.pt"), cwd=workdir)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: --eval-model") and f"was saved by another script than {script}.py (its flags --" in lines[0]


@pytest.mark.parametrize("script", ["ppo", "a2c"])
def test_the_env_id_spelled_with_an_underscore_picks_the_defaults_of_its_action_space(script, workdir):
    """tyro takes --env_id too: at 145f397, `ppo.py --env_id Hopper-v4` trained with CartPole's (Discrete) defaults."""
    for flag in (["--env_id", "Pendulum-v1"], ["--env_id=Pendulum-v1"]):
        proc = run_script(script, *flag, "--total-timesteps", "0", cwd=workdir)  # refused after the defaults are chosen
        assert proc.stdout.startswith("Pendulum-v1: continuous action space, whose defaults apply"), proc.stdout + proc.stderr
        assert proc.returncode == 1 and not run_dirs(workdir)


def test_a2c_one_step_rollouts_are_not_stopped_by_a_diagnostic(workdir):
    """The one-step actor-critic (1 env, 1 step): the explained variance of one value is NaN. It is a diagnostic, not a
    loss any step follows: the NaN guard lets the run go on (at 145f397 it stopped it)."""
    proc = run_script("a2c", "--env-id", "CartPole-v1", "--num-steps", "1", "--num-envs", "1", "--total-timesteps", "100",
                      "--eval-episodes", "1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = run_dirs(workdir)
    scalars = read_scalars(folder)
    assert [step for step, _ in scalars["losses/value_loss"]] == [20, 40, 60, 80, 100]
    assert all(value != value for _, value in scalars["losses/explained_variance"])  # NaN, logged as it is


@pytest.mark.parametrize("script", CONTINUOUS[:1] + ON_POLICY[:1])
def test_the_summary_names_the_run_and_its_speed_for_what_it_is(script, workdir):
    proc = run_script(script, "--env-id", quick_env(script), *SHORT[script], "--eval-episodes", "2", "--capture-video", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = run_dirs(workdir)
    summary = proc.stdout[proc.stdout.index("finished at step"):].splitlines()
    assert summary[0].endswith(f"the model in runs/{folder.name}/{script}.pt, videos in videos/{folder.name}/")
    assert summary[1].startswith("  training episodes, the last ") and "evaluation of the deterministic policy" in summary[2]
    assert "over 2 episodes" in summary[2] and summary[3].startswith("  training-phase SPS: ")
    assert ("--learning-starts" in summary[3]) == (script in OFF_POLICY)  # PPO and A2C have no such flag


def test_a_checkpoint_written_before_is_evaluated_and_extended(workdir):
    """tests/fixtures/dqn-checkpoint-145f397.pt: `dqn.py --total-timesteps 400 --learning-starts 100 --batch-size 32
    --buffer-size 400 --checkpoint-frequency 200 --seed 5` at commit 145f397, the commit of the Hopper-v4 1M runs, whose
    checkpoints predate the current formats: its policy is evaluated, and the run extended."""
    checkpoint = FIXTURES / "dqn-checkpoint-145f397.pt"
    evaluated = run_script("dqn", "--eval-model", str(checkpoint), "--eval-episodes", "2", cwd=workdir)
    assert evaluated.returncode == 0 and "at step 400" in evaluated.stdout and "over 2 episodes" in evaluated.stdout, evaluated.stderr
    extended = run_script("dqn", "--resume", str(checkpoint), "--total-timesteps", "600", "--eval-episodes", "2", cwd=workdir)
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert "resuming CartPole-v1__dqn__5__" in extended.stdout and "finished at step 600" in extended.stdout
    (folder,) = run_dirs(workdir)
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["global_step"] == 600 and (folder / "dqn.pt").is_file()
