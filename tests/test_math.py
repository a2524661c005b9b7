"""The update math of the continuous-control scripts, importing their own functions."""
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import plumbing
import sac_continuous
import sac_no_reparam
from conftest import CONTINUOUS, DISCRETE, OFF_POLICY

SAC = [sac_continuous, sac_no_reparam]


@pytest.mark.parametrize("sac", SAC)
def test_tanh_gaussian_log_prob_matches_torch_transformed_distribution(sac):
    torch.manual_seed(0)
    # float64, so that TanhTransform's numerical atanh(tanh(u)) recovers u up to |u| ≈ 6
    mean, log_std = torch.randn(256, 3, dtype=torch.float64), torch.rand(256, 3, dtype=torch.float64) * 3 - 2.5
    u = (mean + log_std.exp() * torch.randn(256, 3, dtype=torch.float64)).clamp(-6, 6)
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    expected = reference.log_prob(torch.tanh(u)).sum(-1)
    torch.testing.assert_close(sac.squashed_gaussian_log_prob(u, mean, log_std), expected, rtol=1e-9, atol=1e-8)
    # and in float32 it stays finite where tanh(u) rounds to exactly ±1 (the notes add ε for this)
    far = torch.tensor([[-30.0, 0.0, 30.0]])
    assert torch.isfinite(sac.squashed_gaussian_log_prob(far, torch.zeros(1, 3), torch.zeros(1, 3))).all()


class StubActor:
    """Returns fixed next actions and log-probs, and records the states it was asked about."""

    def __init__(self, actions, log_pi):
        self.actions, self.log_pi, self.calls = actions, log_pi, []

    def sample(self, obs):
        self.calls.append(obs.clone())
        return self.actions, self.log_pi


def hand_made_batch(sac):
    obs = torch.tensor([[0.0], [1.0], [2.0]])
    return sac.Batch(
        obs=obs, actions=torch.zeros(3, 1), rewards=torch.tensor([1.0, 2.0, 3.0]),
        next_obs=obs + 10, terminations=torch.tensor([0.0, 1.0, 0.0]), truncations=torch.tensor([0.0, 0.0, 1.0]),
    )


@pytest.mark.parametrize("sac", SAC)
def test_critic_target_is_the_notes_formula(sac):
    data = hand_made_batch(sac)
    actor = StubActor(actions=torch.zeros(3, 1), log_pi=torch.tensor([-2.0, -2.0, 1.0]))
    next_q = torch.tensor([[3.0, 4.0, -1.0], [5.0, 1.0, -2.0]])  # Q_φ'1(s', a'), Q_φ'2(s', a')
    qf_target = lambda s, a: next_q
    qf = lambda s, a: torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    alpha, gamma = torch.tensor(0.1), 0.5
    loss, q, y = sac.critic_loss(data, actor, qf, qf_target, alpha, gamma)
    # y = r + γ(1 − d)(min_i Q_φ'i(s', a') − α log π(a'|s'))
    expected = torch.tensor([1.0 + 0.5 * (3.0 + 0.2), 2.0, 3.0 + 0.5 * (-2.0 - 0.1)])
    torch.testing.assert_close(y, expected)  # row 2: d = 1 cuts the bootstrap; row 3: truncation does not
    torch.testing.assert_close(actor.calls[0], data.next_obs)  # a' drawn at s' from the current actor
    torch.testing.assert_close(loss, ((1.0 - expected) ** 2).mean() + (expected ** 2).mean())


def entropy_step(sac, log_pi_value, target_entropy=-1.0):
    log_alpha = torch.tensor(math.log(0.2), requires_grad=True)
    sac.alpha_loss(log_alpha, torch.full((256,), log_pi_value), target_entropy).backward()
    return log_alpha.grad.item()


@pytest.mark.parametrize("sac", SAC)
def test_alpha_loss_raises_alpha_below_target_entropy_and_lowers_it_above(sac):
    # entropy ≈ −log π: log π = 3 means entropy −3 < H_target = −1, so α must rise (negative gradient)
    assert entropy_step(sac, log_pi_value=3.0) < 0
    assert entropy_step(sac, log_pi_value=-3.0) > 0  # entropy 3 > −1: α must fall
    assert entropy_step(sac, log_pi_value=1.0) == pytest.approx(0.0, abs=1e-7)  # on target: α stays


