"""Synchronous advantage actor-critic (A2C), for discrete and continuous actions, as in Mnih et al. (2016).

A2C collects a short rollout with the current policy π_θ, estimates advantages Â_t from n-step returns
and a learned value V_φ (GAE, λ = 1 by default), and takes ONE gradient step on −E[log π_θ(a|s) Â]
+ c_v ½E[(V_φ(s) − R)²] − c_e H[π_θ]: the data are used once, by the policy that collected them
([000 PART3 §2]: why A2C must stay on-policy). Defaults are SB3's A2C (5-step rollouts, RMSprop, lr 7e-4, λ 1)
with RL-Zoo's 8 environments for CartPole; SB3 weighs E[(V − R)²] without the ½ (--vf-coef 1.0 matches).
Read beside notes 002 (actor-critic, n-step targets, PPO, GAE; symbols θ, φ, Â, ρ, ε, λ).
A Discrete action space gets a categorical policy, a Box one a diagonal Gaussian with a state-independent
log std and observation and reward normalisation. The defaults in use are printed at start.
`diff a2c.py ppo.py` shows what PPO adds to A2C.

The run plumbing (flags shared by every script, logs, checkpoints, evaluation) is in plumbing.py.

Run:  python a2c.py --env-id CartPole-v1      python a2c.py --env-id Hopper-v4      (--help lists every flag)
"""
import collections
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

import plumbing

LOG_SQRT_2PI = 0.5 * float(np.log(2 * np.pi))


@dataclass
class Args(plumbing.RunArgs):
    env_id: str = "CartPole-v1"
    """the id of the environment (a Discrete or a Box action space, a flat Box observation space)"""
    total_timesteps: int = 500000
    """total environment steps, in whole rollouts [defaults: Discrete 500000, Box 1000000]"""
    learning_rate: float = 7e-4
    """the learning rate of the optimizer (RMSprop)"""
    num_envs: int = 8
    """number of parallel environments [defaults: Discrete 8, Box 4]"""
    num_steps: int = 5
    """T, steps per environment in each rollout: step t's return sums the rewards up to T (a (T − t)-step return), then V_φ(s_T)"""
    anneal_lr: bool = True
    """if toggled, the learning rate falls linearly to 0 over training"""
    gamma: float = 0.99
    """the discount factor γ"""
    gae_lambda: float = 1.0
    """λ of the generalised advantage estimate (1: the plain n-step return of A2C)"""
    norm_adv: bool = False
    """if toggled, normalise the advantages within each rollout"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus (SB3's default; the A2C paper used 0.01)"""
    vf_coef: float = 0.5
    """coefficient c_v of the value loss ½E[(V − R)²] (SB3's A2C weighs E[(V − R)²]: --vf-coef 1.0 matches its 0.5)"""
    max_grad_norm: float = 0.5
    """the maximum norm of the gradient (clipped above it)"""
    replay_lag: int = 0
    """K: learn from the rollout collected K iterations earlier instead of the fresh one, data of an older
    policy as a replay buffer would give ([000 PART3 §2], the lagging critic); 0 is A2C. No update until the
    first K rollouts are in; the queue is not checkpointed, so a resumed run refills it the same way"""
    truncation_bootstrap: bool = True
    """if toggled, bootstrap from V(s_final) where a time limit cut the episode; --no-truncation-bootstrap
    treats a truncation as a termination, as CleanRL's PPO does (for comparison only)"""
    normalize: bool = False
    """if toggled, normalise observations and rewards with running statistics [defaults: Discrete off, Box on]"""
    compile: bool = False
    """if toggled, compile the update into one graph with torch.compile: faster updates after a minute or so of compiling"""

    def check(self) -> None:
        """One clear line for a bad flag, before anything is built."""
        plumbing.check_flags(self, positive=("total_timesteps", "num_envs", "num_steps", "learning_rate", "max_grad_norm"),
                             non_negative=("replay_lag",), fractions=("gamma", "gae_lambda"))
        batch_size = self.num_envs * self.num_steps
        if self.total_timesteps < batch_size and self.eval_model is None:
            plumbing.fail(f"--total-timesteps ({self.total_timesteps}) is less than one rollout (--num-envs × --num-steps = {batch_size})")
        if self.norm_adv and batch_size < 2:
            plumbing.fail("--norm-adv needs rollouts of 2 or more steps (one step has no std); raise --num-steps, or --no-norm-adv")
        if self.total_timesteps % batch_size and self.eval_model is None:
            print(f"note: training runs whole rollouts of {batch_size} steps: {self.total_timesteps // batch_size * batch_size} "
                  f"of the {self.total_timesteps} steps of --total-timesteps")


# The defaults that depend on the action space (RL-Zoo's A2C settings for CartPole-v1 and for MuJoCo).
DEFAULTS = {
    "discrete": dict(total_timesteps=500000, num_envs=8, normalize=False),
    "continuous": dict(total_timesteps=1000000, num_envs=4, normalize=True),
}


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
            # a = argmax_b π_θ(b|s)/q_b, q_b ~ Exp(1): a drawn with probability π_θ(a|s), as torch.multinomial draws it
            return (dist.exp() / torch.empty_like(dist).exponential_()).argmax(-1)  # (without its host-side checks of π)
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
    return Rollout(*plumbing.to_device(rollout, device))


