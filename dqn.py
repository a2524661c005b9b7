"""Deep Q-Network (DQN) for discrete actions, as in Mnih et al. (2015).

DQN fits Q(s, a; θ) to the one-step target y = r + γ(1 − d) max_a' Q(s', a'; θ⁻) on minibatches
drawn uniformly from a replay buffer, acting ε-greedily, with a target network θ⁻ copied from θ
every C steps. The max both picks and evaluates the next action, which overestimates Q; this script
logs by how much (charts/q_overestimation). Read beside notes 001 (DQN section; symbols θ, θ⁻, y, ε).
`diff dqn.py ddqn.py` shows the one change of Double DQN. Defaults are those of CleanRL's dqn.py.

Run:  python dqn.py --env-id CartPole-v1          (--help lists every flag)
"""
import glob
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal, NamedTuple, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

SCRIPT = os.path.basename(__file__)
if sys.platform.startswith("linux"):  # --capture-video renders offscreen, without a display:
    os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo through EGL (on a GPU, or Mesa's on a CPU)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # classic control through pygame


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
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
    save_model: bool = False
    """if toggled, save the weights to runs/{run_name}/ and evaluate the greedy policy"""
    eval_episodes: int = 10
    """number of episodes of the greedy policy evaluated after training with --save-model"""
    eval_model: Optional[str] = None
    """skip training: load weights written by --save-model from this path and evaluate them"""

    env_id: str = "CartPole-v1"
    """the id of the environment (needs a Discrete action space and a flat Box observation space)"""
    total_timesteps: int = 500000
    """total environment steps of the experiment"""
    learning_rate: float = 2.5e-4
    """the learning rate α of the optimizer"""
    num_envs: int = 1
    """number of parallel environments"""
    buffer_size: int = 10000
    """the replay memory size (transitions)"""
    gamma: float = 0.99
    """the discount factor γ"""
    tau: float = 1.0
    """target update θ⁻ ← τθ + (1 − τ)θ⁻: 1.0 is the hard copy of the notes, below 1 the soft update"""
    target_network_frequency: int = 500
    """C: the target network is updated every C steps (per environment)"""
    batch_size: int = 128
    """the batch size N sampled from the replay memory"""
    start_e: float = 1.0
    """the starting exploration rate ε"""
    end_e: float = 0.05
    """the final exploration rate ε_min"""
    epsilon_schedule: Literal["linear", "exponential"] = "linear"
    """linear: ε falls linearly to ε_min over --exploration-fraction of training (CleanRL);
    exponential: ε ← max(ε_min, ε·ε_decay) every step (notes 001)"""
    exploration_fraction: float = 0.5
    """the fraction of total timesteps over which the linear schedule falls from start_e to end_e"""
    epsilon_decay: float = 0.999
    """ε_decay, the factor of the exponential schedule (per step, per environment)"""
    learning_starts: int = 10000
    """steps before learning starts (the buffer fills under the ε schedule meanwhile)"""
    train_frequency: int = 10
    """one gradient step every this many steps (per environment)"""
    loss: Literal["mse", "huber"] = "mse"
    """the TD loss: mse (the notes, CleanRL) or huber (smooth L1, as in the Nature DQN and SB3)"""


def make_env(env_id: str, seed: int, video_folder: Optional[str], video_frequency: int, video_prefix: str):
    def thunk():
        if video_folder is not None:  # --capture-video: every N-th episode of this environment
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode % video_frequency == 0,
                                           name_prefix=video_prefix)
        else:
            env = gym.make(env_id)
        env.action_space.seed(seed)
        return env

    return thunk


