"""Deep Deterministic Policy Gradient (DDPG) for continuous actions, as in Lillicrap et al. (2016).

DDPG learns a critic Q_θ(s, a) by regression on y = r + γ(1 − d) Q_θ'(s', μ_φ'(s')) and a deterministic
actor μ_φ(s) by the deterministic policy gradient through it, with soft-updated targets and Gaussian or
Ornstein–Uhlenbeck exploration noise. Defaults are td3.py's (CleanRL's) but --policy-frequency 1: the
paper updates the actor every step (CleanRL's DDPG every 2nd).
Read beside notes 001, DDPG and TD3 sections, in the TD3 section's symbols: actor μ_φ, critics Q_θ, targets
μ_φ', Q_θ' (the DDPG section's μ(s|θ^μ), Q(s, a|θ^Q)). Their pseudo-code has no step labels: the loop carries
notes 000 PART1's (a.–h., g.1–g.4), the same steps in the same order. `diff ddpg.py td3.py` shows TD3's changes.

The run plumbing (flags shared by every script, logs, checkpoints, evaluation) is in plumbing.py.

Run:  python ddpg.py --env-id Hopper-v4          (--help lists every flag)
"""
from dataclasses import dataclass
from typing import Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import plumbing


@dataclass
class Args(plumbing.RunArgs):
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
    noise_type: Literal["gaussian", "ou"] = "gaussian"
    """exploration noise: independent Gaussian, or the Ornstein–Uhlenbeck process of the DDPG paper"""
    ou_theta: float = 0.15
    """mean reversion θ of the Ornstein–Uhlenbeck noise (its σ is --exploration-noise)"""
    policy_frequency: int = 1
    """the delay d: the actor and the targets are updated once every d critic updates"""
    compile: bool = False
    """if toggled, compile the update into one graph with torch.compile: faster updates after a minute or so of compiling"""

    def check(self) -> None:
        """One clear line for a bad flag, before anything is built."""
        plumbing.check_flags(self, positive=("total_timesteps", "num_envs", "buffer_size", "batch_size", "policy_frequency", "learning_rate"),
                             non_negative=("learning_starts", "exploration_noise"),
                             fractions=("gamma", "tau", "ou_theta"))
        if self.tau == 0:
            plumbing.fail("--tau must be above 0 (got 0): the targets would never move")
        if self.learning_starts >= self.total_timesteps and self.eval_model is None:
            plumbing.fail(f"--learning-starts ({self.learning_starts}) must be below --total-timesteps ({self.total_timesteps})")
        if self.batch_size > self.buffer_size:
            plumbing.fail(f"--batch-size ({self.batch_size}) is larger than --buffer-size ({self.buffer_size})")


