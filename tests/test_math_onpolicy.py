"""The advantage and loss math of ppo.py and a2c.py, importing their own functions."""
import gymnasium as gym
import numpy as np
import pytest
import torch

import a2c
import ppo

ON_POLICY = [ppo, a2c]


def hand_made_rollout():
    """T = 6 steps of 2 envs. Env 0 terminates after step 1 and is cut by the time limit after step 4;
    env 1 runs through. Values are arbitrary; V(s_final) of env 0's truncated episode is 7."""
    rewards = np.array([[1.0, 0.5], [2.0, 0.5], [0.0, 0.5], [1.0, 0.5], [3.0, 0.5], [1.0, 0.5]], dtype=np.float32)
    values = np.array([[0.5, 1.0], [1.5, 2.0], [0.2, 3.0], [0.4, 4.0], [0.6, 5.0], [0.8, 6.0]], dtype=np.float32)
    terminations = np.zeros((6, 2), dtype=np.float32)
    truncations = np.zeros((6, 2), dtype=np.float32)
    final_values = np.zeros((6, 2), dtype=np.float32)
    terminations[1, 0] = 1.0
    truncations[4, 0], final_values[4, 0] = 1.0, 7.0
    next_value = np.array([0.9, 10.0], dtype=np.float32)  # V(s_T) after the rollout
    return rewards, values, next_value, terminations, truncations, final_values


def gae_by_definition(rewards, values, next_value, terminations, truncations, final_values, gamma, lam):
    """Â_t = Σ_k (γλ)^k δ_{t+k} over the rest of t's episode inside the rollout, with
    δ_t = r_t + γ V(s'_t) − V(s_t) and V(s'_t) = 0 after a termination, V(s_final) after a
    truncation, the next state's value otherwise (V(s_T) at the rollout's end)."""
    T, N = rewards.shape
    advantages = np.zeros((T, N))
    for i in range(N):
        def v_next(t):
            if terminations[t, i]:
                return 0.0
            if truncations[t, i]:
                return final_values[t, i]
            return values[t + 1, i] if t + 1 < T else next_value[i]

        for t in range(T):
            total, k = 0.0, 0
            while True:
                delta = rewards[t + k, i] + gamma * v_next(t + k) - values[t + k, i]
                total += (gamma * lam) ** k * delta
                if terminations[t + k, i] or truncations[t + k, i] or t + k == T - 1:
                    break
                k += 1
            advantages[t, i] = total
    return advantages


@pytest.mark.parametrize("module", ON_POLICY)
@pytest.mark.parametrize("gamma,lam", [(0.9, 0.8), (0.99, 1.0), (0.5, 0.0)])
def test_gae_matches_its_definition_across_a_termination_and_a_truncation(module, gamma, lam):
    rollout = hand_made_rollout()
    advantages, returns = module.gae(*rollout, gamma, lam)
    expected = gae_by_definition(*rollout, gamma, lam)
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns, expected + rollout[1], rtol=1e-5, atol=1e-5)  # R_t = Â_t + V(s_t)


def test_truncation_bootstraps_and_termination_does_not():
    rewards, values, next_value, terminations, truncations, final_values = hand_made_rollout()
    advantages, _ = ppo.gae(rewards, values, next_value, terminations, truncations, final_values, 0.9, 0.0)
    assert advantages[1, 0] == pytest.approx(2.0 - 1.5)  # terminated: δ = r − V(s)
    assert advantages[4, 0] == pytest.approx(3.0 + 0.9 * 7.0 - 0.6)  # truncated: δ = r + γ V(s_final) − V(s)
    # CleanRL's ppo.py treats the truncation as a termination, which drops the γ V(s_final) term:
    as_termination, _ = ppo.gae(rewards, values, next_value, np.maximum(terminations, truncations),
                                np.zeros((6, 2), dtype=np.float32), np.zeros((6, 2), dtype=np.float32), 0.9, 0.0)
    assert as_termination[4, 0] == pytest.approx(3.0 - 0.6)
    # and the advantage never reaches across an episode end into the next episode
    advantages, _ = ppo.gae(rewards, values, next_value, terminations, truncations, final_values, 0.9, 1.0)
    changed = rewards.copy()
    changed[2, 0] += 100.0  # a reward in env 0's second episode
    moved, _ = ppo.gae(changed, values, next_value, terminations, truncations, final_values, 0.9, 1.0)
    assert np.array_equal(moved[:2, 0], advantages[:2, 0]) and not np.array_equal(moved[2:, 0], advantages[2:, 0])


