"""Double DQN (DDQN) for discrete actions, as in van Hasselt et al. (2016).

DDQN is DQN with one change in the target: the online network picks the next action,
a* = argmax_a' Q(s', a'; θ), and the target network evaluates it, y = r + γ(1 − d) Q(s', a*; θ⁻).
Decoupling the choice from the evaluation reduces DQN's overestimation; this script logs by how
much Q still overestimates (charts/q_overestimation). Read beside notes 001 (DDQN section).
`diff dqn.py ddqn.py` shows that change and nothing else. Defaults are those of CleanRL's dqn.py.
The loop's steps carry the numbers of notes 001's DDQN pseudo-code (1–5); its DQN one has the same, unnumbered.

The run plumbing (flags shared by every script, logs, checkpoints, evaluation) is in plumbing.py.

Run:  python ddqn.py --env-id CartPole-v1          (--help lists every flag)
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
    """ε_decay, the factor of the exponential schedule (per environment step, all environments counted)"""
    learning_starts: int = 10000
    """steps before learning starts (the buffer fills under the ε schedule meanwhile)"""
    train_frequency: int = 10
    """one gradient step every this many steps (per environment): CleanRL's 10; the notes take one every step"""
    loss: Literal["mse", "huber"] = "mse"
    """the TD loss: mse (the notes, CleanRL) or huber (smooth L1, as in the Nature DQN and SB3)"""
    compile: bool = False
    """if toggled, compile the update into one graph with torch.compile: faster updates after a minute or so of compiling"""

    def check(self) -> None:
        """One clear line for a bad flag, before anything is built."""
        plumbing.check_flags(self, positive=("total_timesteps", "num_envs", "buffer_size", "batch_size", "target_network_frequency",
                                             "train_frequency", "exploration_fraction", "epsilon_decay", "learning_rate"),
                             non_negative=("learning_starts",), fractions=("gamma", "tau", "exploration_fraction", "epsilon_decay"))
        if self.tau == 0:
            plumbing.fail("--tau must be above 0 (got 0): the target network would never move")
        if self.learning_starts >= self.total_timesteps and self.eval_model is None:
            plumbing.fail(f"--learning-starts ({self.learning_starts}) must be below --total-timesteps ({self.total_timesteps})")
        if self.batch_size > self.buffer_size:
            plumbing.fail(f"--batch-size ({self.batch_size}) is larger than --buffer-size ({self.buffer_size})")
        if not 0.0 <= self.end_e <= self.start_e <= 1.0:
            plumbing.fail(f"need 0 <= --end-e <= --start-e <= 1 (got {self.end_e}, {self.start_e})")


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
# Replay buffer D, and the overestimation meter: E[max_a Q̂] ≥ max_a Q*, measured   [001 DQN的问题：Q值过高估计]
# ---------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor  # int64 action indices
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor  # d in the notes: the MDP ended, no bootstrap
    truncations: torch.Tensor  # a time limit cut the episode: y does not read it, it bootstraps there (s' is real)


class ReplayBuffer:
    """A ring buffer of preallocated numpy arrays; minibatches go to the training device when drawn (a numpy
    row write costs a microsecond, a torch one ten and more). Terminations and time-limit truncations are
    stored apart; next_obs is always the real s', never a reset observation."""

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
        return Batch(*plumbing.to_device([store[idx] for store in (
            self.obs, self.actions, self.rewards, self.next_obs, self.terminations, self.truncations)], self.device))


