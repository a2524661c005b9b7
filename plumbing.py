"""Run plumbing shared by the eight scripts, none of it an algorithm: run flags and checks, envs, seeding,
logs, progress, Ctrl-C and SIGTERM, checkpoints and --resume, the NaN guard, threads, videos, models and their
evaluation, the end-of-run summary, --compile. Each script calls these in one line each; a script copied out
of this repository needs this file beside it."""
import argparse
import collections
import glob
import math
import os
import random
import signal
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field, fields
from typing import Callable, NoReturn, Optional

import gymnasium as gym
import numpy as np
import torch
import tyro
from torch.optim.adam import adam as functional_adam
from torch.optim.rmsprop import rmsprop as functional_rmsprop
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

if sys.platform.startswith("linux"):  # --capture-video renders offscreen, without a display:
    os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo through EGL (on a GPU, or Mesa's on a CPU)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # classic control through pygame

# The MuJoCo defaults are v4, as in CleanRL's published results (v5 works too): no advice to upgrade on every run.
warnings.filterwarnings("ignore", message=r".*is out of date\. You should consider upgrading to version")
CHECKPOINT_FORMAT = 2  # 1: the checkpoints written before this module existed (not readable now)


def script_name() -> str:
    """The running script's name without .py: the default --exp-name."""
    return os.path.basename(getattr(sys.modules["__main__"], "__file__", "script.py"))[: -len(".py")]


@dataclass
class RunArgs:
    """The flags every script has; each script's Args extends this with its algorithm's."""

    exp_name: str = field(default_factory=script_name)
    """the name of this experiment (part of the run name)"""
    seed: int = 1
    """seed of the experiment (python, numpy, torch and the environments)"""
    torch_deterministic: bool = True
    """if toggled, sets `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled, use CUDA when it is available"""
    track: bool = False
    """if toggled, track the run with Weights and Biases (the TensorBoard log is synced to it)"""
    wandb_project_name: str = "single-file-rl"
    """the wandb project name"""
    wandb_entity: Optional[str] = None
    """the entity (team) of the wandb project"""
    capture_video: bool = False
    """if toggled, record videos of the first environment and of the first evaluation episode to videos/{run_name}/"""
    video_frequency: int = 100
    """with --capture-video, record training episodes 0, N, 2N, ... of the first environment"""
    checkpoint_frequency: int = 0
    """save everything needed to continue to runs/{run_name}/checkpoint.pt every this many steps (0: never)"""
    resume: Optional[str] = None
    """continue the run saved in this checkpoint, with its flags, step counter, logs and wandb run"""
    save_model: bool = True
    """save the weights to runs/{run_name}/{exp_name}.pt at the end (and when stopped), then evaluate the deterministic policy"""
    eval_episodes: int = 10
    """number of episodes of the deterministic (greedy) policy in each evaluation"""
    eval_frequency: int = 0
    """evaluate the deterministic policy every this many steps on an env of its own, keeping the best in {exp_name}-best.pt (0: never)"""
    eval_model: Optional[str] = None
    """skip training: evaluate the policy in this model or checkpoint file, on its run's env (or on --env-id's, if the spaces match)"""


def fail(message: str) -> NoReturn:
    """Bad input ends in one line that says what is wrong and what to do, never a traceback."""
    sys.exit(f"error: {message}")


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an error's message, cut at a word before `limit` characters."""
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " …"


RENDER_HELP = ("without a display, MuJoCo renders with EGL (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri; "
               "MUJOCO_GL=egl) or OSMesa (apt-get install libosmesa6; MUJOCO_GL=osmesa)")


def check_flags(args, positive=(), non_negative=(), fractions=()) -> None:
    """One line for the first flag out of its range: > 0, >= 0, or within [0, 1]."""
    for names, ok, what in ((positive, lambda v: v > 0, "must be positive"), (non_negative, lambda v: v >= 0, "must be >= 0"),
                            (fractions, lambda v: 0 <= v <= 1, "must be within [0, 1]")):
        for name in names:
            if getattr(args, name) is not None and not ok(getattr(args, name)):
                fail(f"--{name.replace('_', '-')} {what} (got {getattr(args, name)})")


# ---------------------------------------------------------------------------------------------
# The command line: flags, --resume, and the environment's spaces, checked before anything is built
# ---------------------------------------------------------------------------------------------
def command_line_flags() -> set:
    """The flags on the command line, spelled as --help shows them (tyro also takes --env_id and --env-id=X)."""
    return {a.split("=")[0].replace("_", "-") for a in sys.argv[1:] if a.startswith("--")}


def given(name: str) -> bool:
    """Whether the command line names the flag of field `name` (a boolean's --no- form included)."""
    flag = name.replace("_", "-")
    return bool({f"--{flag}", f"--no-{flag}"} & command_line_flags())


# --resume keeps the run's flags but these, taken from its own command line where given: they decide what is written
# at the end, not what is computed; --save-model's default applies too (a run from before it was on saves a model)
OUTPUT_FLAGS = ("save_model", "eval_episodes")


def parse(Args: type, spaces: tuple, defaults: Optional[dict] = None) -> tuple:
    """Parses the command line into `Args`; returns (args, checkpoint or None). --resume keeps the flags the run started
    with (naming the given ones it ignores), except a larger --total-timesteps, which extends the run, and OUTPUT_FLAGS.
    The env needs an action space in `spaces` and a flat Box observation space. `defaults` (PPO, A2C): {"discrete":
    {...}, "continuous": {...}}."""
    exit_on_signals("stopped before training started: nothing to keep")
    default = None
    if defaults and not (given("resume") or given("eval_model")):
        peek = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --env-id, before tyro parses the rest
        peek.add_argument("--env-id", "--env_id", default=Args.__dataclass_fields__["env_id"].default)
        env_id = peek.parse_known_args()[0].env_id
        render = "--capture-video" in command_line_flags()
        kind = "discrete" if isinstance(probe_env(env_id, spaces, render)[1], gym.spaces.Discrete) else "continuous"
        default = Args(**defaults[kind])
    args = tyro.cli(Args, default=default)
    if default is not None:
        print(f"{args.env_id}: {kind} action space, whose defaults apply; in use: "
              + ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)}" for k in defaults[kind]))
    checkpoint = None
    if args.resume is not None:
        checkpoint = load_checkpoint(args.resume)
        run = checkpoint["args"]
        ignored = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("resume", "total_timesteps", "cuda", *OUTPUT_FLAGS)
                   and k in run and v != run[k] and given(k)]
        if ignored:
            print(f"warning: --resume continues with the flags the run started with; ignored: {', '.join(ignored)}", file=sys.stderr)
        total = run["total_timesteps"]
        if given("total_timesteps") and args.total_timesteps != total:
            if args.total_timesteps < total:
                fail(f"--total-timesteps {args.total_timesteps} is below the run's {total}: --resume extends a run, "
                     "it does not shorten one")
            print(f"extending the run from --total-timesteps {total} to {args.total_timesteps}: schedules over the run "
                  "(a learning rate annealed to 0, a linear ε) now span the new total")
            total = args.total_timesteps
        args = Args(**{**run, "resume": args.resume, "total_timesteps": total, "save_model": args.save_model,
                       **{k: getattr(args, k) for k in (*OUTPUT_FLAGS, "cuda") if given(k)}})  # --cuda/--no-cuda: it may go on on another device
        step, per_iteration = checkpoint["global_step"], args.num_envs * getattr(args, "num_steps", 1)
        if step + per_iteration > total:  # no further iteration fits
            fail(f"--resume {args.resume!r}: the run is finished (step {step} of --total-timesteps {total}); a larger "
                 f"--total-timesteps trains it further, and --eval-model {args.resume} evaluates its policy")
    check_flags(args, positive=("eval_episodes", "video_frequency"), non_negative=("checkpoint_frequency", "eval_frequency"))
    if args.eval_model is None:  # the environment's spaces first: a wrong env explains the rest
        probe_env(args.env_id, spaces, render=args.capture_video)
    args.check()  # the script's own flags
    return args, checkpoint


SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def say_now(line: str) -> None:
    """A line written at once from a signal handler: straight to the file descriptor, since the handler may run
    while Python's own sys.stderr is in the middle of a write (which it cannot enter again)."""
    os.write(2, f"\n{line}\n".encode())


def exit_on_signals(what: str) -> None:
    """Until a run takes them over: Ctrl-C or SIGTERM ends the process with one line, no traceback."""
    def stop(signum, frame):
        say_now(f"{SIGNAL_NAMES[signum]}: {what}")
        os._exit(128 + signum)
    for signum in SIGNAL_NAMES:
        signal.signal(signum, stop)


def probe_env(env_id: str, spaces: tuple, render: bool = False) -> tuple:
    """(observation space, action space) of `env_id`, or one line saying why this script cannot use it.
    With `render` (--capture-video), it must also render a frame."""
    try:
        env = gym.make(env_id)
    except Exception as e:  # an unknown id, a missing dependency, a module that fails to import
        if os.environ.get("MUJOCO_GL") and "gl" in str(e).lower():  # MuJoCo loads MUJOCO_GL's renderer on import
            sys.unraisablehook = lambda unraisable: None
            fail(f"{'--capture-video' if render else f'--env-id {env_id!r}'}: MuJoCo cannot load the renderer "
                 f"MUJOCO_GL={os.environ['MUJOCO_GL']} ({first_line(e, 80)}); {RENDER_HELP}")
        fail(f"--env-id {env_id!r} cannot be made: {first_line(e)}")
    obs_space, act_space = env.observation_space, env.action_space
    names = " or ".join(f"a {s.__name__}" for s in spaces)
    if not isinstance(act_space, spaces) or (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) != 1):
        fail(f"{script_name()}.py needs {names} action space; {env_id} has {act_space}")
    if isinstance(act_space, gym.spaces.Box) and not (np.isfinite(act_space.low).all() and np.isfinite(act_space.high).all()):
        fail(f"{script_name()}.py needs finite action bounds; {env_id} has {act_space}")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        fail(f"{script_name()}.py needs a flat Box observation space; {env_id} has {obs_space}")
    env.close()
    if render:  # one frame, as --capture-video will render them
        try:
            with warnings.catch_warnings(action="ignore"):
                env = gym.make(env_id, render_mode="rgb_array")
                env.reset(seed=0)
                env.render()
                env.close()
        except Exception as e:
            sys.unraisablehook = lambda unraisable: None  # the half-made renderer fails again when collected: one line is enough
            fail(f"--capture-video cannot render {env_id} ({first_line(e, 80)}); {RENDER_HELP}")
    return obs_space, act_space


