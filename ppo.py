"""Proximal Policy Optimization (PPO) with a clipped surrogate objective, for discrete and continuous actions.

PPO collects a rollout of num_steps steps from num_envs environments with the current policy π_θ,
estimates advantages with GAE(λ) and a learned value V_φ, and then takes several epochs of minibatch
gradient steps on the clipped surrogate min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â), ρ = π_θ'(a|s) / π_θ(a|s),
which keeps the new policy near the one that collected the data. Read beside notes 002 (actor-critic,
PPO, GAE; symbols θ, φ, ρ, Â, ε, λ). `diff a2c.py ppo.py` shows what PPO adds to A2C.
A Discrete action space gets a categorical policy and CleanRL's ppo.py defaults; a Box action space a
diagonal Gaussian with a state-independent log std, observation and reward normalisation, and CleanRL's
ppo_continuous_action.py defaults. The defaults in use are printed at start.

Run:  python ppo.py --env-id CartPole-v1      python ppo.py --env-id Hopper-v4      (--help lists every flag)
"""
import glob
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
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

SCRIPT = os.path.basename(__file__)
LOG_SQRT_2PI = 0.5 * float(np.log(2 * np.pi))
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
    """if toggled, save the weights (and normalisation statistics) to runs/{run_name}/ and evaluate the deterministic policy"""
    eval_episodes: int = 10
    """number of episodes of the deterministic policy evaluated after training with --save-model"""
    eval_model: Optional[str] = None
    """skip training: load weights written by --save-model from this path and evaluate them"""

    env_id: str = "CartPole-v1"
    """the id of the environment (a Discrete or a Box action space, a flat Box observation space)"""
    total_timesteps: Optional[int] = None
    """total environment steps [unset: 500000 discrete, 1000000 continuous]"""
    learning_rate: Optional[float] = None
    """the learning rate of the optimizer [unset: 2.5e-4 discrete, 3e-4 continuous]"""
    num_envs: Optional[int] = None
    """number of parallel environments [unset: 4 discrete, 1 continuous]"""
    num_steps: Optional[int] = None
    """steps per environment in each rollout [unset: 128 discrete, 2048 continuous]"""
    anneal_lr: bool = True
    """if toggled, the learning rate falls linearly to 0 over training"""
    gamma: float = 0.99
    """the discount factor γ"""
    gae_lambda: float = 0.95
    """λ of the generalised advantage estimate"""
    num_minibatches: Optional[int] = None
    """number of minibatches per epoch [unset: 4 discrete, 32 continuous]"""
    update_epochs: Optional[int] = None
    """epochs of minibatch updates per rollout [unset: 4 discrete, 10 continuous]"""
    norm_adv: bool = True
    """if toggled, normalise the advantages within each minibatch"""
    clip_coef: float = 0.2
    """ε, the clipping range of the probability ratio ρ"""
    clip_vloss: bool = True
    """if toggled, clip the value loss as the PPO implementations do"""
    ent_coef: Optional[float] = None
    """coefficient of the entropy bonus [unset: 0.01 discrete, 0.0 continuous]"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """the maximum norm of the gradient (clipped above it)"""
    truncation_bootstrap: bool = True
    """if toggled, bootstrap from V(s_final) where a time limit cut the episode; --no-truncation-bootstrap
    treats a truncation as a termination, as CleanRL's PPO does (for comparison only)"""
    normalize: Optional[bool] = None
    """if toggled, normalise observations and rewards with running statistics [unset: off discrete, on continuous]"""