class OverestimationMeter:
    """Q(s_t, a_t; θ) against the discounted return G_t = Σ_k γ^k r_{t+k} actually obtained from
    (s_t, a_t): the mean over its steps for each episode, averaged over the episodes that ended since
    the last reading. Q is evaluated when read (every logging interval), by the network of that moment,
    in one batched pass: acting needs no forward pass while exploring, and short episodes no pass each.

    An episode cut by the time limit lacks the rewards after the cut, so its G_t is too low by up to
    γ^(T−t)·(the value at the cut). Only its steps with γ^(T−t) <= `tail` (1 %) count; a terminated
    episode has its whole return, and all its steps count."""

    def __init__(self, num_envs: int, gamma: float, q_network: nn.Module, device: torch.device, tail: float = 0.01):
        self.gamma, self.q_network, self.device, self.tail = gamma, q_network, device, tail
        self.episodes = [([], [], []) for _ in range(num_envs)]  # per env: states, actions, rewards so far
        self.counted = ([], [], [], [])  # s_t, a_t, G_t, 1 / (its episode's counted steps) of the steps counted since the last reading

    def step(self, obs, actions, rewards, terminations, truncations) -> None:
        """Records one vector step."""
        for i, (states, acts, rews) in enumerate(self.episodes):
            states.append(obs[i]), acts.append(int(actions[i])), rews.append(float(rewards[i]))
            if terminations[i] or truncations[i]:
                returns, g = np.empty(len(rews)), 0.0
                for t in reversed(range(len(rews))):
                    returns[t] = g = rews[t] + self.gamma * g  # G_t = r_t + γ G_{t+1}
                counted = len(rews)  # terminated: every step counts
                if not terminations[i]:  # truncated: the first steps, those with γ^(T−t) <= tail
                    counted = int(np.sum(self.gamma ** (len(rews) - np.arange(len(rews))) <= self.tail))
                for store, values in zip(self.counted, (states, acts, returns, [1.0 / max(counted, 1)] * counted)):
                    store.extend(values[:counted])
                self.episodes[i] = ([], [], [])

    def read(self) -> dict:
        """Mean Q(s_t, a_t; θ), mean G_t and their difference, each episode's mean averaged over the episodes ({} if none)."""
        states, acts, returns, weights = self.counted
        if not states:
            return {}
        with torch.no_grad():
            q = self.q_network(torch.as_tensor(np.array(states), dtype=torch.float32, device=self.device))
            q_taken = q.gather(1, torch.as_tensor(acts, device=self.device)[:, None]).squeeze(1).cpu().numpy()
        q_mean, g_mean = float(np.average(q_taken, weights=weights)), float(np.average(returns, weights=weights))
        self.counted = ([], [], [], [])
        return {"charts/q_overestimation": q_mean - g_mean, "charts/q_predicted": q_mean, "charts/discounted_return": g_mean}


# ---------------------------------------------------------------------------------------------
# The update (notes 001), as pure functions the tests import
# ---------------------------------------------------------------------------------------------
def epsilon(step: int, args: Args) -> float:
    """The exploration rate ε after `step` environment steps, all environments counted."""
    if args.epsilon_schedule == "exponential":
        return max(args.end_e, args.start_e * args.epsilon_decay ** step)  # ε ← max(ε_min, ε·ε_decay), every step  [001 DDQN算法流程 5.]
    duration = args.exploration_fraction * args.total_timesteps
    return max(args.end_e, args.start_e + (args.end_e - args.start_e) * step / duration)  # linear to ε_min


def td_target(data: Batch, q_network: QNetwork, target_network: QNetwork, gamma: float) -> torch.Tensor:
    """The DDQN target, held constant (no gradient): θ picks the next action, θ⁻ evaluates it  [001 DDQN算法流程 3.2]."""
    with torch.no_grad():
        next_actions = q_network(data.next_obs).argmax(1, keepdim=True)  # a* = argmax_a' Q(s', a'; θ)  [001 步骤1：动作选择]
        next_q = target_network(data.next_obs).gather(1, next_actions).squeeze(1)  # Q(s', a*; θ⁻)
        return data.rewards + gamma * (1.0 - data.terminations) * next_q  # y = r + γ(1 − d) Q(s', a*; θ⁻)


