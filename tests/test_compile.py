"""--compile: the update compiled into one graph computes what the eager update computes, and waits for no GPU.

On the CPU in float64 by default. benchmarks/gpu_check.sh runs it on a GPU in float32 (TEST_DEVICE=cuda TEST_DTYPE=float32),
where the compiled kernels round otherwise than eager's: there they agree to TOLERANCE["float32"]."""
import copy
import os
from typing import NamedTuple

import numpy as np
import pytest
import torch

import plumbing
from test_device import HostSyncs

OBS, ACT, BATCH, UPDATES = 5, 2, 64, 6
DEVICE, DTYPE = torch.device(os.environ.get("TEST_DEVICE", "cpu")), getattr(torch, os.environ.get("TEST_DTYPE", "float64"))
# rtol of everything; atol of the losses, of the weights, of the second moments (small squares). In float32 a weight whose
# gradient is near zero can take an Adam step (up to lr, 1e-3 here) of another size: atol a tenth of one such step
TOLERANCE = {torch.float64: (1e-10, 1e-10, 1e-10, 1e-14), torch.float32: (1e-4, 1e-5, 1e-4, 1e-9)}


class OneOptimizer(NamedTuple):  # DQN's one optimizer, named as the actor-critics' critic optimizer
    q: torch.optim.Optimizer


def minibatches(module, n: int) -> list:
    g = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=DTYPE)  # noqa: E731
    if module.__name__ == "a2c":  # a rollout of BATCH steps, ACT discrete actions
        batches = [module.Batch(rand(BATCH, OBS), torch.randint(ACT, (BATCH,), generator=g).to(DTYPE), rand(BATCH) - 1, rand(BATCH),
                                rand(BATCH), rand(BATCH)) for _ in range(n)]
    elif module.__name__ == "ppo":  # a minibatch of BATCH steps, ACT-dimensional Box actions
        batches = [module.Batch(rand(BATCH, OBS), rand(BATCH, ACT), rand(BATCH) - 2, rand(BATCH), rand(BATCH), rand(BATCH))
                   for _ in range(n)]
    else:
        if module.__name__ in ("dqn", "ddqn"):  # ACT discrete actions
            actions = lambda: torch.randint(ACT, (BATCH,), generator=g)  # noqa: E731
        else:
            actions = lambda: rand(BATCH, ACT).tanh()  # noqa: E731
        batches = [module.Batch(rand(BATCH, OBS), actions(), rand(BATCH), rand(BATCH, OBS),
                                (torch.rand(BATCH, generator=g) < 0.1).to(DTYPE), torch.zeros(BATCH, dtype=DTYPE)) for _ in range(n)]
    return [module.Batch(*(t.to(DEVICE) for t in batch)) for batch in batches]


def learner(name: str):
    """The script's networks and optimizers (in DTYPE, on DEVICE), and a call of its update on a minibatch (the
    delayed actor step on every second update, as in training)."""
    module = __import__(name)
    torch.manual_seed(0)
    args = module.Args()
    if name in ("a2c", "ppo"):  # RMSprop (A2C) or Adam (PPO), the gradient clipped at max_grad_norm, the lr annealed between updates
        import gymnasium as gym

        if name == "a2c":
            agent = module.Agent(OBS, gym.spaces.Discrete(ACT)).to(DEVICE, DTYPE)
            opt = OneOptimizer(torch.optim.RMSprop(agent.parameters(), lr=7e-4, alpha=0.99, eps=1e-5, foreach=True))
        else:  # the Gaussian policy of a Box space, its log σ a parameter of its own
            agent = module.Agent(OBS, gym.spaces.Box(-1.0, 1.0, (ACT,))).to(DEVICE, DTYPE)
            opt = OneOptimizer(torch.optim.Adam(agent.parameters(), lr=7e-4, eps=1e-5))

        def call(f, data, i):
            opt.q.param_groups[0]["lr"] = 7e-4 * (1 - i / UPDATES)
            return f(data, agent, opt.q, args)
        return module, opt, call, [agent]
    if name in ("dqn", "ddqn"):
        q_network = module.QNetwork(OBS, ACT).to(DEVICE, DTYPE)
        target_network = copy.deepcopy(q_network).requires_grad_(False)
        opt = OneOptimizer(torch.optim.Adam(q_network.parameters(), lr=1e-3))  # iterable, as plumbing.compiled takes it
        call = lambda f, data, i: f(data, q_network, target_network, opt.q, args)  # noqa: E731
        return module, opt, call, [q_network, target_network]
    actor = module.Actor(OBS, ACT, -np.ones(ACT), np.ones(ACT)).to(DEVICE, DTYPE)
    qf = (module.QNetwork(OBS, ACT) if name == "ddpg" else module.TwinQ(OBS, ACT)).to(DEVICE, DTYPE)
    qf_target = copy.deepcopy(qf).requires_grad_(False)
    if name.startswith("sac"):
        log_alpha = torch.tensor(np.log(0.2), dtype=DTYPE, device=DEVICE, requires_grad=True)
        opt = module.Optimizers(torch.optim.Adam(qf.parameters(), lr=1e-3), torch.optim.Adam(actor.parameters(), lr=3e-4),
                                torch.optim.Adam([log_alpha], lr=1e-3))
        call = lambda f, data, i: f(data, actor, qf, qf_target, log_alpha, opt, -float(ACT), args,  # noqa: E731
                                    actor_updates=2 if i % 2 else 0, update_targets=True)
        nets = [actor, qf, qf_target, log_alpha]
    else:
        actor_target = copy.deepcopy(actor).requires_grad_(False)
        opt = module.Optimizers(torch.optim.Adam(qf.parameters(), lr=3e-4), torch.optim.Adam(actor.parameters(), lr=3e-4))
        call = lambda f, data, i: f(data, actor, actor_target, qf, qf_target, opt, args, i % 2 == 1)  # noqa: E731
        nets = [actor, actor_target, qf, qf_target]
    return module, opt, call, nets