# The defaults that depend on the action space: CleanRL's ppo.py (Discrete) and ppo_continuous_action.py (Box).
DEFAULTS = {
    "discrete": dict(total_timesteps=500000, learning_rate=2.5e-4, num_envs=4, num_steps=128, num_minibatches=4,
                     update_epochs=4, ent_coef=0.01, normalize=False),
    "continuous": dict(total_timesteps=1000000, learning_rate=3e-4, num_envs=1, num_steps=2048, num_minibatches=32,
                       update_epochs=10, ent_coef=0.0, normalize=True),
}


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
    if not isinstance(space, (gym.spaces.Discrete, gym.spaces.Box)) or (isinstance(space, gym.spaces.Box) and len(space.shape) != 1):
        sys.exit(f"error: {args.exp_name}.py needs a Discrete or a flat Box action space; {args.env_id} has {space}")
    if not isinstance(envs.single_observation_space, gym.spaces.Box) or len(envs.single_observation_space.shape) != 1:
        sys.exit(f"error: {args.exp_name}.py needs a flat Box observation space; {args.env_id} has {envs.single_observation_space}")
    envs.action_space.seed(args.seed)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def resolve_defaults(args: Args) -> str:
    """Fills the flags left unset with the defaults of the environment's action-space type; returns a
    line saying which."""
    try:
        probe = gym.make(args.env_id)
    except gym.error.Error as e:
        sys.exit(f"error: --env-id {args.env_id!r} cannot be made: {e}")
    kind = "discrete" if isinstance(probe.action_space, gym.spaces.Discrete) else "continuous"
    probe.close()
    filled = []
    for flag, value in DEFAULTS[kind].items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)
            filled.append(f"--{flag.replace('_', '-')} {value}")
    return f"{args.env_id}: {kind} action space; defaults used: {', '.join(filled) or 'none (all set on the command line)'}"