def test_alpha_loss_does_not_reach_the_actor():
    actor = sac_continuous.Actor(3, 2, -np.ones(2), np.ones(2))
    _, log_pi = actor.sample(torch.randn(8, 3))
    log_alpha = torch.tensor(0.0, requires_grad=True)
    sac_continuous.alpha_loss(log_alpha, log_pi, -2.0).backward()
    assert all(p.grad is None for p in actor.parameters())


def test_reinforce_gradient_matches_the_reparameterised_gradient():
    """Notes 003: ∇θ E[α log π − Q] = E[∇θ log π · (α log π − Q − b)], whatever the action-independent b.

    Both estimators, averaged over 20k actions at each of 4 states, agree with each other within 5 %
    (relative L2 distance of the full actor gradient; measured ≈1.5 % with the baseline and ≈3 %
    without); dropping the α log π term from the bracket is off by ≈18 %, so the test can fail."""
    torch.manual_seed(0)
    actor = sac_continuous.Actor(3, 2, -2 * np.ones(2), 2 * np.ones(2))
    obs, samples = torch.randn(4, 3), 20_000
    c = torch.tensor([0.5, -1.0])

    def qf(s, a):  # a fixed, non-linear twin critic; min_i picks between the two
        q1 = -((a - c) ** 2).sum(-1) + s.sum(-1)
        return torch.stack([q1, q1 + torch.sin(3 * a[:, 0])])

    def grad(loss):
        actor.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in actor.parameters()])

    alpha = torch.tensor(0.2)
    reparam = grad(sac_continuous.actor_loss(obs.repeat(samples, 1), actor, qf, alpha)[0])
    k = 4
    for baseline in (True, False):
        score = grad(sac_no_reparam.actor_loss(obs.repeat(samples // k, 1), actor, qf, alpha, k, baseline)[0])
        assert (score - reparam).norm() / reparam.norm() < 0.05, baseline
    wrong = grad(sac_no_reparam.actor_loss(obs.repeat(samples // k, 1), actor, qf, torch.tensor(0.0), k, True)[0])
    assert (wrong - reparam).norm() / reparam.norm() > 0.1


def replay_buffer(name: str, size: int, obs_dim: int, act_dim: int):
    """The script's own buffer on the CPU (the discrete scripts' store one action index per step)."""
    module = __import__(name)
    if name in DISCRETE:
        return module.ReplayBuffer(size, obs_dim, torch.device("cpu"))
    return module.ReplayBuffer(size, obs_dim, act_dim, torch.device("cpu"))


@pytest.mark.parametrize("name", OFF_POLICY)
def test_buffer_keeps_terminated_and_truncated_apart(name):
    rb = replay_buffer(name, 8, obs_dim=2, act_dim=1)
    actions = np.zeros(3, dtype=np.int64) if name in DISCRETE else np.zeros((3, 1))
    rb.add(np.zeros((3, 2)), actions, np.zeros(3), np.ones((3, 2)),
           np.array([True, False, False]), np.array([False, True, False]))
    assert list(rb.terminations[:3]) == [1.0, 0.0, 0.0]
    assert list(rb.truncations[:3]) == [0.0, 1.0, 0.0]
    data = rb.sample(64)
    assert set(zip(data.terminations.tolist(), data.truncations.tolist())) == {(1.0, 0.0), (0.0, 1.0), (0.0, 0.0)}


# Pendulum and MountainCar (random actions) end by truncation, Hopper and CartPole by termination
TRANSITION_CASES = [(name, env_id, steps) for name in CONTINUOUS for env_id, steps in (("Pendulum-v1", 450), ("Hopper-v4", 300))] + \
                   [(name, env_id, steps) for name in DISCRETE for env_id, steps in (("MountainCar-v0", 450), ("CartPole-v1", 300))]


@pytest.mark.parametrize("name,env_id,steps", TRANSITION_CASES)
def test_vector_env_transitions_are_the_real_ones(name, env_id, steps):
    """Against single environments stepped by hand: every stored (s, s', terminated, truncated) is the
    real transition, the final observation of an episode is its s' (never the reset observation),
    and the reset observation starts the next transition. Pendulum ends by truncation (200 steps),
    Hopper with random actions by termination; CleanRL's gymnasium 0.29 loop breaks exactly here."""
    module = __import__(name)
    args = module.Args(env_id=env_id, num_envs=2, seed=3)
    envs = plumbing.make_envs(args, "test")
    refs = [gym.make(env_id) for _ in range(args.num_envs)]
    ref_obs = [ref.reset(seed=args.seed + i)[0] for i, ref in enumerate(refs)]
    obs, _ = envs.reset(seed=args.seed)
    rb = replay_buffer(name, steps * args.num_envs, envs.single_observation_space.shape[0],
                       envs.single_action_space.shape[0] if name in CONTINUOUS else 1)
    expected, ends = [], {"terminated": 0, "truncated": 0}
    for _ in range(steps):
        actions = envs.action_space.sample()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        rb.add(obs, actions, rewards, plumbing.real_next_obs(next_obs, infos), terminations, truncations)
        obs = next_obs
        for i, ref in enumerate(refs):
            s = ref_obs[i]
            s2, r, term, trunc, _ = ref.step(actions[i])
            expected.append((s, s2, r, term, trunc))
            ends["terminated"] += term
            ends["truncated"] += trunc
            ref_obs[i] = ref.reset()[0] if term or trunc else s2
    assert ends["terminated"] + ends["truncated"] >= 2 and (ends["terminated"] > 0) == (env_id in ("Hopper-v4", "CartPole-v1"))
    s, s2, r, term, trunc = (np.array(x, dtype=np.float32) for x in zip(*expected))
    np.testing.assert_allclose(np.asarray(rb.obs), s, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(rb.next_obs), s2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(rb.rewards), r, rtol=1e-6, atol=1e-6)
    assert (np.asarray(rb.terminations) == term).all() and (np.asarray(rb.truncations) == trunc).all()
    envs.close()


def test_td3_target_noise_stays_within_noise_clip():
    import td3

    torch.manual_seed(0)
    scale = torch.tensor([1.0, 2.0, 0.5])
    noise = td3.target_policy_noise(torch.zeros(100_000, 3), policy_noise=1.0, noise_clip=0.5, action_scale=scale)
    assert (noise.abs() <= 0.5 * scale + 1e-6).all()
    assert (noise.abs().amax(0) >= 0.5 * scale - 1e-6).all()  # σ = 1 ≫ c = 0.5: the clip really bites
    assert noise.std(0).gt(0.3 * scale).all()  # and it is noise, not a constant


class ConstantActor(torch.nn.Module):
    """μ(s) = 0.9 in every dimension, on actions bounded to [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("action_scale", torch.ones(1))
        self.register_buffer("action_bias", torch.zeros(1))

    def forward(self, obs):
        return torch.full((len(obs), 1), 0.9)

    def clip(self, actions):
        return actions.clamp(-1.0, 1.0)


def test_td3_critic_target_takes_the_min_and_cuts_at_termination():
    import td3

    data = hand_made_batch(td3)
    next_q = torch.tensor([[3.0, 4.0, -1.0], [5.0, 1.0, -2.0]])
    seen = []
    qf_target = lambda s, a: (seen.append(a), next_q)[1]
    qf = lambda s, a: torch.zeros(2, 3)
    _, _, y = td3.critic_loss(data, ConstantActor(), qf, qf_target, gamma=0.5, policy_noise=0.0, noise_clip=0.5)
    # y = r + γ(1 − d) min_i Q_θ'i(s', ã')
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.5 * 3.0, 2.0, 3.0 + 0.5 * -2.0]))
    # with σ large, the smoothed target action ã' = clip(μ'(s') + ε, −1, 1) stays in bounds and moves
    td3.critic_loss(data, ConstantActor(), qf, qf_target, gamma=0.5, policy_noise=5.0, noise_clip=0.5)
    assert seen[-1].abs().max() <= 1.0 and seen[-1].min() >= 0.4 and (seen[-1] != 0.9).any()


def test_ddpg_critic_target_uses_its_one_target_critic():
    import ddpg

    data = hand_made_batch(ddpg)
    qf_target = lambda s, a: torch.tensor([3.0, 4.0, -1.0]) + a[:, 0]  # Q'(s', μ'(s')) with μ'(s') = 0.9
    _, _, y = ddpg.critic_loss(data, ConstantActor(), lambda s, a: torch.zeros(3), qf_target, gamma=0.5)
    # y = r + γ(1 − d) Q'(s', μ'(s')): no min, no smoothing noise
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.5 * 3.9, 2.0, 3.0 + 0.5 * -0.1]))


class FixedTwins:
    """Twin critics with fixed values: Q_θ1 = 1 and Q_θ2 = −2 everywhere."""

    def q1(self, obs, actions):
        return torch.full((len(obs),), 1.0)

    def __call__(self, obs, actions):
        return self.q1(obs, actions), torch.full((len(obs),), -2.0)


@pytest.mark.parametrize("min_q,expected", [(False, -1.0), (True, 2.0)])
def test_td3_actor_on_q1_or_on_the_min(min_q, expected):
    import td3

    assert td3.actor_loss(torch.zeros(4, 1), ConstantActor(), FixedTwins(), min_q).item() == expected


def batched_reference(critics, obs, actions):
    """The critics as the scripts computed them before they became plain QNetworks: the n critics'
    weights stacked into [n, out, in] tensors, each layer one torch.baddbmm for all n. Returns [n, B]."""
    x = torch.cat([obs, actions], -1).expand(len(critics), -1, -1)
    for i, name in enumerate(("fc1", "fc2", "fc3")):
        w = torch.stack([getattr(c, name).weight for c in critics])
        b = torch.stack([getattr(c, name).bias for c in critics])[:, None]
        x = torch.baddbmm(b, x, w.transpose(1, 2))
        x = F.relu(x) if i < 2 else x
    return x.squeeze(-1)


@pytest.mark.parametrize("name", ["sac_continuous", "sac_no_reparam", "td3", "ddpg"])
def test_critics_compute_what_the_batched_form_computed(name):
    """Float64: the plain critics give the Q values, critic loss and gradients of the stacked-weight
    form they replaced (same weights), to rounding."""
    module = __import__(name)
    torch.manual_seed(0)
    qf = (module.QNetwork(5, 2) if name == "ddpg" else module.TwinQ(5, 2)).double()
    critics = [qf] if name == "ddpg" else [qf.q1, qf.q2]
    obs, actions, y = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, 2, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    new = torch.stack([c(obs, actions) for c in critics])
    old = batched_reference(critics, obs, actions)
    torch.testing.assert_close(new, old, rtol=1e-12, atol=1e-12)
    q = qf(obs, actions)
    loss_new = sum(((qi - y) ** 2).mean() for qi in (q if isinstance(q, tuple) else (q,)))
    grads_new = torch.autograd.grad(loss_new, list(qf.parameters()))
    grads_old = torch.autograd.grad(((old - y) ** 2).mean(1).sum(), list(qf.parameters()))  # the old loss's form
    for g_new, g_old in zip(grads_new, grads_old):
        torch.testing.assert_close(g_new, g_old, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", OFF_POLICY)
def test_target_update_leaves_no_autograd_graph(name):
    """The target update runs outside autograd: after it, and after another, the targets still do not
    require grad and carry no grad_fn. (Outside torch.no_grad, an update with parameters that require
    grad chained every step's targets to the previous step's: a graph that grew ~640 MB per 200k updates.)"""
    module = __import__(name)
    update = module.update_target if name in DISCRETE else module.soft_update
    torch.manual_seed(0)
    online, target = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3).requires_grad_(False)  # as train() builds them
    before = [p.clone() for p in target.parameters()]
    for _ in range(2):
        update(target, online, 0.1)
    for p, p0, q in zip(target.parameters(), before, online.parameters()):
        assert not p.requires_grad and p.grad_fn is None
        torch.testing.assert_close(p, 0.19 * q + 0.81 * p0)  # two steps of φ' ← 0.1φ + 0.9φ'