def td_loss(data: Batch, q_network: QNetwork, target_network: QNetwork, gamma: float, loss: str):
    """The TD loss [001 最终损失函数]. Returns L(θ), the current Q(s, a; θ) and the target y."""
    y = td_target(data, q_network, target_network, gamma)
    q = q_network(data.obs).gather(1, data.actions[:, None]).squeeze(1)  # Q(s, a; θ) with (s, a) from D
    if loss == "huber":
        return F.smooth_l1_loss(q, y), q, y  # L(θ) = E[huber(y − Q(s, a; θ))]
    return ((y - q) ** 2).mean(), q, y  # L(θ) = E[(y − Q(s, a; θ))²]


def update_target(target_network: QNetwork, q_network: QNetwork, tau: float) -> None:
    """θ⁻ ← θ, the notes' hard copy (τ = 1), or the soft update θ⁻ ← τθ + (1 − τ)θ⁻; outside autograd  [001 DDQN算法流程 3.6]."""
    with torch.no_grad():
        if tau == 1.0:
            target_network.load_state_dict(q_network.state_dict())  # θ⁻ ← θ
        else:  # θ⁻ + τ(θ − θ⁻) = τθ + (1 − τ)θ⁻, every parameter in one fused call, in place
            torch._foreach_lerp_(list(target_network.parameters()), list(q_network.parameters()), tau)


def update(data: Batch, q_network: QNetwork, target_network: QNetwork, optimizer: torch.optim.Optimizer, args: Args) -> dict:
    """Steps 3.2–3.4 on one minibatch [001 DDQN算法流程 3.]: a gradient step on L(θ), y held constant. Returns the losses to log."""
    loss, q_taken, y = td_loss(data, q_network, target_network, args.gamma, args.loss)
    plumbing.gradient_step(optimizer, loss)
    return {"losses/td_loss": loss.detach(), "losses/q_values": q_taken.detach().mean()}


