"""Runs that survive, for every script: videos, checkpoints killed and resumed, the same
seed giving the same run, and the failures that must end in one clear line or a warning."""
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (CONTINUOUS, DISCRETE, ON_POLICY, ROOT, SCRIPTS, quick_env, read_scalars, run_dirs,
                      run_script, script_command, script_env)
from test_smoke import SHORT, assert_trained

WANDB_OFFLINE = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def real_video_frames(path: Path) -> list[np.ndarray]:
    """Decodes an mp4 file with the ffmpeg that moviepy brings; fails on anything that is not a video."""
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(str(path))
    width, height = next(frames)["size"]
    return [np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in frames]


@pytest.mark.parametrize("script,env_id", [(s, quick_env(s)) for s in SCRIPTS] +
                         [("sac_continuous", "Hopper-v4"), ("ppo", "Hopper-v4")])  # MuJoCo, rendered headless
def test_capture_video_writes_real_videos_and_uploads_them(script, env_id, workdir):
    proc = run_script(script, "--env-id", env_id, *SHORT[script], "--capture-video", "--video-frequency", "2",
                      "--save-model", "--eval-episodes", "1", "--track", cwd=workdir,
                      env={**WANDB_OFFLINE, "WANDB_DIR": str(workdir)})
    run, _ = assert_trained(script, proc, workdir)
    assert "Overwriting existing videos" not in proc.stderr  # the evaluation's video has a name of its own
    videos = workdir / "videos" / run.name
    for name in ("train-episode-0.mp4", "eval-episode-0.mp4"):
        frames = real_video_frames(videos / name)
        assert len(frames) >= 5, f"{name}: {len(frames)} frames"
        assert frames[0].std() > 1.0, f"{name}: the first frame is blank"
        assert max(np.abs(f.astype(int) - frames[0]).mean() for f in frames) > 0.1, f"{name}: nothing moves"
    uploaded = list((workdir / "wandb").glob("offline-run-*/files/media/videos/**/*.mp4"))
    assert len(uploaded) == len(list(videos.glob("*.mp4")))


# a run long enough to be killed after its first checkpoint, with losses logged at a fixed interval
RESUMABLE = {**{s: ["--total-timesteps", "3000", "--learning-starts", "100", "--batch-size", "64",
                    "--buffer-size", "3000", "--checkpoint-frequency", "500"] for s in CONTINUOUS},
             **{s: ["--total-timesteps", "8000", "--learning-starts", "100", "--batch-size", "64",
                    "--buffer-size", "8000", "--checkpoint-frequency", "500"] for s in DISCRETE},  # faster steps
             "ppo": ["--total-timesteps", "12288", "--checkpoint-frequency", "2048"],  # 4 envs × 128 per update
             "a2c": ["--total-timesteps", "16000", "--checkpoint-frequency", "1600"]}  # logs every 800 steps
REGULAR_TAG = {**{s: "losses/qf_loss" for s in CONTINUOUS}, **{s: "losses/td_loss" for s in DISCRETE},
               "ppo": "losses/value_loss", "a2c": "losses/value_loss"}


