"""Every script through its command line, a few hundred steps, with gradient steps really taken."""
import signal
import subprocess
import sys
import time

import pytest

from conftest import CONTINUOUS, read_scalars, run_dirs, run_script, script_command, script_env

# learning_starts well below total_timesteps, so that ~200 gradient steps run
SHORT = ["--total-timesteps", "300", "--learning-starts", "100", "--batch-size", "64", "--buffer-size", "1000"]


def assert_trained(proc, cwd):
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training-phase SPS" in proc.stdout  # printed only when gradient steps ran
    (run,) = run_dirs(cwd)
    scalars = read_scalars(run)
    for tag in ("losses/qf_loss", "losses/actor_loss", "charts/episodic_return"):
        assert scalars.get(tag), f"{tag} was never logged"
    return run, scalars


@pytest.mark.parametrize("env_id", ["Hopper-v4", "Pendulum-v1"])
@pytest.mark.parametrize("script", CONTINUOUS)
def test_trains_a_few_hundred_steps(script, env_id, workdir):
    assert_trained(run_script(script, "--env-id", env_id, *SHORT, cwd=workdir), workdir)


@pytest.mark.parametrize("script", CONTINUOUS)
def test_track_offline_wandb(script, workdir):
    proc = run_script(script, "--env-id", "Pendulum-v1", *SHORT, "--track", cwd=workdir,
                      env={"WANDB_MODE": "offline", "WANDB_DIR": str(workdir), "WANDB_SILENT": "true"})
    assert_trained(proc, workdir)
    offline_runs = list((workdir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1 and offline_runs[0].stat().st_size > 0


@pytest.mark.parametrize("script", CONTINUOUS)
def test_save_model_then_evaluate_it_again(script, workdir):
    proc = run_script(script, "--env-id", "Pendulum-v1", *SHORT, "--save-model", "--eval-episodes", "2", cwd=workdir)
    run, scalars = assert_trained(proc, workdir)
    assert len(scalars["eval/episodic_return"]) == 2
    model = run / f"{script}.pt"
    assert model.is_file()
    again = run_script(script, "--eval-model", str(model), "--eval-episodes", "2", cwd=workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "over 2 episodes" in again.stdout and "Pendulum-v1" in again.stdout


BAD_INPUT = [
    (["--env-id", "CartPole-v1"], "Box"),
    (["--env-id", "NoSuchEnv-v0"], "--env-id"),
    (["--total-timesteps", "0"], "--total-timesteps"),
    (["--batch-size", "512", "--buffer-size", "100"], "--batch-size"),
    (["--learning-starts", "5000", "--total-timesteps", "1000"], "--learning-starts"),
    (["--eval-model", "no/such/model.pt"], "--eval-model"),
]


@pytest.mark.parametrize("flags,named", BAD_INPUT, ids=[b[1] + "-" + b[0][1] for b in BAD_INPUT])
@pytest.mark.parametrize("script", CONTINUOUS)
def test_bad_input_is_one_clear_line(script, flags, named, workdir):
    proc = run_script(script, *flags, cwd=workdir)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], proc.stderr[-2000:]


@pytest.mark.parametrize("script", CONTINUOUS)
def test_ctrl_c_flushes_logs_and_saves_the_model(script, workdir):
    proc = subprocess.Popen(
        script_command(script, "--env-id", "Pendulum-v1", "--total-timesteps", "100000",
                       "--learning-starts", "100", "--batch-size", "64", "--save-model"),
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal, even under CI
    )
    deadline = time.time() + 120
    while not run_dirs(workdir) and time.time() < deadline:  # the run directory appears once set up
        time.sleep(0.5)
    time.sleep(10.0)  # well past --learning-starts: gradient steps are running
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (run,) = run_dirs(workdir)
    assert (run / f"{script}.pt").is_file()
    scalars = read_scalars(run)  # the writer flushes on close (otherwise only every 2 minutes)
    assert scalars.get("losses/qf_loss") and scalars.get("charts/episodic_return")


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):  # the process has just exited
        return 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("script", CONTINUOUS)
def test_memory_stays_flat_while_training(script, workdir):
    """Regression: td3.py's heap grew ~200 KB per step (7 GB after 15k Pendulum steps) until the
    scripts began trimming glibc's heap; over 4000 gradient steps it grew by ~700 MB here."""
    proc = subprocess.Popen(script_command(script, "--env-id", "Pendulum-v1", "--total-timesteps", "5000",
                                           "--learning-starts", "1000", "--buffer-size", "10000"),
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=script_env())
    samples = []
    while proc.poll() is None:
        samples.append(rss_mb(proc.pid))
        time.sleep(0.5)
    samples = [s for s in samples if s > 0]
    assert proc.returncode == 0
    settled = samples[len(samples) // 4]  # past start-up and the first gradient steps
    assert max(samples) - settled < 150, f"RSS grew from {settled:.0f} MB to {max(samples):.0f} MB"