def check_args(args: Args) -> None:
    """One clear line for a bad flag, before anything is built (unset flags, None, are skipped)."""
    for flag in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs", "eval_episodes", "video_frequency"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            sys.exit(f"error: --{flag.replace('_', '-')} must be positive (got {getattr(args, flag)})")
    for flag in ("learning_rate", "clip_coef", "max_grad_norm"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            sys.exit(f"error: --{flag.replace('_', '-')} must be positive (got {getattr(args, flag)})")
    if not 0.0 <= args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        sys.exit(f"error: need 0 <= --gamma <= 1 and 0 <= --gae-lambda <= 1 (got {args.gamma}, {args.gae_lambda})")
    if args.checkpoint_frequency < 0:
        sys.exit(f"error: --checkpoint-frequency must be >= 0 (got {args.checkpoint_frequency})")
    if None not in (args.num_envs, args.num_steps, args.num_minibatches):
        batch_size = args.num_envs * args.num_steps
        if batch_size % args.num_minibatches != 0:
            sys.exit(f"error: --num-minibatches ({args.num_minibatches}) must divide the batch "
                     f"--num-envs × --num-steps ({args.num_envs} × {args.num_steps} = {batch_size})")
    if None not in (args.num_envs, args.num_steps, args.total_timesteps) and args.total_timesteps < args.num_envs * args.num_steps and args.eval_model is None:
        sys.exit(f"error: --total-timesteps ({args.total_timesteps}) is less than one rollout "
                 f"(--num-envs × --num-steps = {args.num_envs * args.num_steps})")


# ---------------------------------------------------------------------------------------------
# Running statistics for observation and reward normalisation (saved with the model)
# ---------------------------------------------------------------------------------------------
class RunningMeanStd:
    """Mean and variance of everything seen so far, merged batch by batch (Chan et al.'s parallel update)."""

    def __init__(self, shape: tuple = ()):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4

    def update(self, x: np.ndarray) -> None:
        batch_mean, batch_var, batch_count = x.mean(0), x.var(0), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        self.var = (self.var * self.count + batch_var * batch_count + delta ** 2 * self.count * batch_count / total) / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = np.asarray(state["mean"]), np.asarray(state["var"]), state["count"]


class Normalizer:
    """Observations: (s − mean) / std, clipped to ±10. Rewards: r / std(discounted return), clipped to
    ±10, as gymnasium's NormalizeObservation / NormalizeReward wrappers do, but kept in the script so that
    the statistics are saved with the model and an evaluation sees the observations the policy was trained on."""

    def __init__(self, obs_dim: int, num_envs: int, gamma: float, enabled: bool, clip: float = 10.0, eps: float = 1e-8):
        self.obs_rms, self.return_rms = RunningMeanStd((obs_dim,)), RunningMeanStd()
        self.returns = np.zeros(num_envs)
        self.gamma, self.enabled, self.clip, self.eps = gamma, enabled, clip, eps

    def obs(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        if not self.enabled:
            return obs
        if update:
            self.obs_rms.update(obs)
        return np.clip((obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.eps), -self.clip, self.clip)

    def reward(self, rewards: np.ndarray, ends: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return rewards
        self.returns = self.returns * self.gamma + rewards  # discounted return so far in each env's episode
        self.return_rms.update(self.returns)
        self.returns[ends] = 0.0
        return np.clip(rewards / np.sqrt(self.return_rms.var + self.eps), -self.clip, self.clip)

    def state_dict(self) -> dict:
        return {"enabled": self.enabled, "obs_rms": self.obs_rms.state_dict(), "return_rms": self.return_rms.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.enabled = state["enabled"]
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.return_rms.load_state_dict(state["return_rms"])


# ---------------------------------------------------------------------------------------------
# Networks: the policy π_θ(a|s) and the value V_φ(s), two 64-64 tanh MLPs (CleanRL's)
# ---------------------------------------------------------------------------------------------
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    """Orthogonal weights with gain `std`, constant bias: the initialisation of the PPO implementations."""
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """π_θ(·|s): categorical over the logits for a Discrete space, N(μ_θ(s), diag σ_θ²) with a
    state-independent log σ_θ for a Box space; V_φ(s): the critic. Sampling, log π_θ(a|s) and the
    entropy are written out, one formula a line, rather than taken from torch.distributions, which
    costs more tensor ops per step; the tests check them against torch.distributions."""

    def __init__(self, obs_dim: int, action_space: gym.Space):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        out_dim = int(action_space.n) if self.discrete else action_space.shape[0]
        self.critic = nn.Sequential(layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
                                    layer_init(nn.Linear(64, 1), std=1.0))
        self.actor = nn.Sequential(layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
                                   layer_init(nn.Linear(64, out_dim), std=0.01))
        if not self.discrete:
            self.actor_logstd = nn.Parameter(torch.zeros(1, out_dim))

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        """V_φ(s), shape [B]."""
        return self.critic(obs).squeeze(-1)

    def distribution(self, obs: torch.Tensor):
        """π_θ(·|s), as the tensors the methods below take: log π_θ(·|s) over the actions, [B, |A|]
        (Discrete), or the pair (μ_θ(s), log σ_θ), each [B, action dim] (Box)."""
        if self.discrete:
            return self.actor(obs).log_softmax(-1)  # log π_θ(a|s) = z_a − log Σ_b exp(z_b), z = the logits
        mean = self.actor(obs)
        return mean, self.actor_logstd.expand_as(mean)

    def sample(self, dist) -> torch.Tensor:
        """a ~ π_θ(·|s)."""
        if self.discrete:
            return torch.multinomial(dist.exp(), 1).squeeze(-1)  # a drawn with probability π_θ(a|s)
        mean, log_std = dist
        return torch.normal(mean, log_std.exp())  # a = μ + σ ε, ε ~ N(0, I)

    def log_prob(self, dist, actions: torch.Tensor) -> torch.Tensor:
        """log π_θ(a|s): for the Gaussian, the sum over the independent action dimensions."""
        if self.discrete:
            return dist.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        mean, log_std = dist
        return (-0.5 * ((actions - mean) / log_std.exp()) ** 2 - log_std - LOG_SQRT_2PI).sum(-1)  # Σ_i log N(a_i; μ_i, σ_i²)

    def entropy(self, dist) -> torch.Tensor:
        """H[π_θ(·|s)]: for the Gaussian, the sum over the action dimensions."""
        if self.discrete:
            return -(dist.exp() * dist).sum(-1)  # −Σ_a π(a|s) log π(a|s)
        _, log_std = dist
        return (0.5 + LOG_SQRT_2PI + log_std).sum(-1)  # Σ_i ½ log(2πe σ_i²)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action: argmax of the logits, or the mean μ_θ(s)."""
        return self.actor(obs).argmax(-1) if self.discrete else self.actor(obs)


# ---------------------------------------------------------------------------------------------
# Rollout storage
# ---------------------------------------------------------------------------------------------
class Rollout(NamedTuple):
    obs: np.ndarray  # [T, N, obs_dim] (normalised when --normalize)
    actions: np.ndarray  # [T, N] or [T, N, act_dim]
    rewards: np.ndarray  # r_t (normalised when --normalize)
    terminations: np.ndarray  # the MDP ended after a_t: no bootstrap
    truncations: np.ndarray  # a time limit cut the episode after a_t: bootstrap from the real final state
    final_values: np.ndarray  # V_φ(s_final) of that real final state where truncated (and not terminated), else 0


def make_rollout(num_steps: int, num_envs: int, obs_dim: int, action_shape: tuple) -> Rollout:
    """Preallocated numpy storage for one rollout. The environments hand out numpy arrays step by
    step; the rollout goes to the training device in one piece, once it is complete (`to_device`).
    log π_θ(a_t|s_t) and V_φ(s_t) are not stored: they are evaluated after the rollout, in one pass."""
    zeros = lambda *shape: np.zeros((num_steps, num_envs, *shape), dtype=np.float32)  # noqa: E731
    return Rollout(zeros(obs_dim), zeros(*action_shape), zeros(), zeros(), zeros(), zeros())


def to_device(rollout: Rollout, device: torch.device) -> Rollout:
    """The same rollout as tensors on `device`."""
    return Rollout(*(torch.as_tensor(x, device=device) for x in rollout))


def real_final_obs(infos: dict) -> dict[int, np.ndarray]:
    """{env index: the real last observation} for the environments whose episode ended at this step
    (the vector env has already returned the reset observation in their place)."""
    if "_final_obs" not in infos:
        return {}
    return {int(i): infos["final_obs"][i] for i in np.flatnonzero(infos["_final_obs"])}



# ---------------------------------------------------------------------------------------------
# Advantages and losses (notes 002), as pure functions the tests import
# ---------------------------------------------------------------------------------------------
def gae(rewards, values, next_value, terminations, truncations, final_values, gamma: float, gae_lambda: float):
    """GAE(λ) over a rollout [T, N], returned with the value targets R_t = Â_t + V_φ(s_t).

    V(s'_t), the value of the real state after a_t, is V_φ(s_{t+1}) inside an episode, V_φ(s_final)
    where a time limit cut the episode (the state is real, the future was cut off, not ended), and 0
    where the MDP terminated. The recursion stops at every episode end, so no advantage reaches
    across into the next episode. Numpy arrays on the CPU, as the rollout is stored: the recursion
    runs T small steps, each far cheaper in numpy than as torch ops (or GPU kernels)."""
    ends = np.maximum(terminations, truncations)
    next_values = np.concatenate([values[1:], next_value[None]])  # V_φ(s_{t+1}); after an end, the reset state's (unused)
    v_next = (1.0 - ends) * next_values + truncations * (1.0 - terminations) * final_values  # V(s'_t)
    deltas = rewards + gamma * v_next - values  # δ_t = r_t + γ V(s'_t) − V_φ(s_t)
    discounts = gamma * gae_lambda * (1.0 - ends)  # γλ inside an episode, 0 across its end
    advantages = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])  # Â_T = 0: nothing after the rollout's last step
    for t in reversed(range(len(rewards))):
        last = deltas[t] + discounts[t] * last  # Â_t = δ_t + γλ Â_{t+1}, within the episode
        advantages[t] = last
    return advantages, advantages + values


def policy_loss(new_logprob, old_logprob, advantages, clip_coef: float):
    """The clipped surrogate, negated for gradient descent. Returns the loss and the ratio ρ."""
    ratio = (new_logprob - old_logprob).exp()  # ρ = π_θ'(a|s) / π_θ(a|s)
    # L^CLIP = E[min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â)]
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip_coef, 1 + clip_coef) * advantages).mean(), ratio