def make_envs(args: Args, run_name: str, global_step: int = 0) -> gym.vector.VectorEnv:
    """Vector env in SAME_STEP autoreset mode: when an episode ends, `step` returns the reset
    observation and puts the real last observation in infos["final_obs"]. With --capture-video,
    the first environment is recorded."""
    video_folder = f"videos/{run_name}" if args.capture_video else None
    video_prefix = f"train-resumed-at-{global_step}" if global_step else "train"
    try:
        envs = gym.vector.SyncVectorEnv(
            [make_env(args.env_id, args.seed + i, video_folder if i == 0 else None, args.video_frequency, video_prefix)
             for i in range(args.num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
    except gym.error.Error as e:
        sys.exit(f"error: --env-id {args.env_id!r} cannot be made: {e}")
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        sys.exit(f"error: {args.exp_name}.py needs a Discrete action space; {args.env_id} has {space}")
    if not isinstance(envs.single_observation_space, gym.spaces.Box) or len(envs.single_observation_space.shape) != 1:
        sys.exit(f"error: {args.exp_name}.py needs a flat Box observation space; {args.env_id} has {envs.single_observation_space}")
    envs.action_space.seed(args.seed)  # the random actions (before learning_starts) are reproducible too
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def check_args(args: Args) -> None:
    """One clear line for a bad flag, before anything is built."""
    for flag in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "target_network_frequency",
                 "train_frequency", "eval_episodes", "video_frequency"):
        if getattr(args, flag) <= 0:
            sys.exit(f"error: --{flag.replace('_', '-')} must be positive (got {getattr(args, flag)})")
    if args.learning_starts < 0 or args.checkpoint_frequency < 0:
        sys.exit(f"error: --learning-starts and --checkpoint-frequency must be >= 0 (got {args.learning_starts}, {args.checkpoint_frequency})")
    if args.learning_starts >= args.total_timesteps and args.eval_model is None:
        sys.exit(f"error: --learning-starts ({args.learning_starts}) must be below --total-timesteps ({args.total_timesteps})")
    if args.batch_size > args.buffer_size:
        sys.exit(f"error: --batch-size ({args.batch_size}) is larger than --buffer-size ({args.buffer_size})")
    if not 0.0 <= args.gamma <= 1.0 or not 0.0 < args.tau <= 1.0:
        sys.exit(f"error: need 0 <= --gamma <= 1 and 0 < --tau <= 1 (got {args.gamma}, {args.tau})")
    if not 0.0 <= args.end_e <= args.start_e <= 1.0:
        sys.exit(f"error: need 0 <= --end-e <= --start-e <= 1 (got {args.end_e}, {args.start_e})")
    if not 0.0 < args.exploration_fraction <= 1.0 or not 0.0 < args.epsilon_decay <= 1.0:
        sys.exit(f"error: need 0 < --exploration-fraction <= 1 and 0 < --epsilon-decay <= 1 "
                 f"(got {args.exploration_fraction}, {args.epsilon_decay})")


# ---------------------------------------------------------------------------------------------
# Network: Q(s, ·; θ), one output per action; the target network Q(s, ·; θ⁻) is a second copy
# ---------------------------------------------------------------------------------------------
class QNetwork(nn.Module):
    """Q(s, ·; θ) = fc3(relu(fc2(relu(fc1(s))))): the values of all actions in one pass (CleanRL's 120-84 MLP)."""

    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Returns [B, |A|]: row j is Q(s_j, ·; θ)."""
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(obs)))))


# ---------------------------------------------------------------------------------------------
# Replay buffer D
# ---------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor  # int64 action indices
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor  # d in the notes: the MDP ended, no bootstrap
    truncations: torch.Tensor  # a time limit cut the episode: s' is real, so y bootstraps from it


class ReplayBuffer:
    """A ring buffer of preallocated numpy arrays; minibatches go to the training device when drawn.
    (Unlike the actor-critic scripts' torch buffers: DQN stores a transition every step but draws a
    minibatch only every train_frequency steps, and a numpy row write costs ~1 µs, a torch one ~10.)
    Terminations and time-limit truncations are stored apart; next_obs is always the real s'."""

    def __init__(self, size: int, obs_dim: int, device: torch.device):
        self.size, self.pos, self.full, self.device = size, 0, False, device
        self.obs = np.zeros((size, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((size, obs_dim), dtype=np.float32)
        self.actions = np.zeros(size, dtype=np.int64)
        self.rewards = np.zeros(size, dtype=np.float32)
        self.terminations = np.zeros(size, dtype=np.float32)
        self.truncations = np.zeros(size, dtype=np.float32)

    def add(self, obs, actions, rewards, next_obs, terminations, truncations) -> None:
        """Stores one vector step: one row per environment."""
        rows = (self.pos + np.arange(len(obs))) % self.size
        self.obs[rows], self.actions[rows], self.rewards[rows] = obs, actions, rewards
        self.next_obs[rows], self.terminations[rows], self.truncations[rows] = next_obs, terminations, truncations
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = int(rows[-1] + 1) % self.size

    def sample(self, batch_size: int) -> Batch:
        """A minibatch drawn uniformly (with replacement) from the stored transitions."""
        idx = np.random.randint(0, self.size if self.full else self.pos, batch_size)
        return Batch(*(torch.from_numpy(store[idx]).to(self.device) for store in (
            self.obs, self.actions, self.rewards, self.next_obs, self.terminations, self.truncations)))

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminations", "truncations")

    def state_dict(self) -> dict:
        """The stored rows only, as torch tensors (a checkpoint loads with weights_only) that own a copy."""
        n = self.size if self.full else self.pos
        return {"pos": self.pos, "full": self.full, **{k: torch.from_numpy(getattr(self, k)[:n].copy()) for k in self.FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.full = state["pos"], state["full"]
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k].numpy()


def real_next_obs(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """s' for the buffer: where an episode ended, the vector env already returned the reset
    observation, and the real last observation is in infos["final_obs"]."""
    if "_final_obs" not in infos:
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(infos["_final_obs"]):
        real[i] = infos["final_obs"][i]
    return real


class OverestimationMeter:
    """Q(s_t, a_t; θ) against the discounted return G_t = Σ_k γ^k r_{t+k} actually obtained from
    (s_t, a_t), over the steps of every finished episode. Q is evaluated when the episode ends, by
    the network of that moment, in one batched pass (acting needs no forward pass while exploring).

    An episode cut by the time limit lacks the rewards after the cut, so its G_t is too low by up to
    γ^(T−t)·(the value at the cut). Only its steps with γ^(T−t) <= `tail` (1 %) count; a terminated
    episode has its whole return, and all its steps count."""

    def __init__(self, num_envs: int, gamma: float, q_network: nn.Module, device: torch.device, tail: float = 0.01):
        self.gamma, self.q_network, self.device, self.tail = gamma, q_network, device, tail
        self.episodes = [([], [], []) for _ in range(num_envs)]  # per env: states, actions, rewards so far

    def step(self, obs, actions, rewards, terminations, truncations) -> dict:
        """Records one vector step. Returns {env: (mean Q(s_t, a_t; θ), mean G_t)} for the episodes
        that ended here with at least one step counted."""
        ended = {}
        for i, (states, acts, rews) in enumerate(self.episodes):
            states.append(obs[i]), acts.append(int(actions[i])), rews.append(float(rewards[i]))
            if terminations[i] or truncations[i]:
                returns, g = np.empty(len(rews)), 0.0
                for t in reversed(range(len(rews))):
                    returns[t] = g = rews[t] + self.gamma * g  # G_t = r_t + γ G_{t+1}
                counted = np.arange(len(rews))
                if not terminations[i]:  # truncated: keep t with γ^(T−t) <= tail
                    counted = counted[self.gamma ** (len(rews) - counted) <= self.tail]
                if len(counted):
                    with torch.no_grad():
                        q = self.q_network(torch.as_tensor(np.array(states)[counted], dtype=torch.float32, device=self.device))
                    q_taken = q[torch.arange(len(counted)), torch.as_tensor(acts, device=self.device)[counted]]
                    ended[i] = (q_taken.mean().item(), float(returns[counted].mean()))
                self.episodes[i] = ([], [], [])
        return ended



# ---------------------------------------------------------------------------------------------
# The update (notes 001), as pure functions the tests import
# ---------------------------------------------------------------------------------------------
def epsilon(step: int, args: Args) -> float:
    """The exploration rate ε after `step` steps (per environment)."""
    if args.epsilon_schedule == "exponential":
        return max(args.end_e, args.start_e * args.epsilon_decay ** step)  # ε ← max(ε_min, ε·ε_decay), every step
    duration = args.exploration_fraction * args.total_timesteps
    return max(args.end_e, args.start_e + (args.end_e - args.start_e) * step / duration)  # linear to ε_min


def td_target(data: Batch, q_network: QNetwork, target_network: QNetwork, gamma: float) -> torch.Tensor:
    """The DQN target, held constant (no gradient). (q_network is unused here: ddqn.py picks a* with it.)"""
    with torch.no_grad():
        next_q = target_network(data.next_obs).max(1).values  # max_a' Q(s', a'; θ⁻): picks and evaluates a'
        return data.rewards + gamma * (1.0 - data.terminations) * next_q  # y = r + γ(1 − d) max_a' Q(s', a'; θ⁻)


def td_loss(data: Batch, q_network: QNetwork, target_network: QNetwork, gamma: float, loss: str):
    """The TD loss of notes 001. Returns L(θ), the current Q(s, a; θ) and the target y."""
    y = td_target(data, q_network, target_network, gamma)
    q = q_network(data.obs).gather(1, data.actions[:, None]).squeeze(1)  # Q(s, a; θ) with (s, a) from D
    if loss == "huber":
        return F.smooth_l1_loss(q, y), q, y  # L(θ) = E[huber(y − Q(s, a; θ))]
    return ((y - q) ** 2).mean(), q, y  # L(θ) = E[(y − Q(s, a; θ))²]


def update_target(target_params: list, params: list, tau: float) -> None:
    """θ⁻ ← τθ + (1 − τ)θ⁻ in one op; τ = 1 is the hard copy θ⁻ ← θ (lerp returns θ exactly at weight 1).
    Outside autograd: θ⁻ never requires grad, and no graph links one update's θ⁻ to the next."""
    with torch.no_grad():
        torch._foreach_lerp_(target_params, params, tau)


def evaluate(q_network: QNetwork, env_id: str, episodes: int, seed: int, gamma: float, device: torch.device,
             video_folder: Optional[str] = None):
    """The greedy policy argmax_a Q(s, a; θ) over `episodes` fresh episodes; with a video folder, the
    first episode is recorded. Returns the episodic returns, and the mean of Q(s_t, a_t; θ) − G_t over
    the episodes' counted steps (see OverestimationMeter)."""
    env = gym.make(env_id, render_mode="rgb_array" if video_folder else None)
    if video_folder is not None:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0, name_prefix="eval")
    meter = OverestimationMeter(1, gamma, q_network, device)
    returns, gaps = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, episodic_return = False, 0.0
        while not done:
            with torch.no_grad():
                action = int(q_network(torch.as_tensor(obs, dtype=torch.float32, device=device)[None]).argmax())
            next_obs, reward, terminated, truncated, _ = env.step(action)
            episodic_return += float(reward)
            done = terminated or truncated
            for q, g in meter.step([obs], [action], [reward], [terminated], [truncated]).values():
                gaps.append(q - g)
            obs = next_obs
        returns.append(episodic_return)
    env.close()
    return returns, float(np.mean(gaps)) if gaps else float("nan")


def load_and_evaluate(args: Args, device: torch.device) -> None:
    """--eval-model: rebuild the Q-network of a saved run and evaluate it on that run's env."""
    try:
        saved = torch.load(args.eval_model, map_location=device, weights_only=True)
        env_id, gamma, q_state = saved["args"]["env_id"], saved["args"]["gamma"], saved["q_network"]
        env = gym.make(env_id)
        q_network = QNetwork(env.observation_space.shape[0], env.action_space.n)
        q_network.load_state_dict(q_state)
    except (OSError, RuntimeError, KeyError, TypeError) as e:  # missing, truncated, or another script's model
        sys.exit(f"error: --eval-model {args.eval_model!r} is not a model saved by {SCRIPT}: {str(e).strip().splitlines()[0]}")
    video_folder = f"videos/{os.path.basename(os.path.dirname(os.path.abspath(args.eval_model)))}-eval" if args.capture_video else None
    returns, _ = evaluate(q_network.to(device), env_id, args.eval_episodes, args.seed, gamma, device, video_folder)
    print(f"eval of {args.eval_model} on {env_id}: {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")


# ---------------------------------------------------------------------------------------------
# Runs that survive: checkpoints (--checkpoint-frequency, --resume) and videos (--capture-video)
# ---------------------------------------------------------------------------------------------
def rng_state(envs: gym.vector.VectorEnv) -> dict:
    """Every random number generator the run draws from, as plain values (loadable with weights_only)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "action_space": envs.action_space.np_random.bit_generator.state}


def set_rng_state(state: dict, envs: gym.vector.VectorEnv) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    envs.action_space.np_random.bit_generator.state = state["action_space"]


def load_checkpoint(path: str) -> dict:
    """--resume: a checkpoint written by this script, or one line saying what is wrong with it."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, truncated, or not a torch file at all
        sys.exit(f"error: --resume {path!r} cannot be read: {str(e).strip().splitlines()[0]}")
    script = checkpoint.get("script") if isinstance(checkpoint, dict) else None
    if script != SCRIPT:
        sys.exit(f"error: --resume {path!r} is not a checkpoint of {SCRIPT}" + (f" but of {script}" if script else ""))
    return checkpoint


def upload_videos(wandb_run, folder: str, uploaded: set) -> None:
    """--capture-video with --track: each finished video file goes to the wandb run once."""
    import wandb

    for path in sorted(glob.glob(os.path.join(folder, "*.mp4"))):
        if path not in uploaded:
            uploaded.add(path)
            wandb_run.log({f"videos/{os.path.basename(path).split('-')[0]}": wandb.Video(path, format="mp4")})


def train(args: Args, checkpoint: Optional[dict] = None) -> None:
    run_name = checkpoint["run_name"] if checkpoint else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    global_step = start_step = checkpoint["global_step"] if checkpoint else 0
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    if args.torch_deterministic:  # on a GPU, cuBLAS is deterministic only with this workspace setting
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(args.torch_deterministic, warn_only=True)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    envs = make_envs(args, run_name, global_step)
    wandb_run, wandb_id = None, checkpoint["wandb_id"] if checkpoint else None
    if args.track:
        try:
            import wandb

            wandb_run = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, sync_tensorboard=True,
                                   config=vars(args), name=run_name, save_code=True, id=wandb_id, resume="allow")
            wandb_id = wandb_run.id
        except Exception as e:  # no network, no API key, ...: the local log still has everything
            print(f"warning: --track: wandb did not start ({str(e).strip().splitlines()[0]}); "
                  f"the run goes on, logged to runs/{run_name} only", file=sys.stderr)
    # on --resume, the same log: TensorBoard drops what the killed run logged after its checkpoint
    writer = SummaryWriter(f"runs/{run_name}", purge_step=global_step + 1 if checkpoint else None)
    if checkpoint is None:
        writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in vars(args).items()))

    # Initialisation (notes 001): Q(θ) at random; target θ⁻ ← θ; D ← ∅; ε ← start_e
    obs_dim = envs.single_observation_space.shape[0]
    n_actions = int(envs.single_action_space.n)
    q_network = QNetwork(obs_dim, n_actions).to(device)
    target_network = QNetwork(obs_dim, n_actions).to(device)
    target_network.load_state_dict(q_network.state_dict())
    target_network.requires_grad_(False)  # θ⁻ moves only by the target update
    q_params, target_params = list(q_network.parameters()), list(target_network.parameters())
    optimizer = torch.optim.Adam(q_params, lr=args.learning_rate, fused=True)  # one kernel: 2x faster here
    rb = ReplayBuffer(args.buffer_size, obs_dim, device)
    meter = OverestimationMeter(args.num_envs, args.gamma, q_network, device)

    # a new run starts its environments with --seed; a resumed one restarts them at the checkpoint's
    # step (their internal state is not in the checkpoint: see the README) and restores everything else;
    # the meter starts empty, as the episodes do (those in progress at the checkpoint are lost)
    obs, _ = envs.reset(seed=args.seed + global_step)
    if checkpoint is not None:
        q_network.load_state_dict(checkpoint["q_network"])  # in place: the meter evaluates the restored θ
        target_network.load_state_dict(checkpoint["target_network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        rb.load_state_dict(checkpoint["rb"])
        set_rng_state(checkpoint["rng"], envs)
        print(f"resuming {run_name} at step {global_step} (with the flags it was started with)")

    def save_checkpoint() -> str:
        """Everything needed to continue with --resume, written atomically: a crash during the save
        leaves the previous checkpoint whole."""
        path = f"runs/{run_name}/checkpoint.pt"
        writer.flush()  # the log reaches this step on disk before a checkpoint says it does
        with open(path + ".tmp", "wb") as f:
            torch.save({"script": SCRIPT, "args": vars(args), "run_name": run_name, "wandb_id": wandb_id,
                        "global_step": global_step, "q_network": q_network.state_dict(),
                        "target_network": target_network.state_dict(), "optimizer": optimizer.state_dict(),
                        "rb": rb.state_dict(), "rng": rng_state(envs)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        return path

    def stop_if_not_finite(name: str, loss: torch.Tensor) -> None:
        """A NaN or infinite loss would spread to every network it reaches: stop before it is used,
        while every network is still finite, and keep that state."""
        if not torch.isfinite(loss):
            path = save_checkpoint()
            progress.close()
            writer.close()
            sys.exit(f"error: {name} is {loss.item()} at step {global_step}; the run stops before using it, "
                     f"and the last good state is saved in {path}")

    num_iterations = max(1, args.total_timesteps // args.num_envs)
    progress = tqdm(total=num_iterations * args.num_envs, initial=global_step, unit="step", dynamic_ncols=True, mininterval=1.0)
    start_time, train_start, interrupted = time.time(), None, False
    videos_uploaded = set(glob.glob(f"videos/{run_name}/*.mp4"))  # a resumed run uploaded these already
    def on_ctrl_c(signum, frame):  # finish the current iteration, then flush, save and exit; a 2nd Ctrl-C kills
        nonlocal interrupted
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_ctrl_c)
    for iteration in range(global_step // args.num_envs + 1, num_iterations + 1):
        # a. ε-greedy: with probability ε a random action, otherwise a = argmax_a Q(s, a; θ)
        eps = epsilon(global_step, args)
        explore = np.random.random(args.num_envs) < eps
        actions = envs.action_space.sample()
        if not explore.all():
            with torch.no_grad():
                greedy = q_network(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax(1)
            actions = np.where(explore, actions, greedy.cpu().numpy())

        # b. execute a, observe s', r and the two end flags (terminated: d = 1; truncated: time limit)
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)

        # c. store (s, a, r, s', d) in D, with the real s' where the episode ended
        rb.add(obs, actions, rewards, real_next_obs(next_obs, infos), terminations, truncations)
        ended = meter.step(obs, actions, rewards, terminations, truncations)  # (Q, G) of episodes that ended

        # d. s ← s' (for an ended episode, the first observation of the next one)
        obs = next_obs
        global_step = iteration * args.num_envs
        progress.update(args.num_envs)

        # e. learn once past learning_starts, one gradient step every train_frequency steps
        if global_step > args.learning_starts and iteration % args.train_frequency == 0:
            if train_start is None:
                train_start = (time.time(), global_step)
            # e.1 sample a minibatch {(s_j, a_j, r_j, s'_j, d_j)} uniformly from D
            data = rb.sample(args.batch_size)
            # e.2 gradient step on L(θ), the target y held constant
            loss, q_taken, y = td_loss(data, q_network, target_network, args.gamma, args.loss)
            stop_if_not_finite("losses/td_loss", loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        # f. every C steps, update the target network: θ⁻ ← θ (or softly, θ⁻ ← τθ + (1 − τ)θ⁻)
        if global_step > args.learning_starts and iteration % args.target_network_frequency == 0:
            update_target(target_params, q_params, args.tau)

        if train_start is not None and iteration % 100 == 0:
            writer.add_scalar("losses/td_loss", loss.item(), global_step)
            writer.add_scalar("losses/q_values", q_taken.mean().item(), global_step)
            writer.add_scalar("charts/epsilon", eps, global_step)
            writer.add_scalar("charts/SPS", int((global_step - start_step) / (time.time() - start_time)), global_step)

        # g. an episode ended: log its return, and how far Q(s_t, a_t; θ) was above the G_t it obtained
        for i, (q_mean, g_mean) in ended.items():
            writer.add_scalar("charts/q_overestimation", q_mean - g_mean, global_step)
            writer.add_scalar("charts/q_predicted", q_mean, global_step)
            writer.add_scalar("charts/discounted_return", g_mean, global_step)
        if "_episode" in infos:
            for i in np.flatnonzero(infos["_episode"]):
                writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)
                progress.set_postfix(episodic_return=f"{infos['episode']['r'][i]:.1f}", refresh=False)
            if wandb_run is not None and args.capture_video:
                upload_videos(wandb_run, f"videos/{run_name}", videos_uploaded)

        if args.checkpoint_frequency > 0 and global_step % args.checkpoint_frequency < args.num_envs:
            save_checkpoint()
        if interrupted:  # Ctrl-C: stop between two iterations, with every structure consistent
            tqdm.write(f"interrupted at step {global_step}: flushing logs" + (" and saving the model" if args.save_model else ""))
            if args.checkpoint_frequency > 0:
                tqdm.write(f"checkpoint saved to {save_checkpoint()} (continue with --resume)")
            break
    progress.close()
    envs.close()

    if train_start is not None and global_step > train_start[1]:
        train_sps = (global_step - train_start[1]) / (time.time() - train_start[0])
        print(f"training-phase SPS: {train_sps:.1f} (steps after --learning-starts per second)")
    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.pt"
        torch.save({"q_network": q_network.state_dict(), "target_network": target_network.state_dict(),
                    "args": vars(args)}, model_path)
        print(f"model saved to {model_path}")
        if not interrupted:
            returns, gap = evaluate(q_network, args.env_id, args.eval_episodes, args.seed + 10_000, args.gamma, device,
                                    f"videos/{run_name}" if args.capture_video else None)
            for episode, episodic_return in enumerate(returns):
                writer.add_scalar("eval/episodic_return", episodic_return, episode)
            writer.add_scalar("eval/q_overestimation", gap, global_step)
            print(f"eval/episodic_return: {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes"
                  f" (greedy; Q(s,a) − G: {gap:+.2f})")
    writer.close()
    if wandb_run is not None:
        if args.capture_video:
            upload_videos(wandb_run, f"videos/{run_name}", videos_uploaded)
        wandb_run.finish()
    if interrupted:
        sys.exit(130)


if __name__ == "__main__":
    args = tyro.cli(Args)
    checkpoint = None
    if args.resume is not None:  # the run continues with the flags it was started with
        checkpoint = load_checkpoint(args.resume)
        args = Args(**{**checkpoint["args"], "resume": args.resume})
    check_args(args)
    if args.eval_model is not None:
        load_and_evaluate(args, torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu"))
    else:
        train(args, checkpoint)