# ---------------------------------------------------------------------------------------------
# Training (notes 001 DQN pseudo-code)
# ---------------------------------------------------------------------------------------------
def train(args: Args, checkpoint: dict | None) -> None:
    num_iterations = max(1, args.total_timesteps // args.num_envs)
    run = plumbing.Run(args, checkpoint, total_steps=num_iterations * args.num_envs, learning_starts=args.learning_starts)
    envs, device = run.envs, run.device

    # Initialisation: Q(θ) at random; target θ⁻ ← θ; D ← ∅; ε ← start_e   [001 完整DQN算法流程]
    obs_dim, n_actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    q_network = QNetwork(obs_dim, n_actions).to(device)
    target_network = QNetwork(obs_dim, n_actions).to(device)
    target_network.load_state_dict(q_network.state_dict())
    target_network.requires_grad_(False)  # θ⁻ moves only by the target update
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, fused=True)  # one kernel: 2x faster here
    rb = ReplayBuffer(args.buffer_size, obs_dim, device)
    meter = OverestimationMeter(args.num_envs, args.gamma, q_network, device)
    # what a checkpoint holds: everything the algorithm has learned or stored (the meter starts empty,
    # as the episodes do: those in progress at the checkpoint are lost)
    obs = run.start(dict(q_network=q_network, target_network=target_network, optimizer=optimizer, rb=rb), policy(q_network, device))
    learn = plumbing.compiled(update, (optimizer,)) if args.compile else update  # the notes' steps 3.2–3.4

    losses = {}  # the latest of each loss, logged every 100 iterations
    global_step = run.start_step  # 0, or the step of the checkpoint that a resumed run starts from
    for iteration in range(global_step // args.num_envs + 1, num_iterations + 1):
        # 1. ε-greedy: with probability ε a random action, otherwise a = argmax_a Q(s, a; θ)  [001 DDQN算法流程 1.]
        eps = epsilon(global_step, args)  # 5. ε decays with the step count: read here for this step  [001 DDQN算法流程 5.]
        explore = np.random.random(args.num_envs) < eps
        actions = envs.action_space.sample()
        if not explore.all():
            with torch.no_grad():
                greedy = q_network(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax(1)
            actions = np.where(explore, actions, greedy.cpu().numpy())

        # 2. execute a, observe s', r and the two end flags (terminated: d = 1; truncated: time limit)  [001 DDQN算法流程 2.]
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)

        # 2. store (s, a, r, s', d) in D. The vector env resets an ended episode within the same step (same-step
        #    autoreset): next_obs is then the new episode's first s, and the real s' is in infos
        rb.add(obs, actions, rewards, plumbing.real_next_obs(next_obs, infos), terminations, truncations)
        meter.step(obs, actions, rewards, terminations, truncations)  # the meter keeps s_t, a_t, G_t of ended episodes

        global_step = iteration * args.num_envs  # the step count, all environments counted
        run.record(global_step, infos)  # the episodes that ended, already reset: log them

        # 3. learn once past learning_starts, a gradient step every train_frequency steps (CleanRL's; the notes
        #    take one every step): 3.1 sample a minibatch from D, 3.2–3.4 update  [001 DDQN算法流程 3.]
        if global_step > args.learning_starts and iteration % args.train_frequency == 0:
            losses = learn(rb.sample(args.batch_size), q_network, target_network, optimizer, args)

        # 3.6 every C steps, update the target network: θ⁻ ← θ (or softly, θ⁻ ← τθ + (1 − τ)θ⁻)  [001 DDQN算法流程 3.6]
        if global_step > args.learning_starts and iteration % args.target_network_frequency == 0:
            update_target(target_network, q_network, args.tau)

        # 4. s ← s' (for an ended episode, the first observation of the next one)  [001 DDQN算法流程 4.]
        obs = next_obs

        if iteration % 100 == 0:  # the latest losses, and how far Q(s_t, a_t; θ) was above the G_t obtained
            run.log(global_step, {**losses, "charts/epsilon": eps, **meter.read()})
        if run.end_iteration(global_step, args.num_envs):  # checkpoints; Ctrl-C stops here
            break

    result = run.finish({"q_network": q_network.state_dict(), "target_network": target_network.state_dict()}, dict(trajectories=True))
    if result is not None:  # the greedy policy's Q(s_t, a_t; θ) − G_t over the evaluation episodes
        gap = overestimation(q_network, result[1], args.gamma, device)
        run.log(global_step, {"eval/q_overestimation": gap}, sps=False)
        print(f"eval/q_overestimation: Q(s,a) − G = {gap:+.2f} (greedy policy)")
    run.close()


def policy(q_network: QNetwork, device: torch.device):
    """The greedy policy evaluated after training: s ↦ argmax_a Q(s, a; θ)."""
    return lambda obs: int(q_network(torch.as_tensor(obs, dtype=torch.float32, device=device)[None]).argmax())


def overestimation(q_network: QNetwork, episodes: list, gamma: float, device: torch.device) -> float:
    """The mean over `episodes` of Q(s_t, a_t; θ) − G_t on their counted steps (see OverestimationMeter)."""
    meter = OverestimationMeter(1, gamma, q_network, device)
    for states, actions, rewards, terminated in episodes:
        for t in range(len(rewards)):
            end = t == len(rewards) - 1
            meter.step([states[t]], [actions[t]], [rewards[t]], [end and terminated], [end and not terminated])
    return meter.read().get("charts/q_overestimation", float("nan"))


if __name__ == "__main__":
    args, checkpoint = plumbing.parse(Args, (gym.spaces.Discrete,))
    if args.eval_model is None:
        train(args, checkpoint)
    else:  # rebuild the Q-network of a saved run and evaluate it on that run's env
        saved, env = plumbing.load_model(args, ("q_network",))
        q_network = plumbing.load_weights(QNetwork(env.observation_space.shape[0], int(env.action_space.n)), saved["q_network"], args)
        plumbing.evaluate_saved(args, env.spec.id, policy(q_network, plumbing.device(args)))