def value_loss(new_value, old_value, returns, clip_coef: float, clip_vloss: bool):
    """½ E[(V_φ'(s) − R)²], or its clipped form (the larger of the plain and the clipped error)."""
    if not clip_vloss:
        return 0.5 * ((new_value - returns) ** 2).mean()
    clipped = old_value + (new_value - old_value).clamp(-clip_coef, clip_coef)
    return 0.5 * torch.max((new_value - returns) ** 2, (clipped - returns) ** 2).mean()


def evaluate(agent: Agent, normalizer: Normalizer, env_id: str, episodes: int, seed: int, device: torch.device,
             video_folder: Optional[str] = None) -> list[float]:
    """Returns of the deterministic policy over `episodes` fresh episodes, the observations normalised
    with the training statistics, frozen; with a video folder, the first episode is recorded."""
    env = gym.make(env_id, render_mode="rgb_array" if video_folder else None)
    if video_folder is not None:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0, name_prefix="eval")
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, episodic_return = False, 0.0
        while not done:
            with torch.no_grad():
                x = torch.as_tensor(normalizer.obs(obs[None], update=False), dtype=torch.float32, device=device)
                action = agent.deterministic_action(x)[0].cpu().numpy()
            if not agent.discrete:
                action = np.clip(action, env.action_space.low, env.action_space.high)
            obs, reward, terminated, truncated, _ = env.step(action)
            episodic_return += float(reward)
            done = terminated or truncated
        returns.append(episodic_return)
    env.close()
    return returns