def real_final_obs(infos: dict) -> dict[int, np.ndarray]:
    """{env index: the real last observation} for the environments whose episode ended at this step: the
    vector env resets them within the same step (same-step autoreset), and its obs holds the reset observation."""
    if "_final_obs" not in infos:
        return {}
    return {int(i): infos["final_obs"][i] for i in np.flatnonzero(infos["_final_obs"])}


class Batch(NamedTuple):
    """The rollout flattened to T·N rows, with what the update needs."""
    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor  # log π_θ(a_t|s_t) of the policy that collected the rollout
    values: torch.Tensor  # V_φ(s_t) of the value function of that moment
    advantages: torch.Tensor  # Â_t
    returns: torch.Tensor  # R_t = Â_t + V_φ(s_t)


# ---------------------------------------------------------------------------------------------
# Advantages and losses (notes 002), as pure functions the tests import, and the update
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
    # Â_t = Σ_k (γλ)^k δ_{t+k} = (1 − λ) Σ_n λ^(n−1) Â_t^(n): the notes' λ-weighted sum of n-step advantages
    # [002 actor-critic method 6.2.3]
    for t in reversed(range(len(rewards))):
        last = deltas[t] + discounts[t] * last  # Â_t = δ_t + γλ Â_{t+1}, within the episode
        advantages[t] = last
    return advantages, advantages + values


def policy_loss(logprob, advantages):
    """The policy-gradient loss: its gradient is −E[∇_θ log π_θ(a|s) Â], the data being π_θ's own."""
    return -(logprob * advantages).mean()  # L^PG = −E[log π_θ(a|s) Â]  [002 actor-critic method 1.]


def value_loss(new_value, returns):
    """½ E[(V_φ(s) − R)²], R the n-step (GAE) return  [002 actor-critic method 2.4]."""
    return 0.5 * ((new_value - returns) ** 2).mean()


def update(data: Batch, agent: Agent, optimizer: torch.optim.Optimizer, args: Args) -> dict:
    """One gradient step of batch actor-critic on the whole rollout [002 actor-critic method 5.]: policy loss +
    value loss − entropy bonus. Returns the losses to log."""
    dist = agent.distribution(data.obs)
    new_logprob, entropy = agent.log_prob(dist, data.actions), agent.entropy(dist)  # new_logprob = data.logprobs: on-policy
    advantages = data.advantages
    if args.norm_adv:  # not in the notes: less the batch mean (a baseline), over the std (the step's scale whatever the rewards')
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = policy_loss(new_logprob, advantages)
    v_loss = value_loss(agent.get_value(data.obs), data.returns)
    entropy_loss = entropy.mean()
    loss = pg_loss - args.ent_coef * entropy_loss + args.vf_coef * v_loss  # L = L^PG + c_v L^V − c_e H
    plumbing.gradient_step(optimizer, loss, args.max_grad_norm)
    return {"losses/value_loss": v_loss.detach(), "losses/policy_loss": pg_loss.detach(),
            "losses/entropy": entropy_loss.detach(), "losses/explained_variance": 1 - (data.returns - data.values).var() / data.returns.var()}


@torch.no_grad()
def step_taken(data: Batch, agent: Agent) -> dict:
    """How far the step moved π: KL(π_θ ‖ π_θ') by k3 (the notes' penalty: KL(π_θ' ‖ π_θ)), and the ratios PPO would clip."""
    ratio = (agent.log_prob(agent.distribution(data.obs), data.actions) - data.logprobs).exp()  # ρ = π_θ'(a|s) / π_θ(a|s)
    return {"losses/approx_kl": (ratio - 1 - ratio.log()).mean(), "losses/clipfrac": ((ratio - 1).abs() > 0.2).float().mean()}