def test_clipped_objective_on_hand_picked_ratios():
    ratios = torch.tensor([1.0, 1.5, 0.5, 1.5, 0.5, 1.1])
    advantages = torch.tensor([2.0, 1.0, 1.0, -1.0, -1.0, -2.0])
    # min(ρ Â, clip(ρ, 0.8, 1.2) Â) for each:   2;  1.2 (clipped);  0.5;  −1.5;  −0.8 (clipped);  −2.2
    expected = torch.tensor([2.0, 1.2, 0.5, -1.5, -0.8, -2.2]).mean()
    loss, ratio = ppo.policy_loss(ratios.log(), torch.zeros(6), advantages, clip_coef=0.2)
    torch.testing.assert_close(loss, -expected)
    torch.testing.assert_close(ratio, ratios)


def test_ppo_gradient_at_ratio_one_is_the_a2c_policy_gradient():
    """Before PPO's first step, ρ = 1 and the clipped surrogate's gradient is the vanilla one A2C takes."""
    torch.manual_seed(0)
    agent = ppo.Agent(3, gym.spaces.Discrete(4))
    obs, advantages = torch.randn(32, 3), torch.randn(32)
    with torch.no_grad():
        dist = agent.distribution(obs)
        actions = agent.sample(dist)
        old_logprob = agent.log_prob(dist, actions)

    def grad(loss_fn):
        agent.zero_grad()
        logprob = agent.log_prob(agent.distribution(obs), actions)
        loss_fn(logprob).backward()
        return torch.cat([p.grad.flatten() for p in agent.actor.parameters()])

    g_ppo = grad(lambda logprob: ppo.policy_loss(logprob, old_logprob, advantages, 0.2)[0])
    g_a2c = grad(lambda logprob: a2c.policy_loss(logprob, advantages))
    torch.testing.assert_close(g_ppo, g_a2c)


def test_clipped_value_loss():
    new, old, returns = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.0])
    # clipped values: 1 + clip(1, −0.2, 0.2) = 1.2 and 0.5 + clip(−0.5, −0.2, 0.2) = 0.3
    # max((2)², (1.2)²) = 4 and max(0², 0.3²) = 0.09
    torch.testing.assert_close(ppo.value_loss(new, old, returns, 0.2, True), torch.tensor(0.5 * (4.0 + 0.09) / 2))
    torch.testing.assert_close(ppo.value_loss(new, old, returns, 0.2, False), torch.tensor(0.5 * 4.0 / 2))
    torch.testing.assert_close(a2c.value_loss(new, returns), torch.tensor(0.5 * 4.0 / 2))


@pytest.mark.parametrize("module", ON_POLICY)
def test_gaussian_log_prob_and_entropy_match_torch_distributions(module):
    """The scripts write log N(a; μ, σ²) and its entropy out by hand; torch.distributions is the reference."""
    torch.manual_seed(0)
    agent = module.Agent(5, gym.spaces.Box(-1.0, 1.0, (3,)))
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([[-0.5, 0.0, 0.7]]))
    obs = torch.randn(16, 5)
    dist = agent.distribution(obs)
    actions = agent.sample(dist)
    logprob, entropy = agent.log_prob(dist, actions), agent.entropy(dist)
    reference = torch.distributions.MultivariateNormal(agent.actor(obs), torch.diag(torch.tensor([-1.0, 0.0, 1.4]).exp()))
    torch.testing.assert_close(logprob, reference.log_prob(actions))
    torch.testing.assert_close(entropy, reference.entropy())


