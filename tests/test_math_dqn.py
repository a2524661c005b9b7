"""The update math of dqn.py and ddqn.py, importing their own functions."""
import numpy as np
import pytest
import torch

import ddqn
import dqn

# Q tables for three next states s'_j and two actions, chosen so that the online network θ and the
# target network θ⁻ disagree on the argmax in rows 0 and 2 (and agree in row 1).
ONLINE_NEXT = torch.tensor([[5.0, 1.0], [0.0, 2.0], [1.0, 3.0]])  # Q(s'_j, ·; θ)
TARGET_NEXT = torch.tensor([[2.0, 4.0], [1.0, 3.0], [6.0, 0.5]])  # Q(s'_j, ·; θ⁻)


class Table:
    """A stand-in network: a fixed Q table, the same for every batch row's state."""

    def __init__(self, table):
        self.table = table

    def __call__(self, obs):
        return self.table


def hand_made_batch(module):
    return module.Batch(obs=torch.zeros(3, 1), actions=torch.tensor([0, 1, 1]), rewards=torch.tensor([1.0, 2.0, 3.0]),
                        next_obs=torch.ones(3, 1), terminations=torch.tensor([0.0, 1.0, 0.0]),
                        truncations=torch.tensor([0.0, 0.0, 1.0]))


@pytest.mark.parametrize("module,next_value", [
    (dqn, [4.0, 3.0, 6.0]),  # max_a' Q(s', a'; θ⁻): the target network picks and evaluates
    (ddqn, [2.0, 3.0, 0.5]),  # Q(s', argmax_a' Q(s', a'; θ); θ⁻): θ picks (0, 1, 1), θ⁻ evaluates
])
def test_td_target_on_known_q_tables(module, next_value):
    gamma = 0.5
    y = module.td_target(hand_made_batch(module), Table(ONLINE_NEXT), Table(TARGET_NEXT), gamma)
    not_done = torch.tensor([1.0, 0.0, 1.0])  # row 1 terminated: y = r; row 2 truncated: still bootstraps
    torch.testing.assert_close(y, torch.tensor([1.0, 2.0, 3.0]) + gamma * not_done * torch.tensor(next_value))


def test_ddqn_target_is_never_above_dqn_target():
    """Q(s', a*; θ⁻) <= max_a' Q(s', a'; θ⁻) for any a*: the reason DDQN's targets are lower."""
    torch.manual_seed(0)
    data = dqn.Batch(torch.zeros(64, 1), torch.zeros(64, dtype=torch.int64), torch.randn(64), torch.zeros(64, 1),
                     torch.zeros(64), torch.zeros(64))
    online, target = Table(torch.randn(64, 4)), Table(torch.randn(64, 4))
    y_dqn, y_ddqn = dqn.td_target(data, online, target, 0.9), ddqn.td_target(data, online, target, 0.9)
    assert (y_ddqn <= y_dqn).all() and (y_ddqn < y_dqn).any()


@pytest.mark.parametrize("module", [dqn, ddqn])
@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_td_loss_reaches_theta_only_and_has_the_notes_form(module, loss):
    torch.manual_seed(0)
    q_network, target_network = module.QNetwork(3, 2), module.QNetwork(3, 2)
    target_network.requires_grad_(False)
    data = module.Batch(torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1]), torch.randn(5) * 3, torch.randn(5, 3),
                        torch.zeros(5), torch.zeros(5))
    value, q, y = module.td_loss(data, q_network, target_network, 0.99, loss)
    expected_q = q_network(data.obs)[torch.arange(5), data.actions]  # Q(s_j, a_j; θ)
    torch.testing.assert_close(q, expected_q)
    assert not y.requires_grad  # y is held constant
    delta = (y - q).detach().abs()
    expected = (delta ** 2).mean() if loss == "mse" else torch.where(delta < 1, 0.5 * delta ** 2, delta - 0.5).mean()
    torch.testing.assert_close(value.detach(), expected)
    value.backward()
    assert all(p.grad is not None for p in q_network.parameters())