def load_and_evaluate(args: Args, device: torch.device) -> None:
    """--eval-model: rebuild the agent and normaliser of a saved run and evaluate them on that run's env."""
    try:
        saved = torch.load(args.eval_model, map_location=device, weights_only=True)
        env_id, agent_state, normalizer_state = saved["args"]["env_id"], saved["agent"], saved["normalizer"]
        env = gym.make(env_id)
        agent = Agent(env.observation_space.shape[0], env.action_space)
        agent.load_state_dict(agent_state)
        normalizer = Normalizer(env.observation_space.shape[0], 1, args.gamma, enabled=False)
        normalizer.load_state_dict(normalizer_state)
    except (OSError, RuntimeError, KeyError, TypeError) as e:  # missing, truncated, or another script's model
        sys.exit(f"error: --eval-model {args.eval_model!r} is not a model saved by {SCRIPT}: {str(e).strip().splitlines()[0]}")
    video_folder = f"videos/{os.path.basename(os.path.dirname(os.path.abspath(args.eval_model)))}-eval" if args.capture_video else None
    returns = evaluate(agent.to(device), normalizer, env_id, args.eval_episodes, args.seed, device, video_folder)
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
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size

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

    obs_dim = envs.single_observation_space.shape[0]
    space = envs.single_action_space
    agent = Agent(obs_dim, space).to(device)
    params = list(agent.parameters())
    optimizer = torch.optim.Adam(params, lr=args.learning_rate, eps=1e-5, fused=True)
    normalizer = Normalizer(obs_dim, args.num_envs, args.gamma, enabled=args.normalize)
    storage = make_rollout(args.num_steps, args.num_envs, obs_dim, () if agent.discrete else space.shape)
    to_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32, device=device)  # noqa: E731

    # a new run starts its environments with --seed; a resumed one restarts them at the checkpoint's
    # step (their internal state is not in the checkpoint, so the normaliser's per-environment discounted
    # returns restart at 0) and restores everything else, the normaliser's statistics before it sees obs_raw
    obs_raw, _ = envs.reset(seed=args.seed + global_step)
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        normalizer.load_state_dict(checkpoint["normalizer"])
        set_rng_state(checkpoint["rng"], envs)
        print(f"resuming {run_name} at step {global_step} (with the flags it was started with)")
    next_obs = normalizer.obs(obs_raw)

    def save_checkpoint() -> str:
        """Everything needed to continue with --resume, written atomically: a crash during the save
        leaves the previous checkpoint whole."""
        path = f"runs/{run_name}/checkpoint.pt"
        writer.flush()  # the log reaches this step on disk before a checkpoint says it does
        with open(path + ".tmp", "wb") as f:
            torch.save({"script": SCRIPT, "args": vars(args), "run_name": run_name, "wandb_id": wandb_id,
                        "global_step": global_step, "agent": agent.state_dict(), "optimizer": optimizer.state_dict(),
                        "normalizer": normalizer.state_dict(), "rng": rng_state(envs)}, f)
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

    progress = tqdm(total=num_iterations * batch_size, initial=global_step, unit="step", dynamic_ncols=True, mininterval=1.0)
    start_time, interrupted = time.time(), False
    videos_uploaded = set(glob.glob(f"videos/{run_name}/*.mp4"))  # a resumed run uploaded these already
    def on_ctrl_c(signum, frame):  # finish the current iteration, then flush, save and exit; a 2nd Ctrl-C kills
        nonlocal interrupted
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_ctrl_c)
    # a resumed run goes on at the iteration after its checkpoint's, numbered as in an unbroken run (the lr annealing)
    for iteration in range(global_step // batch_size + 1, num_iterations + 1):
        if args.anneal_lr:  # lr falls linearly from --learning-rate to 0
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate

        # 1. collect a rollout of num_steps steps per environment with the current π_θ
        for step in range(args.num_steps):
            with torch.inference_mode():
                action = agent.sample(agent.distribution(to_tensor(next_obs)))  # a_t ~ π_θ(·|s_t)
            env_action = action.cpu().numpy()
            storage.obs[step], storage.actions[step] = next_obs, env_action
            if not agent.discrete:  # the Gaussian's sample is stored as drawn; the env gets it clipped to its bounds
                env_action = np.clip(env_action, space.low, space.high)
            obs_raw, rewards, terminations, truncations, infos = envs.step(env_action)
            ends = terminations | truncations
            storage.rewards[step] = normalizer.reward(rewards, ends)
            storage.terminations[step], storage.truncations[step] = terminations, truncations
            storage.final_values[step] = 0.0
            for i, final_obs in real_final_obs(infos).items():  # V_φ(s_final) where a time limit cut the episode
                if truncations[i] and not terminations[i] and args.truncation_bootstrap:
                    with torch.inference_mode():
                        storage.final_values[step, i] = agent.get_value(to_tensor(normalizer.obs(final_obs[None], update=False))).item()
            next_obs = normalizer.obs(obs_raw)
            global_step += args.num_envs
            progress.update(args.num_envs)
            if "_episode" in infos:
                for i in np.flatnonzero(infos["_episode"]):
                    writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                    writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)
                    progress.set_postfix(episodic_return=f"{infos['episode']['r'][i]:.1f}", refresh=False)
                if wandb_run is not None and args.capture_video:
                    upload_videos(wandb_run, f"videos/{run_name}", videos_uploaded)

        # 2. log π_θ(a_t|s_t) and V_φ(s_t) of the π_θ and V_φ that collected the rollout (unchanged while it ran),
        #    in one pass over all its steps; advantages Â_t by GAE(λ) and value targets R_t, bootstrapped from V_φ(s_T)
        rollout = to_device(storage, device)
        b_obs = rollout.obs.reshape(batch_size, obs_dim)
        b_actions = rollout.actions.reshape(batch_size, *rollout.actions.shape[2:])
        with torch.no_grad():
            b_logprobs = agent.log_prob(agent.distribution(b_obs), b_actions)
            values = agent.get_value(torch.cat([rollout.obs, to_tensor(next_obs)[None]])).cpu().numpy()  # V_φ(s_0..s_T): [T + 1, N]
        # GAE in numpy, on the rollout as stored (see gae); its results go to the device
        advantages, returns = gae(storage.rewards, values[:-1], values[-1], storage.terminations, storage.truncations,
                                  storage.final_values, args.gamma, args.gae_lambda)
        b_values, b_advantages, b_returns = (to_tensor(x).reshape(-1) for x in (values[:-1], advantages, returns))

        # 3. several epochs of minibatch gradient steps on the clipped objective
        clipfracs = []
        for epoch in range(args.update_epochs):
            order = torch.randperm(batch_size, device=device)
            for start in range(0, batch_size, minibatch_size):
                mb = order[start:start + minibatch_size]
                dist = agent.distribution(b_obs[mb])
                new_logprob, entropy = agent.log_prob(dist, b_actions[mb]), agent.entropy(dist)
                mb_advantages = b_advantages[mb]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss, ratio = policy_loss(new_logprob, b_logprobs[mb], mb_advantages, args.clip_coef)
                v_loss = value_loss(agent.get_value(b_obs[mb]), b_values[mb], b_returns[mb], args.clip_coef, args.clip_vloss)
                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + args.vf_coef * v_loss  # L = −L^CLIP + c_v L^V − c_e H
                stop_if_not_finite("losses/loss", loss)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, args.max_grad_norm, foreach=True)
                optimizer.step()
                with torch.no_grad():
                    log_ratio = new_logprob - b_logprobs[mb]
                    approx_kl = ((ratio - 1) - log_ratio).mean()  # KL(π_θ ‖ π_θ') estimate, k3 of Schulman
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())

        explained_var = 1 - (b_returns - b_values).var() / b_returns.var()
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", torch.stack(clipfracs).mean().item(), global_step)
        writer.add_scalar("losses/explained_variance", explained_var.item(), global_step)
        writer.add_scalar("charts/SPS", int((global_step - start_step) / (time.time() - start_time)), global_step)

        if args.checkpoint_frequency > 0 and global_step % args.checkpoint_frequency < batch_size:
            save_checkpoint()
        if interrupted:  # Ctrl-C: stop between two iterations, with every structure consistent
            tqdm.write(f"interrupted at step {global_step}: flushing logs" + (" and saving the model" if args.save_model else ""))
            if args.checkpoint_frequency > 0:
                tqdm.write(f"checkpoint saved to {save_checkpoint()} (continue with --resume)")
            break
    progress.close()
    envs.close()

    print(f"training-phase SPS: {(global_step - start_step) / (time.time() - start_time):.1f} (every step trains)")
    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.pt"
        torch.save({"agent": agent.state_dict(), "normalizer": normalizer.state_dict(), "args": vars(args)}, model_path)
        print(f"model saved to {model_path}")
        if not interrupted:
            returns = evaluate(agent, normalizer, args.env_id, args.eval_episodes, args.seed + 10_000, device,
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
    if args.resume is not None:  # the run continues with the flags it was started with, already resolved
        checkpoint = load_checkpoint(args.resume)
        args = Args(**{**checkpoint["args"], "resume": args.resume})
    elif args.eval_model is None:
        print(resolve_defaults(args))
    check_args(args)
    if args.eval_model is not None:
        load_and_evaluate(args, torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu"))
    else:
        train(args, checkpoint)