def make_envs(args, run_name: str, global_step: int = 0) -> gym.vector.VectorEnv:
    """args.num_envs copies of args.env_id in a vector env in SAME_STEP autoreset mode (where an episode ends, `step`
    returns the reset observation, the real last one in infos["final_obs"]); --capture-video records the first."""
    def make(i: int):
        def thunk():
            if i == 0 and args.capture_video:  # every N-th episode of the first environment
                env = gym.make(args.env_id, render_mode="rgb_array")
                prefix = f"train-resumed-at-{global_step}" if global_step else "train"
                env = gym.wrappers.RecordVideo(env, f"videos/{run_name}", name_prefix=prefix,
                                               episode_trigger=lambda episode: episode % args.video_frequency == 0)
            else:
                env = gym.make(args.env_id)
            env.action_space.seed(action_seeds[i])
            return env
        return thunk

    action_seeds = seeds(args.seed, ACTION_SPACES, args.num_envs)
    envs = gym.vector.SyncVectorEnv([make(i) for i in range(args.num_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.action_space.seed(seeds(args.seed, VECTOR_ACTIONS, 1)[0])  # the random actions before learning_starts
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def real_next_obs(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """s' for the buffer: where an episode ended, the vector env already returned the reset
    observation, and the real last observation is in infos["final_obs"]."""
    if "_final_obs" not in infos:
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(infos["_final_obs"]):
        real[i] = infos["final_obs"][i]
    return real


# The random streams a run draws from besides the global generators that --seed seeds (python, numpy, torch)
ENV_RESETS, ACTION_SPACES, VECTOR_ACTIONS, EVALUATION, RESUMED_RESETS = range(5)


def seeds(seed: int, stream: int, n: int, *key: int) -> list[int]:
    """n seeds for one random stream of a run (e.g. ENV_RESETS: one per environment) from numpy's SeedSequence:
    no two --seed values or streams share one (with seed + i, --seed 2's env 0 was --seed 1's env 1)."""
    return [int(x) for x in np.random.SeedSequence(seed, spawn_key=(stream, *key)).generate_state(n)]


def device(args) -> torch.device:
    """The GPU torch sees first, or the CPU; with --no-cuda, CUDA is not even asked (no context on any GPU)."""
    return torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------
# One run: its name and folder, logs, wandb, progress bar, Ctrl-C, checkpoints and the NaN guard
# ---------------------------------------------------------------------------------------------
class Run:
    """The handles of one training run. `state` (set by `start`) names what a checkpoint holds: the
    script's networks, optimizers, buffers and tensors, each saved with its state_dict()."""

    def __init__(self, args, checkpoint: Optional[dict], total_steps: int, learning_starts: int = 0):
        self.args, self.checkpoint, self.learning_starts = args, checkpoint, learning_starts
        self.name = checkpoint["run_name"] if checkpoint else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
        self.global_step = self.start_step = self.iteration_step = checkpoint["global_step"] if checkpoint else 0
        self.checkpoint_step, self.dropped, self.saved = None, 0, {}  # the step of the checkpoint this run wrote last; files
        self.interrupted, self.signum, self.finishing, self.after_training = None, 0, False, False  # interrupted: the signal's name
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        torch.backends.cudnn.deterministic = args.torch_deterministic
        if args.torch_deterministic:  # on a GPU, cuBLAS is deterministic only with this workspace setting
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(args.torch_deterministic, warn_only=True)
        self.device = device(args)
        self.envs = make_envs(args, self.name, self.global_step)
        self.wandb, self.wandb_id = None, checkpoint["wandb_id"] if checkpoint else None
        if args.track:
            try:
                import wandb

                self.wandb = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, sync_tensorboard=True,
                                        config=vars(args), name=self.name, save_code=True, id=self.wandb_id, resume="allow")
                self.wandb_id = self.wandb.id
            except Exception as e:  # no network, no API key, ...: the local log still has everything
                print(f"warning: --track: wandb did not start ({first_line(e)}); the run goes on, logged to runs/{self.name} only",
                      file=sys.stderr)
        self.logged_step = last_logged_step(f"runs/{self.name}") if checkpoint else None  # how far the log of the run went
        for signum in SIGNAL_NAMES:  # from here on, a run folder exists: Ctrl-C and SIGTERM keep what they can
            signal.signal(signum, self.on_signal)
        # on --resume, the same log: TensorBoard drops what the killed run logged after its checkpoint
        self.writer = SummaryWriter(f"runs/{self.name}", purge_step=self.global_step + 1 if checkpoint else None)
        if checkpoint is None:
            self.writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in vars(args).items()))
        # refreshed every second, with the rate over that second: after --learning-starts it shows the training speed
        self.progress = tqdm(total=total_steps, initial=self.global_step, unit="step", dynamic_ncols=True, mininterval=1.0, miniters=1,
                             smoothing=1.0)
        self.start_time, self.train_start, self.state, self.policy = time.time(), None, {}, None
        self.returns = collections.deque(maxlen=10)  # the last training episodes' returns, for the summary
        self.best = checkpoint.get("best_eval") if checkpoint else None  # --eval-frequency: (mean return, step) of the best
        self.sps, self.evaluation = None, None
        self.videos_uploaded = set(glob.glob(f"videos/{self.name}/*.mp4"))  # a resumed run uploaded these already
        self.cores = CoreShare(self.writer, on=self.device.type == "cpu")

    def on_signal(self, signum, frame) -> None:
        """Ctrl-C or SIGTERM, said at once: the loop stops after the current iteration (PPO and A2C: inside a rollout too),
        then the run saves what it can and exits; a second one stops at once, saving nothing more."""
        name = SIGNAL_NAMES[signum]
        if self.interrupted:
            say_now(f"{name} again: stopped at once, saving nothing more; kept: {self.kept(flushed=False)}")
            os._exit(128 + signum)
        self.interrupted, self.signum, self.after_training = name, signum, self.finishing
        if self.finishing:
            say_now(f"{name}: the evaluation stops after this episode ({name} again stops at once)")
        else:
            keep = ", ".join(["the log", *(["the model"] if self.args.save_model else []),
                              *(["a checkpoint"] if self.args.checkpoint_frequency else [])])
            say_now(f"{name}: stopping after this iteration, then keeping {keep} ({name} again stops at once, saving nothing more)")

    def start(self, state: dict, policy: Optional[Callable] = None) -> np.ndarray:
        """Resets the environments (seeds drawn from --seed) and returns the first observations; on --resume, first
        restores `state` and the random generators, and restarts the environments (not saved) with seeds from --seed and
        the step. `policy` (observation → action, numpy; see `evaluate`) is the deterministic policy the evaluations play."""
        self.state, self.policy = state, policy
        n = self.args.num_envs
        obs, _ = self.envs.reset(seed=seeds(self.args.seed, RESUMED_RESETS, n, self.global_step) if self.checkpoint
                                 else seeds(self.args.seed, ENV_RESETS, n))
        if self.checkpoint is not None:
            for key, value in state.items():
                saved = self.checkpoint["state"][key]
                if isinstance(value, torch.Tensor):
                    with torch.no_grad():
                        value.copy_(saved)
                elif hasattr(value, "load_state_dict"):
                    value.load_state_dict(saved)
                elif value is not None:
                    load_buffer_state(value, saved)
            set_rng_state(self.checkpoint["rng"], self.envs, self.device)
            redone = (f"; the steps the run made after it (its log reached step {self.logged_step}) are run again"
                      if self.logged_step and self.logged_step > self.global_step else "")
            print(f"resuming {self.name} at step {self.global_step}, its checkpoint's (with the flags it was started with){redone}")
        return obs

    def record(self, global_step: int, infos: dict) -> None:
        """After each vector step: the progress bar, the training phase's start, the episodes that ended (return, length, videos)."""
        self.progress.update(global_step - self.global_step)
        self.global_step = global_step
        if self.train_start is None and global_step > self.learning_starts:
            self.train_start = (time.time(), global_step)
        if "_episode" in infos:
            for i in np.flatnonzero(infos["_episode"]):
                self.writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                self.writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)
                self.progress.set_postfix(episodic_return=f"{infos['episode']['r'][i]:.1f}", refresh=False)
                self.returns.append(float(infos["episode"]["r"][i]))
            self.upload_videos()

    def log(self, global_step: int, scalars: dict, sps: bool = True) -> None:
        """Writes the scalars (tensors read here, once per logging interval) and the speed; stops on a loss not finite."""
        values = {tag: value.item() if isinstance(value, torch.Tensor) else value for tag, value in scalars.items()}
        if any(tag.startswith("losses/") for tag in values):
            self.stop_if_not_finite(values)
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step)
        if sps:
            self.writer.add_scalar("charts/SPS", int((global_step - self.start_step) / (time.time() - self.start_time)), global_step)

    def stop_if_not_finite(self, values: dict) -> None:
        """The NaN guard. gradient_step skips a step whose loss is not finite (no network takes one); once per logging
        interval, the run stops if one was skipped, its last good state in a checkpoint, naming a logged loss that is not
        finite. A diagnostic that is not finite (explained variance of a one-step rollout, ...) is logged as it is."""
        skipped = int(sum(getattr(v, "skipped", 0) for v in self.state.values() if isinstance(v, torch.optim.Optimizer)))
        if skipped:
            bad = sorted((f"{tag} is {v}" for tag, v in values.items() if tag.startswith("losses/") and not np.isfinite(v)),
                         key=lambda said: "_loss " not in said)  # a loss a step follows, rather than a diagnostic
            path = self.save_checkpoint()
            self.progress.close()
            self.writer.close()
            fail(f"{bad[0] if bad else 'a loss was not finite'} at step {self.global_step}; {skipped} gradient steps with a loss "
                 f"that was not finite were skipped, no network took one, and the last good state is saved in {path} "
                 f"(--eval-model {path} evaluates its policy)")

    def save_checkpoint(self) -> str:
        """Everything --resume needs, written atomically: a crash during the save leaves the previous checkpoint whole."""
        path = f"runs/{self.name}/checkpoint.pt"
        self.writer.flush()  # the log reaches this step on disk before a checkpoint says it does
        state = {k: v.detach() if isinstance(v, torch.Tensor) else None if v is None else
                 v.state_dict() if hasattr(v, "state_dict") else buffer_state(v) for k, v in self.state.items()}
        save_atomically({"script": script_name() + ".py", "format": CHECKPOINT_FORMAT, "args": vars(self.args),
                         "run_name": self.name, "wandb_id": self.wandb_id, "global_step": self.global_step,
                         "state": state, "rng": rng_state(self.envs, self.device), "best_eval": self.best}, path)
        self.checkpoint_step, self.saved["checkpoint"] = self.global_step, f"{path} (step {self.global_step})"
        return path

    def save_model(self, model: dict, path: str) -> str:
        """A model file: `model` (the script's networks, as it names them), the run's flags and the script that saved it."""
        save_atomically({**model, "args": vars(self.args), "script": script_name() + ".py"}, path)
        return path

    def end_iteration(self, global_step: int, steps_per_iteration: int) -> bool:
        """An evaluation every --eval-frequency steps, a checkpoint every --checkpoint-frequency steps; True once
        Ctrl-C or SIGTERM came (the loop then stops)."""
        self.iteration_step = global_step
        self.cores.check(global_step)
        if self.args.eval_frequency > 0 and global_step % self.args.eval_frequency < steps_per_iteration:
            self.evaluate_during_training(global_step)
        if self.args.checkpoint_frequency > 0 and global_step % self.args.checkpoint_frequency < steps_per_iteration:
            self.save_checkpoint()
        return bool(self.interrupted)

    def evaluate_during_training(self, global_step: int) -> None:
        """--eval-frequency: --eval-episodes episodes of the deterministic policy on an environment of their own (the
        training's random generators untouched); the best mean so far keeps its model beside the last one."""
        returns = evaluate(self.args.env_id, self.policy, self.args.eval_episodes, self.args.seed, stop=lambda: self.interrupted)
        if len(returns) < self.args.eval_episodes:  # stopped by a signal: not a full evaluation
            return
        mean = float(np.mean(returns))
        self.writer.add_scalar("eval/episodic_return", mean, global_step)
        best = self.best is None or mean > self.best[0]
        if best:
            self.best = (mean, global_step)
            if self.args.save_model:
                self.saved["best model"] = self.save_model(model_of(self.state), f"runs/{self.name}/{self.args.exp_name}-best.pt")
        tqdm.write(f"eval at step {global_step}: {mean:.1f} ± {np.std(returns):.1f} over {len(returns)} episodes"
                   + (" (the best so far)" if best else f" (the best: {self.best[0]:.1f} at step {self.best[1]})"))

    def finish(self, model: dict, evaluate_kwargs: Optional[dict] = None) -> Optional[list]:
        """The end of training, however the loop ended: the training phase's speed; with --save-model, the model (`model`,
        plus the run's flags) and, if the run was not stopped, its evaluation (see `evaluate`); with --checkpoint-frequency,
        a checkpoint (to continue a stopped run, or extend a finished one). Returns the evaluation."""
        self.stop_if_not_finite({})
        self.finishing = True
        self.progress.close()
        self.envs.close()
        self.dropped = self.global_step - self.iteration_step  # stopped inside a PPO/A2C rollout: that rollout is dropped
        self.global_step = self.iteration_step
        if self.train_start is not None and self.global_step > self.train_start[1]:
            self.sps = (self.global_step - self.train_start[1]) / (time.time() - self.train_start[0] - COMPILING["seconds"])
        if self.args.save_model:  # first: a SIGTERM's grace period may end before a large checkpoint is written
            self.saved["model"] = self.save_model(model, f"runs/{self.name}/{self.args.exp_name}.pt")
        if self.best is not None and os.path.isfile(f"runs/{self.name}/{self.args.exp_name}-best.pt"):  # (a resumed run's too)
            self.saved.setdefault("best model", f"runs/{self.name}/{self.args.exp_name}-best.pt")
        if self.args.checkpoint_frequency > 0 and self.checkpoint_step != self.global_step:
            self.save_checkpoint()
        result = None
        if self.args.save_model and not self.interrupted:
            result = evaluate(self.args.env_id, self.policy, self.args.eval_episodes, self.args.seed,
                              f"videos/{self.name}" if self.args.capture_video else None, stop=lambda: self.interrupted,
                              **(evaluate_kwargs or {}))
            self.evaluation = result[0] if isinstance(result, tuple) else result
            for episode, episodic_return in enumerate(self.evaluation):
                self.writer.add_scalar("eval/episodic_return", episodic_return, episode)
        return result if self.evaluation else None

    def close(self) -> None:
        """The log closed, the videos uploaded, then the summary; a run stopped by a signal exits with 128 + its number."""
        self.writer.close()
        if self.wandb is not None:
            self.upload_videos()
            self.wandb.finish()
        print(self.summary())
        if self.interrupted:
            sys.exit(128 + self.signum)

    def summary(self) -> str:
        """How the run ended and what it kept, in its first line; then its returns, evaluation and speed."""
        if not self.interrupted:
            how = f"finished at step {self.global_step}"
        elif self.after_training:  # the signal came during the evaluation
            how = f"finished at step {self.global_step}, the evaluation stopped by {self.interrupted}"
        else:
            how = f"stopped by {self.interrupted} at step {self.global_step}" + (
                f" (the {self.dropped} steps of the rollout in progress dropped)" if self.dropped else "")
        missing = [] if self.args.save_model else ["no model (--no-save-model)"]
        if self.interrupted and not (self.after_training or self.args.checkpoint_frequency):
            missing.append("no checkpoint to resume (--checkpoint-frequency N keeps one)")
        lines = [f"{how}: kept {self.kept()}" + (f"; {', '.join(missing)}" if missing else "")]
        if self.returns:
            lines.append(f"  training episodes, the last {len(self.returns)}: {np.mean(self.returns):.1f} ± {np.std(self.returns):.1f}")
        if self.best is not None:
            lines.append(f"  best evaluation during training (--eval-frequency): {self.best[0]:.1f} at step {self.best[1]}")
        if self.evaluation:
            lines.append(f"  evaluation of the deterministic policy (eval/episodic_return): {np.mean(self.evaluation):.1f} ± "
                         f"{np.std(self.evaluation):.1f} over {len(self.evaluation)} episodes"
                         + (f" (of {self.args.eval_episodes}: stopped)" if len(self.evaluation) < self.args.eval_episodes else ""))
        if self.sps is not None:
            phase = ("steps per second after --learning-starts, gradient steps included" if hasattr(self.args, "learning_starts")
                     else "steps per second, updates included")
            compiling = f", not counting {COMPILING['seconds']:.1f} s of compiling" if COMPILING["seconds"] else ""
            lines.append(f"  training-phase SPS: {self.sps:.1f} ({phase}{compiling}; TensorBoard's charts/SPS counts from the start)")
        return "\n".join(lines)

    def kept(self, flushed: bool = True) -> str:
        """The files the run has written: its log, model, best model, checkpoint and videos."""
        files = [f"the log in runs/{self.name}" + ("" if flushed else " (to its last flush)")]
        files += [f"the {what} in {self.saved[what]}" for what in ("model", "best model", "checkpoint") if what in self.saved]
        return ", ".join(files + ([f"videos in videos/{self.name}/"] if self.args.capture_video else []))

    def upload_videos(self) -> None:
        """--capture-video with --track: each finished video file goes to the wandb run once."""
        if self.wandb is None or not self.args.capture_video:
            return
        import wandb

        for path in sorted(glob.glob(f"videos/{self.name}/*.mp4")):
            if path not in self.videos_uploaded:
                self.videos_uploaded.add(path)
                self.wandb.log({f"videos/{os.path.basename(path).split('-')[0]}": wandb.Video(path, format="mp4")})