# ---------------------------------------------------------------------------------------------
# Training (notes 002)
# ---------------------------------------------------------------------------------------------
def train(args: Args, checkpoint: dict | None) -> None:
    batch_size = args.num_envs * args.num_steps
    num_iterations = args.total_timesteps // batch_size
    run = plumbing.Run(args, checkpoint, total_steps=num_iterations * batch_size)
    envs, device = run.envs, run.device

    obs_dim, space = envs.single_observation_space.shape[0], envs.single_action_space
    agent = Agent(obs_dim, space).to(device)
    optimizer = torch.optim.RMSprop(agent.parameters(), lr=args.learning_rate, alpha=0.99, eps=1e-5, foreach=True)
    normalizer = Normalizer(obs_dim, args.num_envs, args.gamma, enabled=args.normalize)
    storage = make_rollout(args.num_steps, args.num_envs, obs_dim, () if agent.discrete else space.shape)
    to_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32, device=device)  # noqa: E731
    # what a checkpoint holds (the normaliser's per-environment discounted returns restart at 0 on --resume,
    # as the environments do; its statistics are restored before it sees the first observation)
    next_obs = normalizer.obs(run.start(dict(agent=agent, optimizer=optimizer, normalizer=normalizer),
                                        policy(agent, normalizer, space, device)))
    lagged = collections.deque(maxlen=args.replay_lag + 1)  # --replay-lag: the last K + 1 rollouts
    learn = plumbing.compiled(update, (optimizer,)) if args.compile else update  # step 3 below

    # The notes draw this loop as a figure, batch actor-critic's [002 actor-critic method 5.] and PPO's
    # [002 actor-critic method 6.2.4]; its steps are numbered here. A resumed run goes on at the iteration
    # after its checkpoint's, numbered as in an unbroken run (the lr annealing).
    global_step = run.start_step  # 0, or the step of the checkpoint that a resumed run starts from
    for iteration in range(global_step // batch_size + 1, num_iterations + 1):
        if args.anneal_lr:  # lr falls linearly from --learning-rate to 0
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate

        # 1. collect a rollout of num_steps steps per environment with the current π_θ
        for step in range(args.num_steps):
            if run.interrupted:  # Ctrl-C or SIGTERM: stop inside the rollout (one can take seconds), dropping its part
                break
            with torch.inference_mode():
                action = agent.sample(agent.distribution(to_tensor(next_obs)))  # a_t ~ π_θ(·|s_t)
            env_action = action.cpu().numpy()
            storage.obs[step], storage.actions[step] = next_obs, env_action
            if not agent.discrete:  # the Gaussian's sample is stored as drawn; the env gets it clipped to its bounds
                env_action = np.clip(env_action, space.low, space.high)
            obs_raw, rewards, terminations, truncations, infos = envs.step(env_action)
            storage.rewards[step] = normalizer.reward(rewards, terminations | truncations)
            storage.terminations[step], storage.truncations[step] = terminations, truncations
            storage.final_values[step] = 0.0
            for i, final_obs in real_final_obs(infos).items():  # V_φ(s_final) where a time limit cut the episode
                if truncations[i] and not terminations[i] and args.truncation_bootstrap:
                    with torch.inference_mode():
                        storage.final_values[step, i] = agent.get_value(to_tensor(normalizer.obs(final_obs[None], update=False))).item()
            next_obs = normalizer.obs(obs_raw)
            global_step += args.num_envs  # the step count, all environments counted
            run.record(global_step, infos)  # the episodes that ended, already reset: log them
        if run.interrupted:
            break

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
        data = Batch(b_obs, b_actions, b_logprobs, *(to_tensor(x).reshape(-1) for x in (values[:-1], advantages, returns)))

        # 3. one gradient step on the whole rollout: policy loss + value loss − entropy bonus
        if args.replay_lag > 0:  # off-policy on purpose: Â_t, R_t of an older π, not corrected for  [000 PART3 §2]
            lagged.append(Batch(*(t.clone() for t in data)))
            data = lagged[0] if len(lagged) == lagged.maxlen else None  # none until a rollout K iterations old exists
        if data is not None:
            losses = learn(data, agent, optimizer, args)
            if iteration % 20 == 0:  # A2C's iterations are short (num_steps steps): log every 20th
                run.log(global_step, {**losses, **step_taken(data, agent), "charts/learning_rate": optimizer.param_groups[0]["lr"]})
        if run.end_iteration(global_step, batch_size):  # checkpoints; Ctrl-C stops here
            break

    run.finish({"agent": agent.state_dict(), "normalizer": normalizer.state_dict()})
    run.close()


def policy(agent: Agent, normalizer: Normalizer, space: gym.Space, device: torch.device):
    """The deterministic policy evaluated after training (the most probable action, or the mean μ_θ(s)
    clipped to the bounds), on observations normalised with the training statistics, frozen."""
    def act(obs: np.ndarray) -> np.ndarray:
        action = agent.deterministic_action(torch.as_tensor(normalizer.obs(obs[None], update=False), dtype=torch.float32, device=device))
        return action[0].cpu().numpy() if agent.discrete else np.clip(action[0].cpu().numpy(), space.low, space.high)
    return act


if __name__ == "__main__":
    args, checkpoint = plumbing.parse(Args, (gym.spaces.Discrete, gym.spaces.Box), DEFAULTS)
    if args.eval_model is None:
        train(args, checkpoint)
    else:  # rebuild the agent and normaliser of a saved run and evaluate them on that run's env
        saved, env = plumbing.load_model(args, ("agent", "normalizer"))
        agent = plumbing.load_weights(Agent(env.observation_space.shape[0], env.action_space), saved["agent"], args)
        normalizer = Normalizer(env.observation_space.shape[0], 1, args.gamma, enabled=False)
        normalizer.load_state_dict(saved["normalizer"])
        plumbing.evaluate_saved(args, env.spec.id, policy(agent, normalizer, env.action_space, plumbing.device(args)))
