"""Twin Delayed DDPG (TD3) for continuous actions, as in Fujimoto et al. (2018).

TD3 learns a deterministic actor μ_φ(s) by the deterministic policy gradient through a critic, as
DDPG does, with three changes against overestimation: twin critics whose minimum forms the target,
target policy smoothing (clipped noise on the target action) and delayed actor and target updates.
Read beside notes 001 (DDPG and TD3 sections; symbols: actor μ_φ, critics Q_θi, targets μ_φ', Q_θ'i).
`diff ddpg.py td3.py` shows the three changes. Defaults are those of CleanRL's td3_continuous_action.py.

Run:  python td3.py --env-id Hopper-v4          (--help lists every flag)
"""
import glob
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional

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
    """if toggled, save the weights to runs/{run_name}/ and evaluate the deterministic policy"""
    eval_episodes: int = 10
    """number of episodes of the deterministic policy evaluated after training with --save-model"""
    eval_model: Optional[str] = None
    """skip training: load weights written by --save-model from this path and evaluate them"""

    env_id: str = "Hopper-v4"
    """the id of the environment (needs a Box action space with finite bounds)"""
    total_timesteps: int = 1000000
    """total environment steps of the experiment"""
    learning_rate: float = 3e-4
    """the learning rate of the actor and of the critics"""
    num_envs: int = 1
    """number of parallel environments (one gradient step per vector step)"""
    buffer_size: int = int(1e6)
    """the replay memory size (transitions)"""
    gamma: float = 0.99
    """the discount factor γ"""
    tau: float = 0.005
    """target smoothing coefficient τ"""
    batch_size: int = 256
    """the batch size N sampled from the replay memory"""
    learning_starts: int = int(25e3)
    """steps of uniformly random actions before learning starts (N_min in notes 001)"""
    exploration_noise: float = 0.1
    """std σ_explore of the Gaussian exploration noise, in units of the half action range"""
    policy_noise: float = 0.2
    """std σ of the target policy smoothing noise, in units of the half action range"""
    noise_clip: float = 0.5
    """the smoothing noise is clipped to [−c, c] with c this, in units of the half action range"""
    policy_frequency: int = 2
    """the delay d: the actor and the targets are updated once every d critic updates"""
    actor_min_q: bool = False
    """if toggled, the actor maximises min(Q_θ1, Q_θ2) instead of Q_θ1 (paper and CleanRL: Q_θ1)"""


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
    if not isinstance(space, gym.spaces.Box):
        sys.exit(f"error: {args.exp_name}.py needs a continuous (Box) action space; {args.env_id} has {space}")
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        sys.exit(f"error: {args.exp_name}.py needs finite action bounds to squash into; {args.env_id} has {space}")
    if not isinstance(envs.single_observation_space, gym.spaces.Box) or len(envs.single_observation_space.shape) != 1:
        sys.exit(f"error: {args.exp_name}.py needs a flat Box observation space; {args.env_id} has {envs.single_observation_space}")
    envs.action_space.seed(args.seed)  # the random actions (before learning_starts) are reproducible too
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def check_args(args: Args) -> None:
    """One clear line for a bad flag, before anything is built."""
    for flag in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "policy_frequency", "eval_episodes", "video_frequency"):
        if getattr(args, flag) <= 0:
            sys.exit(f"error: --{flag.replace('_', '-')} must be positive (got {getattr(args, flag)})")
    for flag in ("exploration_noise", "policy_noise", "noise_clip"):
        if getattr(args, flag) < 0:
            sys.exit(f"error: --{flag.replace('_', '-')} must be >= 0 (got {getattr(args, flag)})")
    if args.learning_starts < 0 or args.checkpoint_frequency < 0:
        sys.exit(f"error: --learning-starts and --checkpoint-frequency must be >= 0 (got {args.learning_starts}, {args.checkpoint_frequency})")
    if args.learning_starts >= args.total_timesteps and args.eval_model is None:
        sys.exit(f"error: --learning-starts ({args.learning_starts}) must be below --total-timesteps ({args.total_timesteps})")
    if args.batch_size > args.buffer_size:
        sys.exit(f"error: --batch-size ({args.batch_size}) is larger than --buffer-size ({args.buffer_size})")
    if not 0.0 <= args.gamma <= 1.0 or not 0.0 < args.tau <= 1.0:
        sys.exit(f"error: need 0 <= --gamma <= 1 and 0 < --tau <= 1 (got {args.gamma}, {args.tau})")