# ---------------------------------------------------------------------------------------------
# Networks: the actor μ_φ, the critic(s) Q_θ and their targets μ_φ', Q_θ' (notes 001)
# ---------------------------------------------------------------------------------------------
class QNetwork(nn.Module):
    """A critic Q_θ(s, a) = fc3(relu(fc2(relu(fc1([s; a]))))): a 256-256 MLP on the state and the action."""

    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim + act_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Returns [B]: Q_θ(s_j, a_j) for each row j."""
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(torch.cat([obs, actions], -1)))))).squeeze(-1)


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


class OUNoise:
    """The exploration process N_t of each env [001 初始化随机过程 N 用于动作探索], in half action ranges: the DDPG
    paper's Ornstein–Uhlenbeck process, reset at an episode's end. θ = 1: the Gaussian noise of --noise-type gaussian."""

    def __init__(self, shape: tuple[int, int], theta: float, sigma: float, device: torch.device):
        self.theta, self.sigma = theta, sigma
        self.x = torch.zeros(shape, device=device)

    def sample(self) -> torch.Tensor:
        self.x += self.theta * (0.0 - self.x) + self.sigma * torch.randn_like(self.x)  # x ← x + θ(0 − x) + σ·N(0, I)
        return self.x.clone()

    def reset(self, done: np.ndarray) -> None:
        self.x[torch.as_tensor(done, device=self.x.device)] = 0.0


# ---------------------------------------------------------------------------------------------
# Replay buffer D
# ---------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor  # d in the notes: the MDP ended, no bootstrap
    truncations: torch.Tensor  # a time limit cut the episode: y does not read it, it bootstraps there (s' is real)


class ReplayBuffer:
    """A ring buffer of preallocated numpy arrays; minibatches go to the training device when drawn (a numpy
    row write costs a microsecond, a torch one ten and more). Terminations and time-limit truncations are
    stored apart; next_obs is always the real s', never a reset observation."""

    def __init__(self, size: int, obs_dim: int, act_dim: int, device: torch.device):
        self.size, self.pos, self.full, self.device = size, 0, False, device
        self.obs = np.zeros((size, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((size, obs_dim), dtype=np.float32)
        self.actions = np.zeros((size, act_dim), dtype=np.float32)
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
        idx = torch.randint(0, self.size if self.full else self.pos, (batch_size,), device="cpu").numpy()  # on the host, where D is
        return Batch(*plumbing.to_device([store[idx] for store in (
            self.obs, self.actions, self.rewards, self.next_obs, self.terminations, self.truncations)], self.device))


# ---------------------------------------------------------------------------------------------
# Losses (notes 001, DDPG and TD3 sections), as pure functions the tests import, and the update
# ---------------------------------------------------------------------------------------------
def critic_loss(data: Batch, actor_target: Actor, qf: QNetwork, qf_target: QNetwork, gamma: float):
    """The critic loss [001 时序差分目标]. Returns L, the critics' current Q_θ(s, a) (a tuple: DDPG has one) and the target y."""
    with torch.no_grad():
        next_actions = actor_target(data.next_obs)  # a' = μ_φ'(s')
        next_q = qf_target(data.next_obs, next_actions)  # Q_θ'(s', a')
        # y = r + γ(1 − d) Q_θ'(s', μ_φ'(s')), d = termination only
        y = data.rewards + gamma * (1.0 - data.terminations) * next_q
    q = qf(data.obs, data.actions)  # Q_θ(s, a) with (s, a) from the buffer
    loss = ((q - y) ** 2).mean()  # L(θ) = E[(Q_θ(s, a) − y)²]
    return loss, (q,), y


def actor_loss(obs: torch.Tensor, actor: Actor, qf: QNetwork) -> torch.Tensor:
    """The actor loss J(φ); its gradient is the deterministic policy gradient [001 Silver et al.]."""
    actions = actor(obs)  # μ_φ(s): the gradient reaches φ through it
    q = qf(obs, actions)  # Q_θ(s, μ_φ(s)), the current critic
    return -q.mean()  # J(φ) = −E[Q_θ(s, μ_φ(s))]  [001 Actor网络更新]


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """θ' ← τθ + (1 − τ)θ' for every parameter, outside autograd (the targets never require grad)  [001 软更新机制]."""
    with torch.no_grad():  # θ' + τ(θ − θ') = τθ + (1 − τ)θ', every parameter in one fused call, in place
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


class Optimizers(NamedTuple):
    q: torch.optim.Optimizer  # the critics' θ
    actor: torch.optim.Optimizer  # φ


def update(data: Batch, actor: Actor, actor_target: Actor, qf: QNetwork, qf_target: QNetwork, opt: Optimizers,
           args: Args, update_actor: bool) -> dict:
    """Steps g.2–g.4 on one minibatch [000 PART1 g.]: the critic step; with `update_actor`, the actor step and the soft
    target updates. Returns the losses to log (the actor's only when it was updated)."""
    # g.2 critic update [000 PART1 g.2]: gradient step on L(θ)
    qf_loss, qf_values, y = critic_loss(data, actor_target, qf, qf_target, args.gamma)
    plumbing.gradient_step(opt.q, qf_loss)
    losses = {"losses/qf_loss": qf_loss.detach() / len(qf_values)}  # numbers to log: the mean over the critics,
    for i, q in enumerate((q.detach() for q in qf_values), 1):  # and each critic's mean Q_θi(s, a) and E[(Q_θi(s, a) − y)²]
        losses[f"losses/qf{i}_values"], losses[f"losses/qf{i}_loss"] = q.mean(), ((q - y) ** 2).mean()

    # g.3 policy update: actor and targets once every d critic updates  [000 PART1 g.3]
    if update_actor:
        pi_loss = actor_loss(data.obs, actor, qf)
        plumbing.gradient_step(opt.actor, pi_loss)  # φ only: no critic gradients
        losses["losses/actor_loss"] = pi_loss.detach()

        # g.4 soft target updates θ' ← τθ + (1 − τ)θ' (for each critic), φ' ← τφ + (1 − τ)φ'  [000 PART1 g.4]
        soft_update(qf_target, qf, args.tau)
        soft_update(actor_target, actor, args.tau)
    return losses


# ---------------------------------------------------------------------------------------------
# Training (notes 001 pseudo-code)
# ---------------------------------------------------------------------------------------------
def train(args: Args, checkpoint: dict | None) -> None:
    num_iterations = max(1, args.total_timesteps // args.num_envs)
    run = plumbing.Run(args, checkpoint, total_steps=num_iterations * args.num_envs, learning_starts=args.learning_starts)
    envs, device = run.envs, run.device

    # Initialisation (notes 001): μ_φ and the critic(s) Q_θ; their targets φ' ← φ, θ' ← θ; D
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    actor = Actor(obs_dim, act_dim, envs.single_action_space.low, envs.single_action_space.high).to(device)
    actor_target = Actor(obs_dim, act_dim, envs.single_action_space.low, envs.single_action_space.high).to(device)
    actor_target.load_state_dict(actor.state_dict())
    actor_target.requires_grad_(False)  # targets move only by the soft update
    qf = QNetwork(obs_dim, act_dim).to(device)
    qf_target = QNetwork(obs_dim, act_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    qf_target.requires_grad_(False)
    opt = Optimizers(torch.optim.Adam(qf.parameters(), lr=args.learning_rate, fused=True),
                     torch.optim.Adam(actor.parameters(), lr=args.learning_rate, fused=True))
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    noise = OUNoise((args.num_envs, act_dim), args.ou_theta if args.noise_type == "ou" else 1.0, args.exploration_noise, device)  # N
    # what a checkpoint holds: everything the algorithm has learned or stored
    obs = run.start(dict(actor=actor, actor_target=actor_target, qf=qf, qf_target=qf_target, q_optimizer=opt.q,
                         actor_optimizer=opt.actor, rb=rb), policy(actor, device))
    learn = plumbing.compiled(update, opt) if args.compile else update  # the notes' update steps g.2–g.4

    losses = {}  # the latest of each loss, logged every 100 iterations
    global_step = run.start_step  # total_steps: 0, or the step of the checkpoint that a resumed run starts from
    for iteration in range(global_step // args.num_envs + 1, num_iterations + 1):
        if global_step < args.learning_starts:
            actions = envs.action_space.sample()  # a. random actions until learning_starts  [000 PART1 a.]
        else:
            with torch.no_grad():  # b. [000 PART1 b.] a = clip(μ_φ(s) + N_t, a_low, a_high), N_t Gaussian or OU
                mu = actor(torch.as_tensor(obs, dtype=torch.float32, device=device))
                actions = actor.clip(mu + noise.sample() * actor.action_scale).cpu().numpy()

        # c. execute a, observe s', r and the two end flags (terminated: d = 1; truncated: time limit)  [000 PART1 c.]
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        noise.reset(terminations | truncations)  # a new episode starts a new random process N

        # d. store (s, a, r, s', d) in D  [000 PART1 d.]. The vector env resets an ended episode within the same
        #    step (same-step autoreset): next_obs is then the new episode's first s, and the real s' is in infos
        rb.add(obs, actions, rewards, plumbing.real_next_obs(next_obs, infos), terminations, truncations)

        # e. s ← s' (for an ended episode, the first observation of the next one)  [000 PART1 e.]
        obs = next_obs
        global_step = iteration * args.num_envs  # f. total_steps, all environments counted  [000 PART1 f.]
        run.record(global_step, infos)  # h. the episodes that ended, already reset: log them  [000 PART1 h.]

        # g. learn once past learning_starts: g.1 sample a minibatch from D, g.2–g.4 update  [000 PART1 g.]
        if global_step > args.learning_starts:
            data = rb.sample(args.batch_size)
            losses.update(learn(data, actor, actor_target, qf, qf_target, opt, args,  # the actor every d-th step
                                 iteration % args.policy_frequency == 0))  # [001 Delayed Policy Updates]
            if iteration % 100 == 0:
                run.log(global_step, losses)
        if run.end_iteration(global_step, args.num_envs):  # checkpoints; Ctrl-C stops here
            break

    run.finish({"actor": actor.state_dict(), "actor_target": actor_target.state_dict(), "qf": qf.state_dict(),
                "qf_target": qf_target.state_dict()})
    run.close()


def policy(actor: Actor, device: torch.device):
    """The deterministic policy evaluated after training: s ↦ μ_φ(s), without exploration noise."""
    return lambda obs: actor(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0].cpu().numpy()


if __name__ == "__main__":
    args, checkpoint = plumbing.parse(Args, (gym.spaces.Box,))
    if args.eval_model is None:
        train(args, checkpoint)
    else:  # rebuild the actor of a saved run and evaluate it on that run's env
        saved, env = plumbing.load_model(args, ("actor",))
        actor = Actor(env.observation_space.shape[0], env.action_space.shape[0], env.action_space.low, env.action_space.high)
        plumbing.evaluate_saved(args, env.spec.id, policy(plumbing.load_weights(actor, saved["actor"], args), plumbing.device(args)))
