"""Soft Actor-Critic (SAC) for continuous actions, with the score-function (REINFORCE) actor gradient.

The same algorithm as sac_continuous.py except for the actor gradient, which follows notes 003:
actions are sampled without a gradient path and θ follows
    ∇θ J ≈ E[∇θ log π_θ(a|s) · (α log π_θ(a|s) − min_i Q_φi(s, a) − b(s))],   a ~ π_θ(·|s),
the bracket held constant. b(s) is an action-independent baseline: by default the soft value of s
estimated from the other K−1 actions sampled at s (--no-baseline drops it, to test notes 003's claim
that the baseline matters). Read beside notes 003; everything else follows notes 000 as sac_continuous.py.
Notes 003 name the policy φ and the critic θ, the reverse of notes 000: this script keeps notes 000's
symbols, policy π_θ and critics Q_φi, so notes 003's ∇_φ J_π(φ) is ∇θ J here and its Q_θ is min_i Q_φi.
The run plumbing (flags shared by every script, logs, checkpoints, evaluation) is in plumbing.py.

Run:  python sac_no_reparam.py --env-id Hopper-v4          (--help lists every flag)
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

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
    learning_starts: int = int(5e3)
    """steps of uniformly random actions before learning starts (start_steps in notes 000)"""
    policy_lr: float = 3e-4
    """the learning rate of the policy network"""
    q_lr: float = 1e-3
    """the learning rate of the Q networks and of log α"""
    policy_frequency: int = 2
    """actor and α are updated every this many steps, this many times (delayed but same count)"""
    target_network_frequency: int = 1
    """the frequency of the soft target update (in vector steps)"""
    alpha: float = 0.2
    """entropy temperature α (the initial value when --autotune)"""
    autotune: bool = True
    """automatic tuning of α towards the target entropy −dim(A)"""
    actor_samples: int = 4
    """K: actions sampled per state for the score-function actor gradient"""
    baseline: bool = True
    """subtract b(s), the soft value estimated from the other K−1 samples (--no-baseline: b(s) = 0)"""
    compile: bool = False
    """if toggled, compile the update into one graph with torch.compile: faster updates after a minute or so of compiling"""

    def check(self) -> None:
        """One clear line for a bad flag, before anything is built."""
        plumbing.check_flags(self, positive=("total_timesteps", "num_envs", "buffer_size", "batch_size", "policy_frequency",
                                             "target_network_frequency", "policy_lr", "q_lr", "alpha"),
                             non_negative=("learning_starts",), fractions=("gamma", "tau"))
        if self.tau == 0:
            plumbing.fail("--tau must be above 0 (got 0): the targets would never move")
        if self.learning_starts >= self.total_timesteps and self.eval_model is None:
            plumbing.fail(f"--learning-starts ({self.learning_starts}) must be below --total-timesteps ({self.total_timesteps})")
        if self.batch_size > self.buffer_size:
            plumbing.fail(f"--batch-size ({self.batch_size}) is larger than --buffer-size ({self.buffer_size})")
        if self.baseline and self.actor_samples < 2:
            plumbing.fail(f"--baseline needs --actor-samples >= 2 (got {self.actor_samples}); or pass --no-baseline")


# ---------------------------------------------------------------------------------------------
# Networks: the 5 networks are the actor π_θ, the twin critics Q_φ1, Q_φ2 (one TwinQ) and their
# targets Q_φ'1, Q_φ'2 (a second TwinQ); plus the scalar log α   [000 PART2 §1]
# ---------------------------------------------------------------------------------------------
class QNetwork(nn.Module):
    """A critic Q_φ(s, a) = fc3(relu(fc2(relu(fc1([s; a]))))): a 256-256 MLP on the state and the action."""

    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim + act_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Returns [B]: Q_φ(s_j, a_j) for each row j."""
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(torch.cat([obs, actions], -1)))))).squeeze(-1)