# ---------------------------------------------------------------------------------------------
# Networks: the actor μ_φ, the twin critics Q_θ1, Q_θ2 (one QEnsemble) and their targets μ_φ', Q_θ'i.
# QEnsemble is sac_continuous.py's, verbatim: its docstring names the critics' weights φ as notes
# 000 does for SAC; here they are θ (notes 001).
# ---------------------------------------------------------------------------------------------
class QEnsemble(nn.Module):
    """n independent critics Q_φi(s, a) = W3_i·relu(W2_i·relu(W1_i·[s; a] + b1_i) + b2_i) + b3_i.

    Each layer holds the n critics' weights stacked as one [n, out, in] tensor (nn.Linear's layout,
    which keeps the backward pass in contiguous memory: 25 % faster on CPU than [n, in, out]), so all
    n critics run as one batched matmul (torch.baddbmm) instead of n small ones; the math is n
    separate 256-256 MLPs with nn.Linear's default initialisation, exactly as n nn.Sequential critics.
    """

    def __init__(self, obs_dim: int, act_dim: int, n: int = 2, hidden: int = 256):
        super().__init__()
        sizes = [obs_dim + act_dim, hidden, hidden, 1]
        self.n = n
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default: U(-1/√fan_in, 1/√fan_in)
            self.weights.append(nn.Parameter(torch.empty(n, fan_out, fan_in).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, first: Optional[int] = None) -> torch.Tensor:
        """Returns [n, B]: row i is Q_φi(s, a); with `first` = k, only the first k critics run ([k, B])."""
        k = self.n if first is None else first
        x = torch.cat([obs, actions], dim=-1).expand(k, -1, -1)
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            if k < self.n:  # the first k critics' weights (views; no slicing when all run)
                w, b = w[:k], b[:k]
            x = torch.baddbmm(b, x, w.transpose(1, 2))  # x_i ← x_i W_iᵀ + b_i for each critic i
            if layer < len(self.weights) - 1:
                x = F.relu(x)
        return x.squeeze(-1)


class Actor(nn.Module):
    """The deterministic policy μ_φ(s) = tanh(fc_mu(relu(fc2(relu(fc1(s)))))), scaled to the action bounds."""

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc_mu = nn.Linear(256, act_dim)
        self.register_buffer("action_scale", torch.tensor((high - low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_bias", torch.tensor((high + low) / 2.0, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Returns μ_φ(s) in the environment's units."""
        h = F.relu(self.fc2(F.relu(self.fc1(obs))))
        return torch.tanh(self.fc_mu(h)) * self.action_scale + self.action_bias

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        """clip(a, a_low, a_high), with a_low = bias − scale and a_high = bias + scale."""
        return actions.clamp(self.action_bias - self.action_scale, self.action_bias + self.action_scale)


# ---------------------------------------------------------------------------------------------
# Replay buffer D
# ---------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor  # d in the notes: the MDP ended, no bootstrap
    truncations: torch.Tensor  # a time limit cut the episode: s' is real, so y bootstraps from it


class ReplayBuffer:
    """A ring buffer of preallocated tensors on the training device. Terminations and time-limit
    truncations are stored apart; next_obs is always the real s', never a reset observation."""

    def __init__(self, size: int, obs_dim: int, act_dim: int, device: torch.device):
        self.size, self.pos, self.full, self.device = size, 0, False, device
        self.obs = torch.zeros((size, obs_dim), device=device)
        self.next_obs = torch.zeros((size, obs_dim), device=device)
        self.actions = torch.zeros((size, act_dim), device=device)
        self.rewards = torch.zeros(size, device=device)
        self.terminations = torch.zeros(size, device=device)
        self.truncations = torch.zeros(size, device=device)

    def add(self, obs, actions, rewards, next_obs, terminations, truncations) -> None:
        """Stores one vector step: one row per environment."""
        rows = (self.pos + np.arange(len(obs))) % self.size
        for store, value in ((self.obs, obs), (self.actions, actions), (self.rewards, rewards),
                             (self.next_obs, next_obs), (self.terminations, terminations),
                             (self.truncations, truncations)):
            store[rows] = torch.as_tensor(value, dtype=torch.float32).to(self.device)
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = int(rows[-1] + 1) % self.size

    def sample(self, batch_size: int) -> Batch:
        """A minibatch drawn uniformly (with replacement) from the stored transitions."""
        idx = torch.randint(0, self.size if self.full else self.pos, (batch_size,), device=self.device)
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx],
                     self.terminations[idx], self.truncations[idx])

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminations", "truncations")

    def state_dict(self) -> dict:
        """The stored rows only, as copies (a slice would save the whole preallocated tensor)."""
        n = self.size if self.full else self.pos
        return {"pos": self.pos, "full": self.full, **{k: getattr(self, k)[:n].clone() for k in self.FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.full = state["pos"], state["full"]
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k].to(self.device)



def real_next_obs(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """s' for the buffer: where an episode ended, the vector env already returned the reset
    observation, and the real last observation is in infos["final_obs"]."""
    if "_final_obs" not in infos:
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(infos["_final_obs"]):
        real[i] = infos["final_obs"][i]
    return real




def soft_update(target_params: list, params: list, tau: float) -> None:
    """θ' ← τθ + (1 − τ)θ' for every tensor in one op (lerp), outside autograd: the targets
    never require grad, and no graph links one step's targets to the next."""
    with torch.no_grad():
        torch._foreach_lerp_(target_params, params, tau)


# ---------------------------------------------------------------------------------------------
# Losses (notes 001 TD3), as pure functions the tests import
# ---------------------------------------------------------------------------------------------
def target_policy_noise(actions: torch.Tensor, policy_noise: float, noise_clip: float, action_scale: torch.Tensor):
    """Target policy smoothing noise shaped like `actions`, drawn in units of the half action range
    and scaled to the environment's units as CleanRL does, so it lies within ±noise_clip·action_scale."""
    return (torch.randn_like(actions) * policy_noise).clamp(-noise_clip, noise_clip) * action_scale  # ε ~ clip(N(0,σ), −c, c)


def critic_loss(data: Batch, actor_target: Actor, qf: QEnsemble, qf_target: QEnsemble, gamma: float,
                policy_noise: float, noise_clip: float):
    """Notes 001 TD3 critic loss. Returns L(θ1, θ2), the current Q_θi(s, a) ([2, N]) and the target y."""
    with torch.no_grad():
        noise = target_policy_noise(data.actions, policy_noise, noise_clip, actor_target.action_scale)
        next_actions = actor_target.clip(actor_target(data.next_obs) + noise)  # ã' = clip(μ_φ'(s') + ε, a_low, a_high)
        next_q = qf_target(data.next_obs, next_actions).min(0).values  # min_i Q_θ'i(s', ã')
        # y = r + γ(1 − d) min_i Q_θ'i(s', ã')   [d = termination only]
        y = data.rewards + gamma * (1.0 - data.terminations) * next_q
    q = qf(data.obs, data.actions)  # Q_θi(s, a) with (s, a) from the buffer
    loss = ((q - y) ** 2).mean(1).sum()  # L = Σ_i E[(Q_θi(s, a) − y)²]
    return loss, q, y


def actor_loss(obs: torch.Tensor, actor: Actor, qf: QEnsemble, min_q: bool) -> torch.Tensor:
    """Notes 001 TD3 actor loss J(φ); its gradient is the deterministic policy gradient."""
    # Q_θi(s, μ_φ(s)) of the current critics, Q_θ1 alone ([1, B]) unless min_q: the gradient reaches φ through μ_φ(s)
    q = qf(obs, actor(obs), first=None if min_q else 1)
    return -q.min(0).values.mean()  # J(φ) = −E[Q_θ1(s, μ_φ(s))] (a min over Q_θ1 alone), or −E[min_i Q_θi(s, μ_φ(s))]


def evaluate(actor: Actor, env_id: str, episodes: int, seed: int, device: torch.device,
             video_folder: Optional[str] = None) -> list[float]:
    """Returns of the deterministic policy μ_φ(s), without exploration noise, over `episodes` fresh
    episodes; with a video folder, the first episode is recorded."""
    env = gym.make(env_id, render_mode="rgb_array" if video_folder else None)
    if video_folder is not None:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0, name_prefix="eval")
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, episodic_return = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])
            obs, reward, terminated, truncated, _ = env.step(action[0].cpu().numpy())
            episodic_return += float(reward)
            done = terminated or truncated
        returns.append(episodic_return)
    env.close()
    return returns


def load_and_evaluate(args: Args, device: torch.device) -> None:
    """--eval-model: rebuild the actor of a saved run and evaluate it on that run's env."""
    try:
        saved = torch.load(args.eval_model, map_location=device, weights_only=True)
        env_id, actor_state = saved["args"]["env_id"], saved["actor"]
        env = gym.make(env_id)
        actor = Actor(env.observation_space.shape[0], env.action_space.shape[0], env.action_space.low, env.action_space.high)
        actor.load_state_dict(actor_state)
    except (OSError, RuntimeError, KeyError, TypeError) as e:  # missing, truncated, or another script's model
        sys.exit(f"error: --eval-model {args.eval_model!r} is not a model saved by {SCRIPT}: {str(e).strip().splitlines()[0]}")
    video_folder = f"videos/{os.path.basename(os.path.dirname(os.path.abspath(args.eval_model)))}-eval" if args.capture_video else None
    returns = evaluate(actor.to(device), env_id, args.eval_episodes, args.seed, device, video_folder)
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

    # Initialisation (notes 001): μ_φ; Q_θ1, Q_θ2; targets φ' ← φ, θ'i ← θi; D
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    actor = Actor(obs_dim, act_dim, envs.single_action_space.low, envs.single_action_space.high).to(device)
    actor_target = Actor(obs_dim, act_dim, envs.single_action_space.low, envs.single_action_space.high).to(device)
    actor_target.load_state_dict(actor.state_dict())
    actor_target.requires_grad_(False)  # targets move only by the soft update
    qf = QEnsemble(obs_dim, act_dim, n=2).to(device)
    qf_target = QEnsemble(obs_dim, act_dim, n=2).to(device)
    qf_target.load_state_dict(qf.state_dict())
    qf_target.requires_grad_(False)
    actor_params, actor_target_params = list(actor.parameters()), list(actor_target.parameters())
    qf_params, qf_target_params = list(qf.parameters()), list(qf_target.parameters())
    q_optimizer = torch.optim.Adam(qf_params, lr=args.learning_rate, fused=True)
    actor_optimizer = torch.optim.Adam(actor_params, lr=args.learning_rate, fused=True)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)

    # a new run starts its environments with --seed; a resumed one restarts them at the checkpoint's
    # step (their internal state is not in the checkpoint: see the README) and restores everything else
    obs, _ = envs.reset(seed=args.seed + global_step)
    if checkpoint is not None:
        actor.load_state_dict(checkpoint["actor"])
        actor_target.load_state_dict(checkpoint["actor_target"])
        qf.load_state_dict(checkpoint["qf"])
        qf_target.load_state_dict(checkpoint["qf_target"])
        q_optimizer.load_state_dict(checkpoint["q_optimizer"])
        actor_optimizer.load_state_dict(checkpoint["actor_optimizer"])
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
                        "global_step": global_step, "actor": actor.state_dict(), "actor_target": actor_target.state_dict(),
                        "qf": qf.state_dict(), "qf_target": qf_target.state_dict(),
                        "q_optimizer": q_optimizer.state_dict(), "actor_optimizer": actor_optimizer.state_dict(),
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
    pi_loss = torch.tensor(float("nan"))  # logged as NaN until the first (delayed) actor update
    def on_ctrl_c(signum, frame):  # finish the current iteration, then flush, save and exit; a 2nd Ctrl-C kills
        nonlocal interrupted
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_ctrl_c)
    for iteration in range(global_step // args.num_envs + 1, num_iterations + 1):
        if global_step < args.learning_starts:
            actions = envs.action_space.sample()  # a. random actions until learning_starts
        else:
            with torch.no_grad():  # b. a = clip(μ_φ(s) + ε, a_low, a_high), ε ~ N(0, σ_explore)
                mu = actor(torch.as_tensor(obs, dtype=torch.float32, device=device))
                actions = actor.clip(mu + torch.randn_like(mu) * args.exploration_noise * actor.action_scale).cpu().numpy()

        # c. execute a, observe s', r and the two end flags (terminated: d = 1; truncated: time limit)
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)

        # d. store (s, a, r, s', d) in D, with the real s' where the episode ended
        rb.add(obs, actions, rewards, real_next_obs(next_obs, infos), terminations, truncations)

        # e. s ← s' (for an ended episode, the first observation of the next one)
        obs = next_obs

        # f. total_steps ← total_steps + 1 (per environment)
        global_step = iteration * args.num_envs
        progress.update(args.num_envs)

        # g. learn once past learning_starts
        if global_step > args.learning_starts:
            if train_start is None:
                train_start = (time.time(), global_step)
            # g.1 sample a minibatch {(s_j, a_j, r_j, s'_j, d_j)} from D
            data = rb.sample(args.batch_size)

            # g.2 critic update: gradient step on L(θ1, θ2), target from the smoothed ã' and min_i Q_θ'i
            qf_loss, qf_values, y = critic_loss(data, actor_target, qf, qf_target, args.gamma,
                                                args.policy_noise, args.noise_clip)
            stop_if_not_finite("losses/qf_loss", qf_loss)
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()

            # g.3 delayed policy update: actor and targets once every d critic updates
            if iteration % args.policy_frequency == 0:
                pi_loss = actor_loss(data.obs, actor, qf, args.actor_min_q)
                stop_if_not_finite("losses/actor_loss", pi_loss)
                actor_optimizer.zero_grad()
                pi_loss.backward(inputs=actor_params)  # φ only: no critic gradients
                actor_optimizer.step()

                # g.4 soft target updates θ'i ← τθi + (1 − τ)θ'i, φ' ← τφ + (1 − τ)φ': one lerp op
                soft_update(qf_target_params, qf_params, args.tau)
                soft_update(actor_target_params, actor_params, args.tau)

            if iteration % 100 == 0:
                qf_losses = ((qf_values.detach() - y) ** 2).mean(1)  # E[(Q_θi(s, a) − y)²] per critic
                writer.add_scalar("losses/qf1_values", qf_values[0].mean().item(), global_step)
                writer.add_scalar("losses/qf2_values", qf_values[1].mean().item(), global_step)
                writer.add_scalar("losses/qf1_loss", qf_losses[0].item(), global_step)
                writer.add_scalar("losses/qf2_loss", qf_losses[1].item(), global_step)
                writer.add_scalar("losses/qf_loss", qf_loss.item() / qf.n, global_step)  # mean over critics
                writer.add_scalar("losses/actor_loss", pi_loss.item(), global_step)
                writer.add_scalar("charts/SPS", int((global_step - start_step) / (time.time() - start_time)), global_step)

        # h. an episode ended: the vector env has already reset it, so only log its return
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
        torch.save({"actor": actor.state_dict(), "actor_target": actor_target.state_dict(), "qf": qf.state_dict(),
                    "qf_target": qf_target.state_dict(), "args": vars(args)}, model_path)
        print(f"model saved to {model_path}")
        if not interrupted:
            returns = evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device,
                               f"videos/{run_name}" if args.capture_video else None)
            for episode, episodic_return in enumerate(returns):
                writer.add_scalar("eval/episodic_return", episodic_return, episode)
            print(f"eval/episodic_return: {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")
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