def model_of(state: dict) -> dict:
    """The model in a run's state: what is not an optimizer or a replay buffer (as `finish` is given it by the scripts)."""
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v.state_dict() for k, v in state.items()
            if v is not None and not isinstance(v, torch.optim.Optimizer) and (isinstance(v, torch.Tensor) or hasattr(v, "state_dict"))}


def save_atomically(content: dict, path: str) -> None:
    """torch.save to a temporary file, flushed to disk, then renamed over `path`: a crash or a kill during the save
    leaves the previous file whole."""
    with open(path + ".tmp", "wb") as f:
        torch.save(content, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def last_logged_step(folder: str) -> Optional[int]:
    """The last step in the newest TensorBoard file of a run's log (what a killed run logged), or None."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        newest = max(glob.glob(f"{folder}/events.out.tfevents.*"), key=os.path.getmtime)
        return max((event.step for event in EventFileLoader(newest).Load()), default=None)
    except Exception:  # no log, or one that cannot be read: the resume line just says less
        return None


class CoreShare:
    """torch's CPU threads kept off the cores other processes use (its threads spin-wait for each other: beside one busy
    process on 2 cores, SAC fell from ~99 to ~21 steps/s, 65 with one thread). Every few seconds torch gets the cores
    the others left free (from /proc), at least one; said once; off where OMP_NUM_THREADS is set, and for a run on a GPU."""

    def __init__(self, writer: SummaryWriter, every: float = 3.0, on: bool = True):
        self.writer, self.every, self.most, self.said = writer, every, torch.get_num_threads(), False
        self.on = on and "OMP_NUM_THREADS" not in os.environ and os.path.exists("/proc/self/stat")
        self.last = (time.monotonic(), *self.ticks()) if self.on else None

    @staticmethod
    def ticks() -> tuple:  # (CPU time of every process, of this one), in clock ticks
        with open("/proc/stat") as f:  # cpu  user nice system idle iowait irq softirq steal ...
            user, nice, system, _, _, irq, softirq = (int(x) for x in f.readline().split()[1:8])
        with open("/proc/self/stat") as f:  # after the command's name: utime and stime are the 12th and 13th
            own = f.read().rsplit(")", 1)[1].split()
        return user + nice + system + irq + softirq, int(own[11]) + int(own[12])

    def check(self, global_step: int) -> None:
        now = time.monotonic()
        if not self.on or now - self.last[0] < self.every:
            return
        (then, all_then, own_then), (all_now, own_now) = self.last, self.ticks()
        self.last = (now, all_now, own_now)
        others = ((all_now - all_then) - (own_now - own_then)) / os.sysconf("SC_CLK_TCK") / (now - then)  # in cores
        threads = max(1, min(self.most, int(os.cpu_count() - others + 0.5)))
        if threads != torch.get_num_threads():
            if not self.said:
                tqdm.write(f"note: other processes are using {others:.1f} of the {os.cpu_count()} CPU cores, so torch now runs "
                           f"{threads} thread(s) instead of {torch.get_num_threads()}; it takes the cores back when they are free "
                           "(OMP_NUM_THREADS=N fixes the count)")
                self.said = True
            torch.set_num_threads(threads)
            self.writer.add_scalar("charts/torch_threads", threads, global_step)


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, max_grad_norm: Optional[float] = None) -> None:
    """One step of `optimizer` down the gradient of `loss` for its own parameters only (no gradient reaches
    another network), the norm first clipped to `max_grad_norm` if given. A loss that is not finite is
    skipped: parameters and moments stay as they were, and optimizer.skipped counts it. Fused Adam skips on the
    device (found_inf, as in mixed precision): no host sync; another optimizer (A2C's RMSprop) reads the loss once."""
    if torch.compiler.is_compiling():  # --compile: the step is part of the update's one graph
        return step_in_graph(optimizer, loss, max_grad_norm)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = torch.isfinite(loss.detach()).logical_not_().float()  # 1: its step leaves everything as it was
        optimizer.skipped = optimizer.found_inf + getattr(optimizer, "skipped", 0)
    elif not math.isfinite(loss.item()):  # (torch.isfinite then bool() costs 9 µs, this 1)
        optimizer.skipped = getattr(optimizer, "skipped", 0) + 1
        return
    optimizer.zero_grad()
    loss.backward(inputs=params)  # (.backward lays each gradient out as its parameter: fused Adam needs that)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm, foreach=True)
    optimizer.step()


def step_in_graph(optimizer: torch.optim.Optimizer, loss: torch.Tensor, max_grad_norm: Optional[float]) -> None:
    """gradient_step in a form one compiled graph holds: torch.autograd.grad, clip_grad_norm_'s clipping, torch's functional
    Adam or RMSprop on the state and settings of optimizer.in_graph (see compiled()), and the NaN guard decided in the
    graph (a loss not finite: every parameter and moment keeps its value, optimizer.skipped counts it). No host sync."""
    group, params = optimizer.in_graph, optimizer.in_graph["params"]
    grads = [g.contiguous() for g in torch.autograd.grad(loss, params)]
    if max_grad_norm is not None:  # as clip_grad_norm_: g ← g · min(1, max_norm / (‖g‖ + 1e-6))
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        grads = torch._foreach_mul(grads, (max_grad_norm / (norm + 1e-6)).clamp(max=1.0))
    adam, finite = isinstance(optimizer, torch.optim.Adam), torch.isfinite(loss)
    steps, *moments = ([optimizer.state[p][k] for p in params] for k in ("step", *(("exp_avg", "exp_avg_sq") if adam else ("square_avg",))))
    every = [*params, *steps, *(t for m in moments for t in m)]
    with torch.no_grad():
        kept = [t.clone() for t in every]
        if adam:
            functional_adam(params, grads, *moments, [], steps, foreach=True, capturable=True, amsgrad=False, beta1=group["betas"][0],
                            beta2=group["betas"][1], lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
        else:  # RMSprop without momentum, not centered (compiled() checks)
            functional_rmsprop(params, grads, *moments, [], [], steps, foreach=True, capturable=True, lr=group["lr"], alpha=group["alpha"],
                               eps=group["eps"], weight_decay=group["weight_decay"], momentum=0.0, centered=False)
        for t, old in zip(every, kept):
            t.copy_(torch.where(finite, t, old))
        optimizer.skipped.add_((~finite).long())


def compiled(update: Callable, optimizers) -> Callable:
    """--compile: `update` as one graph per variant (e.g. with and without the delayed actor step), the
    optimizers' steps included (step_in_graph), their state created first (a graph cannot create it), and
    torch's own random numbers, so that it computes what the eager update does, to rounding."""
    import torch._dynamo
    import torch._inductor.config

    torch._dynamo.config.trace_autograd_ops = True  # torch.autograd.grad inside the graph
    torch._inductor.config.fallback_random = True  # eager's random numbers, not inductor's own generator
    optimizers = [o for o in optimizers if o is not None]
    for optimizer in optimizers:
        group, rmsprop = optimizer.param_groups[0], isinstance(optimizer, torch.optim.RMSprop)
        assert isinstance(optimizer, torch.optim.Adam) or (rmsprop and not group["momentum"] and not group["centered"]), optimizer
        params = [p for g in optimizer.param_groups for p in g["params"]]
        moments = ("square_avg",) if rmsprop else ("exp_avg", "exp_avg_sq")
        for p in params:  # what the first step would create, or what --resume loaded (RMSprop's step on the CPU): on p's device,
            state = optimizer.state[p] or {"step": torch.zeros((), device=p.device), **{k: torch.zeros_like(p) for k in moments}}
            optimizer.state[p] = {k: v.to(p.device, p.dtype) for k, v in state.items()}  # the step counter in p's precision
        optimizer.skipped = torch.tensor(int(getattr(optimizer, "skipped", 0)), device=p.device)
        # what the graph reads instead of param_groups, where a learning rate would be a constant of the graph
        optimizer.in_graph = {**group, "params": params, "lr": torch.tensor(group["lr"], dtype=p.dtype, device=p.device)}
        optimizer.lr_in_graph = group["lr"]
        if p.is_cuda:  # tensors the graph updates in place, at fixed addresses: CUDA graphs (TORCHINDUCTOR_CUDAGRAPHS=1) can hold them
            for t in (optimizer.skipped, optimizer.in_graph["lr"], *(t for s in optimizer.state.values() for t in s.values())):
                torch._dynamo.mark_static_address(t)
    graph, variants = torch.compile(update, fullgraph=True), set()

    def call(*args, **kwargs):
        for optimizer in (o for o in optimizers if o.param_groups[0]["lr"] != o.lr_in_graph):  # A2C and PPO anneal it
            optimizer.lr_in_graph = optimizer.param_groups[0]["lr"]
            optimizer.in_graph["lr"].fill_(optimizer.lr_in_graph)
        variant = tuple(v for v in (*args, *kwargs.values()) if isinstance(v, (bool, int)))  # a new one compiles
        start, out = time.time(), graph(*args, **kwargs)
        if variant not in variants:  # its first call compiled it
            variants.add(variant)
            COMPILING["seconds"] += time.time() - start
        return out
    return call


COMPILING = {"seconds": 0.0}  # spent compiling (first calls of compiled variants): not counted in the training speed


def buffer_state(buffer) -> dict:
    """What a checkpoint keeps of a replay buffer: its write position, whether it is full, and copies of
    the rows stored so far of each of its arrays (torch tensors or numpy arrays of `buffer.size` rows)."""
    n = buffer.size if buffer.full else buffer.pos
    rows = {k: v for k, v in vars(buffer).items() if isinstance(v, (torch.Tensor, np.ndarray)) and len(v) == buffer.size}
    return {"pos": buffer.pos, "full": buffer.full, **{k: torch.as_tensor(v[:n], device="cpu").clone() for k, v in rows.items()}}


def load_buffer_state(buffer, state: dict) -> None:
    buffer.pos, buffer.full = state["pos"], state["full"]
    for k, rows in state.items():
        if k not in ("pos", "full"):
            store = getattr(buffer, k)
            store[: len(rows)] = rows.to(store.device) if isinstance(store, torch.Tensor) else rows.numpy()


def to_device(arrays, device: torch.device) -> list[torch.Tensor]:
    """numpy arrays (a minibatch, a rollout) as tensors on `device`. On a GPU in one copy that the host does not wait for:
    their bytes side by side in one page-locked buffer, split again on the GPU (a blocking copy each would wait each time).
    On the CPU, the arrays themselves."""
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    if device.type == "cpu":
        return tensors
    sizes = [-(-t.nbytes // 64) * 64 for t in tensors]  # each array at a 64-byte boundary, as the kernels that read it expect
    staging = torch.empty(sum(sizes), dtype=torch.uint8, device="cpu", pin_memory=device.type == "cuda")
    for t, part in zip(tensors, staging.split(sizes)):
        part[: t.nbytes].copy_(t.reshape(-1).view(torch.uint8))
    moved = staging.to(device, non_blocking=True)
    return [part[: t.nbytes].view(t.dtype).view(t.shape) for t, part in zip(tensors, moved.split(sizes))]


def rng_state(envs: gym.vector.VectorEnv, device: torch.device) -> dict:
    """Every random number generator the run draws from, as plain values (loadable with weights_only): on a GPU, that GPU's."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(), "action_space":
            envs.action_space.np_random.bit_generator.state, "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []}


def set_rng_state(state: dict, envs: gym.vector.VectorEnv, device: torch.device) -> None:
    """A run resumed on the CPU leaves the saved GPU state aside; on a GPU, the first saved state is its GPU's (checkpoints
    before this one saved one per visible GPU: a run goes on with fewer)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"][0], device)
    envs.action_space.np_random.bit_generator.state = state["action_space"]


def read_torch_file(flag: str, path: str, expected: str) -> dict:
    """A dict saved with torch.save, or one line saying what the file is not."""
    if not os.path.isfile(path):
        fail(f"{flag} {path!r}: no such file (expected {expected})")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        fail(f"{flag} {path!r} is not a file written by torch.save (another kind of file, or one cut short); expected {expected}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged archive, or objects that are not plain tensors and containers
        fail(f"{flag} {path!r} cannot be read as {expected} ({first_line(e, 100)})")
    if not isinstance(content, dict):
        fail(f"{flag} {path!r} holds a {type(content).__name__}, not {expected}")
    return content


def load_checkpoint(path: str) -> dict:
    """--resume: a checkpoint this script wrote with --checkpoint-frequency, or one line saying what is wrong."""
    script = script_name() + ".py"
    checkpoint = read_torch_file("--resume", path, f"a checkpoint written by {script} --checkpoint-frequency")
    if "global_step" not in checkpoint and "args" in checkpoint:
        fail(f"--resume {path!r} is a model saved by --save-model, not a checkpoint: evaluate it with --eval-model, "
             f"or resume from runs/<run>/checkpoint.pt, written with --checkpoint-frequency")
    if checkpoint.get("script") != script:
        fail(f"--resume {path!r} is not a checkpoint of {script}" + (f" but of {checkpoint['script']}" if checkpoint.get("script") else ""))
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        fail(f"--resume {path!r} was written by an earlier version of {script} (format {checkpoint.get('format', 1)}, "
             f"this one reads {CHECKPOINT_FORMAT}); its model weights can still be evaluated only if saved with --save-model")
    return checkpoint


# ---------------------------------------------------------------------------------------------
# Saved models: evaluation after training, and --eval-model
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(env_id: str, policy: Callable, episodes: int, seed: int, video_folder: Optional[str] = None,
             trajectories: bool = False, stop: Callable = lambda: False):
    """Returns of `policy` (observation → action, numpy) over `episodes` fresh episodes, the same ones for the same `seed`;
    with a video folder, the first is recorded; with `trajectories`, also each one's (observations, actions, rewards, terminated).
    Once `stop()` is true, no further episode starts."""
    env = gym.make(env_id, **({"render_mode": "rgb_array"} if video_folder else {}))  # (an env may take no render_mode)
    if video_folder is not None:
        with warnings.catch_warnings():  # the folder holds the training videos; eval-episode-* are new names
            warnings.filterwarnings("ignore", message=".*Overwriting existing videos.*")
            env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0, name_prefix="eval")
    returns, episodes_seen, episode_seeds = [], [], seeds(seed, EVALUATION, episodes)
    for episode in range(episodes):
        if stop():
            break
        obs, _ = env.reset(seed=episode_seeds[episode])
        done, episodic_return, seen = False, 0.0, ([], [], [], False)
        while not done:
            action = policy(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            if trajectories:
                seen[0].append(obs), seen[1].append(action), seen[2].append(float(reward))
            episodic_return += float(reward)
            done, obs = terminated or truncated, next_obs
        returns.append(episodic_return)
        episodes_seen.append((*seen[:3], terminated))
    env.close()
    return (returns, episodes_seen) if trajectories else returns


def load_model(args, keys: tuple) -> tuple[dict, gym.Env]:
    """--eval-model: the saved dict (checked for `keys`; from a checkpoint, the networks in its state) and the environment
    to evaluate on (the run's, or --env-id's where its spaces match), or one line."""
    script, path = script_name() + ".py", args.eval_model
    exit_on_signals("the evaluation stopped")
    saved = read_torch_file("--eval-model", path, f"a model saved by {script}, or a checkpoint of its runs")
    saver = saved.get("script")
    if saver is None and isinstance(saved.get("args"), dict):  # a file from before files named their script: its flags tell
        foreign = [f"--{k.replace('_', '-')}" for k in saved["args"] if k not in vars(args)]
        if foreign:
            fail(f"--eval-model {path!r} was saved by another script than {script} (its flags {', '.join(foreign[:3])} are not "
                 f"{script}'s): evaluate it with the script that saved it")
    if saver is not None and saver != script:
        fail(f"--eval-model {path!r} was saved by {saver}, not {script}: evaluate it with python {saver} --eval-model {path}")
    if "global_step" in saved:  # a checkpoint: the policy is in its state
        if saved.get("format") != CHECKPOINT_FORMAT:
            fail(f"--eval-model {path!r} is a checkpoint of an earlier format ({saved.get('format', 1)}; this version reads "
                 f"{CHECKPOINT_FORMAT}): only a model saved by --save-model from that run can be evaluated")
        print(f"evaluating the policy in the checkpoint of {saved['run_name']} at step {saved['global_step']}")
        saved = {**saved["state"], "args": saved["args"]}
    missing = [k for k in (*keys, "args") if k not in saved]
    if missing:
        fail(f"--eval-model {path!r} is not a model saved by {script} (it has no {', '.join(missing)})")
    env, env_id = make_or_fail(saved["args"]["env_id"], f"--eval-model {path!r}: its environment"), saved["args"]["env_id"]
    if given("env_id") and args.env_id != env_id:  # another environment, if the networks fit it
        other = make_or_fail(args.env_id, f"--env-id {args.env_id!r}")
        differ = [difference for difference in (space_difference("observation", env.observation_space, other.observation_space),
                                                space_difference("action", env.action_space, other.action_space)) if difference]
        if differ:
            fail(f"--env-id {args.env_id}: the model was trained on {env_id}, and {args.env_id} has {' and '.join(differ)}; "
                 f"leave out --env-id to evaluate on {env_id}")
        print(f"evaluating on {args.env_id} (--env-id), not on {env_id}, the model's environment: their spaces match")
        env = other
    return saved, env


def make_or_fail(env_id: str, what: str) -> gym.Env:
    try:
        return gym.make(env_id)
    except Exception as e:
        fail(f"{what} cannot be made ({first_line(e)})")


def space_difference(what: str, ours: gym.Space, theirs: gym.Space) -> Optional[str]:
    """How `theirs` differs from `ours` so that a network made for `ours` does not fit it or acts outside it, or None."""
    brief = lambda space: f"Box{space.shape}" if isinstance(space, gym.spaces.Box) else str(space)  # noqa: E731
    if isinstance(ours, gym.spaces.Discrete) and isinstance(theirs, gym.spaces.Discrete) and ours.n == theirs.n:
        return None
    if isinstance(ours, gym.spaces.Box) and isinstance(theirs, gym.spaces.Box) and ours.shape == theirs.shape:
        if what == "observation" or (np.array_equal(ours.low, theirs.low) and np.array_equal(ours.high, theirs.high)):
            return None
        return f"other action bounds ({theirs.low.tolist()} to {theirs.high.tolist()}, not {ours.low.tolist()} to {ours.high.tolist()})"
    return f"an {what} space {brief(theirs)}, not {brief(ours)}"


def load_weights(module: torch.nn.Module, weights: dict, args) -> torch.nn.Module:
    """module.load_state_dict(weights), or one line naming what does not fit (another script's network, another env's)."""
    expected = module.state_dict()
    names = lambda keys: ", ".join(keys[:3]) + (f" (and {len(keys) - 3} more)" if len(keys) > 3 else "")  # noqa: E731
    missing, unknown = [k for k in expected if k not in weights], [k for k in weights if k not in expected]
    shapes = [f"{k} {tuple(weights[k].shape)} (not {tuple(v.shape)})" for k, v in expected.items()
              if k in weights and getattr(weights[k], "shape", v.shape) != v.shape]
    wrong = ([f"no {names(missing)}"] if missing else []) + ([f"{names(unknown)}, which it has not"] if unknown else []) + shapes[:2]
    if wrong:
        fail(f"--eval-model {args.eval_model!r} does not fit {script_name()}.py's {type(module).__name__}: the file has "
             f"{'; '.join(wrong)}")
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        fail(f"--eval-model {args.eval_model!r} does not fit {script_name()}.py's {type(module).__name__} ({first_line(e)})")
    return module.to(device(args))


def evaluate_saved(args, env_id: str, policy: Callable, **kwargs):
    """--eval-model: evaluates `policy` on the saved run's environment and prints the mean return."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(args.eval_model)))
    result = evaluate(env_id, policy, args.eval_episodes, args.seed, f"videos/{folder}-eval" if args.capture_video else None, **kwargs)
    returns = result[0] if isinstance(result, tuple) else result
    print(f"eval of {args.eval_model} on {env_id}: {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")
    return result