class TwinQ(nn.Module):
    """The twin critics Q_φ1, Q_φ2: two QNetworks with weights of their own. Called, it returns both."""

    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.q1 = QNetwork(obs_dim, act_dim)
        self.q2 = QNetwork(obs_dim, act_dim)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(obs, actions), self.q2(obs, actions)


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def squashed_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log π(a|s) of a = tanh(u), u ~ N(μ, σ²), summed over action dimensions [001 Tanh变换的概率修正]:
    log π(a|s) = Σ_j [log N(u_j; μ_j, σ_j²) − log(1 − tanh²(u_j))], as notes 000's code has it [000 PART3 §3.4.1]."""
    log_normal = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    # 1 − tanh²(u) = 4/(eᵘ + e⁻ᵘ)² = 4e⁻²ᵘ/(1 + e⁻²ᵘ)², so log(1 − tanh²(u)) = 2(log 2 − u − softplus(−2u)):
    # the notes' quantity without their +ε, exact and finite even where tanh(u) rounds to ±1
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (log_normal - log_det).sum(-1)


class Actor(nn.Module):
    """π_θ(·|s): a Gaussian N(μ_θ(s), σ_θ(s)²) squashed by tanh, then scaled to the action bounds.

    log π is that of the squashed action in [-1, 1] (as in the notes); the fixed affine map to the
    environment's bounds has no parameters and is applied outside the distribution.
    """

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc_mean = nn.Linear(256, act_dim)
        self.fc_logstd = nn.Linear(256, act_dim)
        self.register_buffer("action_scale", torch.tensor((high - low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_bias", torch.tensor((high + low) / 2.0, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns μ_θ(s) and log σ_θ(s), the latter squashed smoothly into [LOG_STD_MIN, LOG_STD_MAX]."""
        h = F.relu(self.fc2(F.relu(self.fc1(obs))))
        log_std = torch.tanh(self.fc_logstd(h))
        return self.fc_mean(h), LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample: ã = tanh(μ_θ(s) + σ_θ(s)·ε), ε ~ N(0, I)  [000 PART3 §3.3.2].
        Returns the action in the environment's units and log π_θ(ã|s)."""
        mean, log_std = self(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u) * self.action_scale + self.action_bias, squashed_gaussian_log_prob(u, mean, log_std)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action tanh(μ_θ(s)), in the environment's units."""
        return torch.tanh(self(obs)[0]) * self.action_scale + self.action_bias


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
# Losses (notes 000 PART2), as pure functions the tests import, and the update that takes their steps
# ---------------------------------------------------------------------------------------------
def critic_loss(data: Batch, actor: Actor, qf: TwinQ, qf_target: TwinQ, alpha: torch.Tensor, gamma: float):
    """The critic loss [000 PART2 A]. Returns L(φ1, φ2), the current Q_φ1(s, a) and Q_φ2(s, a), and the target y."""
    with torch.no_grad():
        next_actions, next_log_pi = actor.sample(data.next_obs)  # a' ~ π_θ(·|s'): the *current* actor
        next_q = torch.min(*qf_target(data.next_obs, next_actions))  # min_i Q_φ'i(s', a')
        # y = r + γ(1 − d)(min_i Q_φ'i(s', a') − α log π_θ(a'|s')), d = termination only  [000 PART1 g.2.i]
        y = data.rewards + gamma * (1.0 - data.terminations) * (next_q - alpha * next_log_pi)
    q1, q2 = qf(data.obs, data.actions)  # Q_φ1(s, a), Q_φ2(s, a) with (s, a) from the buffer
    loss = ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean()  # L(φ1, φ2) = E[(Q_φ1(s,a) − y)² + (Q_φ2(s,a) − y)²]
    return loss, (q1, q2), y


def actor_loss(obs: torch.Tensor, actor: Actor, qf: TwinQ, alpha: torch.Tensor, num_samples: int, baseline: bool):
    """The actor loss by the score-function gradient [003 REINFORCE]. Returns a surrogate whose gradient is the estimator
    E[∇θ log π_θ(a|s) · (α log π_θ(a|s) − min_i Q_φi(s, a) − b(s))], and log π_θ(a|s) ([K, N])."""
    mean, log_std = actor(obs)
    with torch.no_grad():  # a ~ π_θ(·|s), K per state, with no gradient path through the sample
        u = mean + log_std.exp() * torch.randn((num_samples, *mean.shape), device=obs.device)
        actions = torch.tanh(u) * actor.action_scale + actor.action_bias
        q = torch.min(*qf(obs.expand(num_samples, -1, -1).flatten(0, 1), actions.flatten(0, 1))).view(num_samples, -1)
    log_pi = squashed_gaussian_log_prob(u, mean, log_std)  # log π_θ(a|s) at the fixed a: differentiable in θ
    # α times notes 003's bracket (log π − Q/α + 1), its +1 dropped: E_a[∇θ log π_θ(a|s)] = ∇θ Σ_a π_θ(a|s) = 0
    bracket = alpha * log_pi.detach() - q  # α log π_θ(a|s) − min_i Q_φi(s, a), held constant
    # b(s) = mean of the bracket over the other K−1 actions at s ≈ E_a[α log π − Q] = −V(s): it does
    # not depend on this sample's a, so it leaves the gradient unbiased and only cuts its variance.
    # (Notes 003 writes the baseline as −V/α with the other sign; any action-independent b is
    # unbiased, but only b ≈ E[bracket] reduces the variance.)
    b = (bracket.sum(0, keepdim=True) - bracket) / (num_samples - 1) if baseline else 0.0
    loss = (log_pi * (bracket - b)).mean()  # ∇θ loss = E[∇θ log π_θ(a|s) · (α log π_θ(a|s) − Q(s, a) − b(s))]
    return loss, log_pi


def alpha_loss(log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """L(α) = E[−α (log π_θ(ã|s) + H_target)], log π detached so only α moves  [000 PART2 C].
    Its gradient raises α when the entropy −log π is below H_target and lowers it above (PART2 C's
    bullets state this direction the other way round; the tests check the sign). PART1 g.3.iii writes
    −log α for −α [000 PART1 g.3.iii]: its gradient in log α has the same sign, 1/α times this one's."""
    return (-log_alpha.exp() * (log_pi.detach() + target_entropy)).mean()


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """φ' ← τφ + (1 − τ)φ' for every parameter, outside autograd (the targets never require grad)  [000 PART1 g.4]."""
    with torch.no_grad():  # φ' + τ(φ − φ') = τφ + (1 − τ)φ', every parameter in one fused call, in place
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


class Optimizers(NamedTuple):
    q: torch.optim.Optimizer  # φ1, φ2
    actor: torch.optim.Optimizer  # θ
    alpha: torch.optim.Optimizer | None  # log α (None without --autotune)


def update(data: Batch, actor: Actor, qf: TwinQ, qf_target: TwinQ, log_alpha: torch.Tensor, opt: Optimizers,
           target_entropy: float, args: Args, actor_updates: int, update_targets: bool) -> dict:
    """Steps g.2–g.4 on one minibatch [000 PART1 g.]: the critic step, `actor_updates` actor and α steps, and
    with `update_targets` the soft target update. Returns the losses to log (the actor's and α's only
    when they were updated)."""
    # g.2 critic update: gradient step on L(φ1, φ2)  [000 PART1 g.2]
    alpha = log_alpha.detach().exp()
    qf_loss, qf_values, y = critic_loss(data, actor, qf, qf_target, alpha, args.gamma)
    plumbing.gradient_step(opt.q, qf_loss)

    # g.3 actor and α updates  [000 PART1 g.3]. Every policy_frequency-th step, policy_frequency of them:
    #     not in notes 000, but CleanRL's SAC, which takes TD3's delay and keeps the number of updates the same
    losses = {}
    for _ in range(actor_updates):
        pi_loss, log_pi = actor_loss(data.obs, actor, qf, alpha, args.actor_samples, args.baseline)
        plumbing.gradient_step(opt.actor, pi_loss)  # θ only: no critic gradients
        if args.autotune:
            a_loss = alpha_loss(log_alpha, log_pi, target_entropy)
            plumbing.gradient_step(opt.alpha, a_loss)
            alpha = log_alpha.detach().exp()
        losses = {"losses/actor_loss": pi_loss.detach(), "losses/alpha": alpha, **({"losses/alpha_loss": a_loss.detach()} if args.autotune else {})}

    # g.4 soft target update φ'i ← τ φi + (1 − τ) φ'i  [000 PART1 g.4]
    if update_targets:
        soft_update(qf_target, qf, args.tau)
    q1, q2 = (q.detach() for q in qf_values)  # numbers to log, without their graph
    return {"losses/qf1_values": q1.mean(), "losses/qf2_values": q2.mean(), "losses/qf1_loss": ((q1 - y) ** 2).mean(),
            "losses/qf2_loss": ((q2 - y) ** 2).mean(), "losses/qf_loss": qf_loss.detach() / 2.0, **losses}


# ---------------------------------------------------------------------------------------------
# Training (notes 000 PART1)
# ---------------------------------------------------------------------------------------------
def train(args: Args, checkpoint: dict | None) -> None:
    num_iterations = max(1, args.total_timesteps // args.num_envs)
    run = plumbing.Run(args, checkpoint, total_steps=num_iterations * args.num_envs, learning_starts=args.learning_starts)
    envs, device = run.envs, run.device

    # Initialisation: π_θ; Q_φ1, Q_φ2; targets φ'i ← φi; D; log α; H_target = −dim(A)  [000 初始化阶段]
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    actor = Actor(obs_dim, act_dim, envs.single_action_space.low, envs.single_action_space.high).to(device)
    qf = TwinQ(obs_dim, act_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    qf_target.requires_grad_(False)  # targets move only by the soft update
    log_alpha = torch.tensor(math.log(args.alpha), device=device, requires_grad=args.autotune)
    opt = Optimizers(torch.optim.Adam(qf.parameters(), lr=args.q_lr, fused=True),
                     torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True),
                     torch.optim.Adam([log_alpha], lr=args.q_lr, fused=True) if args.autotune else None)
    target_entropy = -float(act_dim)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    # what a checkpoint holds: everything the algorithm has learned or stored
    obs = run.start(dict(actor=actor, qf=qf, qf_target=qf_target, log_alpha=log_alpha, q_optimizer=opt.q,
                         actor_optimizer=opt.actor, a_optimizer=opt.alpha, rb=rb), policy(actor, device))
    learn = plumbing.compiled(update, opt) if args.compile else update  # the notes' update steps g.2–g.4

    losses = {}  # the latest of each loss, logged every 100 iterations
    global_step = run.start_step  # total_steps: 0, or the step of the checkpoint that a resumed run starts from
    for iteration in range(global_step // args.num_envs + 1, num_iterations + 1):
        if global_step < args.learning_starts:
            actions = envs.action_space.sample()  # a. random actions until learning_starts  [000 PART1 a.]
        else:
            with torch.no_grad():  # b. a ~ π_θ(·|s)  [000 PART1 b.]
                actions = actor.sample(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy()

        # c. execute a, observe s', r and the two end flags (terminated: d = 1; truncated: time limit)  [000 PART1 c.]
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)

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
            losses.update(learn(data, actor, qf, qf_target, log_alpha, opt, target_entropy, args,
                                 actor_updates=args.policy_frequency if iteration % args.policy_frequency == 0 else 0,
                                 update_targets=iteration % args.target_network_frequency == 0))
            if iteration % 100 == 0:
                run.log(global_step, losses)
        if run.end_iteration(global_step, args.num_envs):  # checkpoints; Ctrl-C stops here
            break

    run.finish({"actor": actor.state_dict(), "qf": qf.state_dict(), "qf_target": qf_target.state_dict(),
                "log_alpha": log_alpha.detach()})
    run.close()


def policy(actor: Actor, device: torch.device):
    """The deterministic policy evaluated after training: s ↦ tanh(μ_θ(s)) in the environment's units."""
    return lambda obs: actor.deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0].cpu().numpy()


if __name__ == "__main__":
    args, checkpoint = plumbing.parse(Args, (gym.spaces.Box,))
    if args.eval_model is None:
        train(args, checkpoint)
    else:  # rebuild the actor of a saved run and evaluate it on that run's env
        saved, env = plumbing.load_model(args, ("actor",))
        actor = Actor(env.observation_space.shape[0], env.action_space.shape[0], env.action_space.low, env.action_space.high)
        plumbing.evaluate_saved(args, env.spec.id, policy(plumbing.load_weights(actor, saved["actor"], args), plumbing.device(args)))