def tensors(nets) -> list:
    return [t.detach() for net in nets for t in ([net] if isinstance(net, torch.Tensor) else net.state_dict().values())]


@pytest.mark.parametrize("name", ["sac_continuous", "td3", "ddqn", "a2c", "ppo"])
def test_compiled_update_computes_what_the_eager_update_does(name):
    """Six updates each way, float64, the same minibatches and random numbers: the losses and every
    weight agree to 1e-10 (relative; TOLERANCE in float32), the optimizer's moments included (the step counters in that dtype too);
    A2C's and PPO's learning rate changes between updates, as its annealing does, without a new graph.
    The compiled update makes the host wait for the GPU nowhere: no .item(), bool(), .cpu(), ... (HostSyncs), where the
    eager one has its budget (tests/test_device.py). (Compiled with HostSyncs active, as it must be when called with it.)"""
    rtol, atol, weight_atol, moment_atol = TOLERANCE[DTYPE]
    module, eager_opt, eager, eager_nets = learner(name)
    _, compiled_opt, compiled, compiled_nets = learner(name)
    step = plumbing.compiled(module.update, compiled_opt)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    host = HostSyncs()
    for i, data in enumerate(minibatches(module, UPDATES)):
        torch.manual_seed(100 + i)
        eager_losses = eager(module.update, data, i)
        torch.manual_seed(100 + i)
        with host:
            compiled_losses = compiled(step, data, i)
        assert host.calls == [], f"host syncs in the compiled update: {host.calls}"
        assert eager_losses.keys() == compiled_losses.keys()
        for tag in eager_losses:
            torch.testing.assert_close(torch.as_tensor(compiled_losses[tag], dtype=DTYPE), torch.as_tensor(eager_losses[tag], dtype=DTYPE),
                                       rtol=rtol, atol=atol, msg=tag)
    for a, b in zip(tensors(eager_nets), tensors(compiled_nets)):
        torch.testing.assert_close(b, a, rtol=rtol, atol=weight_atol)
    for a, b in zip(eager_opt.q.state.values(), compiled_opt.q.state.values()):
        moment = "square_avg" if name == "a2c" else "exp_avg_sq"
        torch.testing.assert_close(b[moment], a[moment], rtol=rtol, atol=moment_atol)
    # one graph per variant (with and without the delayed actor step): a changed learning rate compiles nothing new
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == (2 if name in ("sac_continuous", "td3") else 1)


def test_compiled_update_skips_a_step_whose_loss_is_not_finite():
    """A NaN reward: the critic's loss is NaN, so its step is skipped inside the graph: the critics and
    their Adam moments keep their values, and the skipped count goes up, with no host sync."""
    module, opt, call, nets = learner("td3")
    step = plumbing.compiled(module.update, opt)
    (data,) = minibatches(module, 1)
    call(step, data, 0)  # a finite step first
    before = [t.clone() for t in opt.q.param_groups[0]["params"]]
    moments = [s["exp_avg"].clone() for s in opt.q.state.values()]
    bad = data._replace(rewards=data.rewards.clone().index_fill_(0, torch.tensor([3], device=DEVICE), float("nan")))
    losses = call(step, bad, 2)
    assert torch.isnan(losses["losses/qf_loss"]) and int(opt.q.skipped) == 1
    assert all(torch.equal(a, b) for a, b in zip(before, opt.q.param_groups[0]["params"]))
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(moments, opt.q.state.values()))