def kill_after_first_checkpoint(script: str, flags: list[str], cwd: Path) -> Path:
    proc = subprocess.Popen(script_command(script, *flags), cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=script_env())
    deadline = time.time() + 300
    while not list(cwd.glob("runs/*/checkpoint.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # it goes on logging past the checkpoint: the resumed log must drop that part
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    (checkpoint,) = cwd.glob("runs/*/checkpoint.pt")
    return checkpoint


@pytest.mark.parametrize("script, compile", [(s, False) for s in SCRIPTS] + [(s, True) for s in SCRIPTS],
                         ids=SCRIPTS + [f"{s}-compile" for s in SCRIPTS])
def test_killed_run_resumes_to_the_end_with_an_unbroken_log(script, compile, workdir):
    """With --compile too: the resumed run compiles its update after loading the optimizer state (left where the
    checkpoint put it, that state bound no parameter, and the run ended in an UnboundLocalError at 145f397)."""
    flags = ["--env-id", quick_env(script), *RESUMABLE[script], "--save-model", "--eval-episodes", "1", *(["--compile"] if compile else [])]
    checkpoint = kill_after_first_checkpoint(script, flags, workdir)
    saved_at = torch.load(checkpoint, weights_only=True)["global_step"]
    shutil.copy(checkpoint, workdir / "first_checkpoint.pt")
    total = int(flags[flags.index("--total-timesteps") + 1])

    proc = run_script(script, "--resume", str(checkpoint), "--seed", "99", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"at step {saved_at}" in proc.stdout
    assert "ignored: --seed 99" in proc.stderr  # it continues with its own flags, and says so
    (run,) = run_dirs(workdir)  # the same run directory, not a new one
    steps = [step for step, _ in read_scalars(run)[REGULAR_TAG[script]]]
    gaps = np.diff(steps)
    assert (gaps == gaps[0]).all(), f"{REGULAR_TAG[script]} logged at {steps}"  # no hole, no step twice
    assert total - gaps[0] < steps[-1] <= total
    assert len(read_scalars(run)["eval/episodic_return"]) == 1
    if compile:  # (a second compiled resumption would compile again, a minute: the eager runs check what it would)
        return

    # Resumed twice from the same checkpoint: the same final weights (see the README for why a
    # resumed run differs from one never interrupted: the environments restart at the checkpoint)
    first = torch.load(run / f"{script}.pt", weights_only=True)
    again = run_script(script, "--resume", str(workdir / "first_checkpoint.pt"), cwd=workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    # the log went to the end, past this checkpoint: the resume says that those steps are run again
    reached = max(step for values in read_scalars(run).values() for step, _ in values)
    assert f"at step {saved_at}, its checkpoint's" in again.stdout and f"its log reached step {reached}) are run again" in again.stdout
    assert_same_tensors(first, torch.load(run / f"{script}.pt", weights_only=True))


def assert_same_tensors(a: dict, b: dict) -> None:
    for key, value in a.items():
        if isinstance(value, dict) and key != "args":
            assert_same_tensors(value, b[key])
        elif isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key


@pytest.mark.parametrize("script", SCRIPTS)
def test_same_seed_gives_the_same_run(script, workdir):
    models, returns = [], []
    for attempt in ("first", "second"):
        cwd = workdir / attempt
        cwd.mkdir()
        proc = run_script(script, "--env-id", quick_env(script), *SHORT[script], "--seed", "7", "--torch-deterministic",
                          "--save-model", "--eval-episodes", "1", cwd=cwd)
        run, scalars = assert_trained(script, proc, cwd)
        models.append(torch.load(run / f"{script}.pt", weights_only=True))
        returns.append(scalars["charts/episodic_return"])
    assert returns[0] == returns[1]
    assert_same_tensors(models[0], models[1])


def write_bad_checkpoint(kind: str, script: str, path: Path) -> None:
    other = "td3" if script != "td3" else "ddpg"
    if kind == "truncated":
        torch.save({"script": f"{script}.py", "weights": torch.zeros(10_000)}, path)
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "another script's":
        torch.save({"script": f"{other}.py", "args": {}, "global_step": 0}, path)
    elif kind == "a saved model, not a checkpoint":
        torch.save({"actor": {}, "args": {}}, path)
    elif kind == "not a torch file":  # an image given by mistake
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    elif kind == "another architecture's model":  # weights that fit none of the scripts' networks
        wrong = {"fc_other.weight": torch.zeros(2, 3)}
        torch.save({"actor": wrong, "q_network": wrong, "agent": wrong, "normalizer": {}, "qf": wrong,
                    "args": {"env_id": quick_env(script), "gamma": 0.99}}, path)


BAD_FILES = [("--resume", kind) for kind in ("missing", "truncated", "not a torch file", "another script's",
                                             "a saved model, not a checkpoint")] + \
            [("--eval-model", kind) for kind in ("truncated", "not a torch file", "another architecture's model")]
# what the line must say besides naming the flag: what the file is not, or what to use instead
SAYS = {"not a torch file": "not a file written by torch.save", "truncated": "not a file written by torch.save",
        "a saved model, not a checkpoint": "--eval-model", "missing": "no such file"}


@pytest.mark.parametrize("flag,kind", BAD_FILES)
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_checkpoint_or_model_file_is_one_clear_line(script, flag, kind, workdir):
    path = workdir / "file.pt"
    write_bad_checkpoint(kind, script, path)
    proc = run_script(script, flag, str(path), cwd=workdir)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), proc.stderr[-2000:]
    assert SAYS.get(kind, "") in lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_wandb_that_cannot_start_is_a_warning_and_the_run_goes_on(script, workdir):
    # online mode with no API key anywhere (HOME has no .netrc): wandb.init refuses at once
    proc = run_script(script, "--env-id", quick_env(script), *SHORT[script], "--track", cwd=workdir,
                      env={"WANDB_MODE": "online", "WANDB_API_KEY": "", "HOME": str(workdir), "WANDB_DIR": str(workdir)})
    assert_trained(script, proc, workdir)
    assert "warning: --track: wandb did not start" in proc.stderr


NAN_ENV = {**{s: "nan_envs:NanPendulum-v0" for s in CONTINUOUS + ON_POLICY},
           **{s: "nan_envs:NanCartPole-v0" for s in DISCRETE}}  # rewards turn NaN after 150 steps per env


COMPILED = ("sac_continuous", "td3", "dqn", "a2c", "ppo")  # the layouts of a compiled update (the twins take their paths), A2C's RMSprop, PPO's minibatches


@pytest.mark.parametrize("script, flags", [(s, ()) for s in SCRIPTS] + [(s, ("--compile",)) for s in COMPILED],
                         ids=SCRIPTS + [f"{s}-compile" for s in COMPILED])
def test_nan_loss_stops_the_run_naming_it_after_saving_the_last_good_state(script, flags, workdir):
    """With --compile the guard is decided inside the graph (SAC, TD3 and DQN: the three layouts of the
    update, which sac_no_reparam, ddpg and ddqn share; A2C: RMSprop with clipping; PPO: many compiled steps between two
    logs), and the run stops with the same line."""
    proc = run_script(script, "--env-id", NAN_ENV[script], *SHORT[script], "--total-timesteps", "2048", *flags, cwd=workdir,
                      env={"PYTHONPATH": str(ROOT / "tests")})
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: losses/") and " is nan at step " in error, proc.stderr[-2000:]
    assert "tensor(" not in error  # the skipped count is a number, also where the compiled graph counts it on the device
    (checkpoint,) = workdir.glob("runs/*/checkpoint.pt")
    assert str(checkpoint.relative_to(workdir)) in error
    state = torch.load(checkpoint, weights_only=True)["state"]
    networks = [v for k, v in state.items() if isinstance(v, dict) and "optimizer" not in k
                and k not in ("rb", "normalizer")]  # the buffer holds the NaN rewards
    assert networks and all(torch.isfinite(t).all() for net in networks for t in net.values() if torch.is_tensor(t))


@pytest.mark.parametrize("script", SCRIPTS)
def test_eval_model_reads_a_model_saved_by_an_earlier_version(script, workdir):
    """tests/fixtures/{script}.pt was written by --save-model at commit 0e018f8, before the run plumbing
    moved to a shared module: models saved then must still load and evaluate."""
    proc = run_script(script, "--eval-model", str(ROOT / "tests" / "fixtures" / f"{script}.pt"), "--eval-episodes", "2",
                      cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "over 2 episodes" in proc.stdout


@pytest.mark.parametrize("script", ["sac_continuous", "ppo"])
def test_capture_video_without_a_renderer_is_one_clear_line(script, workdir):
    """MUJOCO_GL=osmesa on a machine without OSMesa: MuJoCo cannot render, and says so before training."""
    proc = run_script(script, "--env-id", "Hopper-v4", "--capture-video", "--total-timesteps", "1000", cwd=workdir,
                      env={"MUJOCO_GL": "osmesa"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: --capture-video") and "apt-get install" in lines[0]