@pytest.mark.parametrize("module", ON_POLICY)
def test_categorical_log_prob_and_entropy_match_torch_distributions(module):
    torch.manual_seed(0)
    agent = module.Agent(5, gym.spaces.Discrete(4))
    obs = torch.randn(16, 5)
    dist = agent.distribution(obs)
    actions = agent.sample(dist)
    logprob, entropy = agent.log_prob(dist, actions), agent.entropy(dist)
    reference = torch.distributions.Categorical(logits=agent.actor(obs))
    torch.testing.assert_close(logprob, reference.log_prob(actions))
    torch.testing.assert_close(entropy, reference.entropy())
    assert agent.deterministic_action(obs).tolist() == reference.probs.argmax(-1).tolist()


@pytest.mark.parametrize("module", ON_POLICY)
def test_sampled_actions_follow_the_policy(module):
    """agent.sample draws from π_θ(·|s): over n = 40000 draws in one state, the action frequencies of
    the categorical and the mean and std of the Gaussian are within 5 standard errors of π_θ's own
    (a fixed seed; a wrong formula, e.g. σ² for σ or the logits for the probabilities, is far outside)."""
    torch.manual_seed(0)
    n = 40_000
    obs = torch.randn(1, 5).expand(n, 5)
    agent = module.Agent(5, gym.spaces.Discrete(3))
    with torch.no_grad():
        agent.actor[-1].weight.zero_()
        agent.actor[-1].bias.copy_(torch.tensor([0.0, 1.0, -1.5]))  # logits z, π = softmax(z) ≈ (0.25, 0.69, 0.06)
        dist = agent.distribution(obs)
        frequencies = torch.bincount(agent.sample(dist), minlength=3) / n
    probs = torch.tensor([0.0, 1.0, -1.5]).softmax(-1)
    assert ((frequencies - probs).abs() <= 5 * (probs * (1 - probs) / n).sqrt()).all(), (frequencies, probs)

    agent = module.Agent(5, gym.spaces.Box(-1.0, 1.0, (3,)))
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([[-1.0, 0.0, 0.7]]))
        dist = agent.distribution(obs)
        mean, std = dist[0][0], dist[1][0].exp()
        actions = agent.sample(dist)
    assert ((actions.mean(0) - mean).abs() <= 5 * std / n ** 0.5).all(), (actions.mean(0), mean)
    assert ((actions.std(0) / std - 1).abs() <= 5 / (2 * n) ** 0.5).all(), (actions.std(0), std)


@pytest.mark.parametrize("module", ON_POLICY)
def test_normalizer_statistics_and_their_round_trip(module):
    rng = np.random.default_rng(0)
    norm = module.Normalizer(obs_dim=3, num_envs=2, gamma=0.9, enabled=True)
    batches = [rng.normal(5.0, 2.0, (2, 3)) for _ in range(50)]
    for batch in batches:
        norm.obs(batch)
    seen = np.concatenate(batches)
    np.testing.assert_allclose(norm.obs_rms.mean, seen.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.obs_rms.var, seen.var(0), rtol=1e-3)
    # the discounted return behind the reward scale restarts where an episode ended
    norm.reward(np.array([1.0, 1.0]), np.array([False, True]))
    assert norm.returns.tolist() == [1.0, 0.0]
    # a saved and reloaded normaliser normalises exactly as the original, and without updating
    other = module.Normalizer(obs_dim=3, num_envs=1, gamma=0.9, enabled=False)
    other.load_state_dict(norm.state_dict())
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(other.obs(x, update=False), norm.obs(x, update=False))
    np.testing.assert_allclose(other.obs_rms.mean, norm.obs_rms.mean)