def test_linear_epsilon_schedule_is_cleanrl_s():
    args = dqn.Args(total_timesteps=1000, exploration_fraction=0.5, start_e=1.0, end_e=0.05)
    assert dqn.epsilon(0, args) == 1.0
    assert dqn.epsilon(250, args) == pytest.approx(0.525)  # half way down the 500-step slope
    assert dqn.epsilon(500, args) == pytest.approx(0.05)
    assert dqn.epsilon(900, args) == pytest.approx(0.05)


def test_exponential_epsilon_schedule_is_the_notes():
    args = dqn.Args(epsilon_schedule="exponential", epsilon_decay=0.99, start_e=1.0, end_e=0.05)
    eps, expected = 1.0, []
    for _ in range(400):  # the notes' update, applied step by step
        expected.append(eps)
        eps = max(args.end_e, eps * args.epsilon_decay)
    np.testing.assert_allclose([dqn.epsilon(t, args) for t in range(400)], expected, rtol=1e-9)
    assert expected[-1] == 0.05


@pytest.mark.parametrize("module", [dqn, ddqn])
def test_hard_and_soft_target_updates(module):
    torch.manual_seed(0)
    online, target = module.QNetwork(4, 2), module.QNetwork(4, 2).requires_grad_(False)  # as in train()
    before = [p.clone() for p in target.parameters()]
    module.update_target(target, online, 0.1)  # soft: θ⁻ ← 0.1θ + 0.9θ⁻
    for p_target, p_before, p_online in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(p_target, 0.1 * p_online + 0.9 * p_before)
    module.update_target(target, online, 1.0)  # hard: θ⁻ ← θ, exactly
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters()))


class StateValues:
    """A stand-in network whose Q(s, ·) is the state itself: s = (Q(s, 0), Q(s, 1))."""

    def __call__(self, obs):
        return obs


def test_overestimation_meter_compares_q_with_the_discounted_return():
    meter = dqn.OverestimationMeter(num_envs=2, gamma=0.5, q_network=StateValues(), device=torch.device("cpu"))
    states = lambda t: np.array([[2.0, -1.0], [t, 10.0 + t]])  # noqa: E731  env 0: Q(s, 0) = 2; env 1: Q(s, 1) = 10 + t
    assert meter.read() == {}  # nothing ended yet
    # env 0 takes action 0 and terminates after 3 steps of reward 1: G = (1.75, 1.5, 1); env 1 runs on
    for t in range(3):
        meter.step(states(t), np.array([0, 1]), np.array([1.0, 0.0]), np.array([t == 2, False]), np.array([False, False]))
    read = meter.read()
    np.testing.assert_allclose([read["charts/q_predicted"], read["charts/discounted_return"]], [2.0, np.mean([1.75, 1.5, 1.0])])
    np.testing.assert_allclose(read["charts/q_overestimation"], 2.0 - np.mean([1.75, 1.5, 1.0]))
    assert meter.read() == {}  # a reading empties the meter
    # env 1, always action 1, is cut by the time limit after 10 steps: only t with 0.5^(10−t) <= 1 % count, t = 0..3;
    # env 0 terminates a second episode, 7 steps of reward 1, at the same step: the reading averages the two episodes' means
    for t in range(3, 10):
        meter.step(states(t), np.array([0, 1]), np.array([1.0, 1.0]), np.array([t == 9, False]), np.array([False, t == 9]))
    q_1, q_0 = np.mean([10.0, 11.0, 12.0, 13.0]), 2.0  # mean Q(s_t, a_t) of env 1's t = 0..3, of env 0's second episode
    g_1 = np.mean([sum(0.5 ** (k - t) * (k >= 3) for k in range(t, 10)) for t in range(4)])  # env 1: rewards 1 from t = 3 on
    g_0 = np.mean([2 * (1 - 0.5 ** (7 - t)) for t in range(7)])  # env 0: Σ_k 0.5^k over the 7 − t rewards left
    read = meter.read()
    np.testing.assert_allclose([read["charts/q_predicted"], read["charts/discounted_return"]], [(q_1 + q_0) / 2, (g_1 + g_0) / 2])
    np.testing.assert_allclose(read["charts/q_overestimation"], (q_1 + q_0) / 2 - (g_1 + g_0) / 2)
    # a truncated episode too short for any step to count adds nothing
    meter.step(states(0), np.array([0, 1]), np.array([1.0, 1.0]), np.array([False, False]), np.array([True, False]))
    assert meter.read() == {}
