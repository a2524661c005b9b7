"""The GPU path, tested where there is no GPU. `--cuda` is on by default, so a device bug would first show on
a user's GPU: these tests make it show on the CPU. Every script trains in this process with the default device set to
"meta" once set up, so that a tensor made without `device=` lands on meta and fails beside the real ones; its update()
counts the calls that would make the host wait for a GPU; its losses and optimizer state are checked to be on the
parameters' device. Checkpoints and models written on a GPU resume and evaluate on the CPU, and a --no-cuda run on a
GPU machine asks nothing of CUDA. Run on a GPU (benchmarks/gpu_check.sh), the same tests check the CUDA path itself."""
import importlib
import signal
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import tyro
from torch.overrides import TorchFunctionMode

import plumbing
from conftest import SCRIPTS, quick_env, run_dirs, run_script
from test_smoke import SHORT

# Tensor methods that copy a GPU value to the host and wait for it (on the CPU they cost nothing, and are counted alike)
SYNCS = ("item", "__bool__", "__float__", "__int__", "__index__", "__array__", "cpu", "numpy", "tolist")
# Host syncs allowed per eager update(): none where fused Adam skips a step whose loss is not finite on the device;
# A2C's RMSprop cannot, so its NaN guard reads the loss once. The compiled update has none (tests/test_compile.py).
EAGER_SYNC_BUDGET = {**{s: 0 for s in SCRIPTS}, "a2c": 1}


class HostSyncs(TorchFunctionMode):
    """Records the SYNCS called on tensors while active."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", None) in SYNCS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    """Runs scripts' train() in this process, in tmp_path, and puts back the global state a run changes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # plumbing.CoreShare leaves this process's threads alone
    handler, deterministic, threads = signal.getsignal(signal.SIGINT), torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.set_num_threads(1)  # one, as every script the tests run (conftest.script_env)

    def train(script: str, *flags: str) -> None:
        module = importlib.import_module(script)
        module.train(tyro.cli(module.Args, args=["--env-id", quick_env(script), *SHORT[script], "--exp-name", script, *flags]), None)

    yield train
    torch.set_default_device(None)
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, handler)


def optimizers_of(values) -> list[torch.optim.Optimizer]:
    """The optimizers among update()'s arguments (alone, or in a script's Optimizers tuple)."""
    found = []
    for v in values:
        if isinstance(v, torch.optim.Optimizer):
            found.append(v)
        elif isinstance(v, tuple):
            found += [o for o in v if isinstance(o, torch.optim.Optimizer)]
    return found


def assert_on_device(losses: dict, optimizers: list, device: torch.device) -> None:
    """Every returned loss and every optimizer state tensor is on the parameters' device. Torch keeps the step counter of
    an optimizer that is neither fused nor capturable (A2C's RMSprop, eager) on the CPU: it never reads it on the GPU."""
    for tag, value in losses.items():
        assert not torch.is_tensor(value) or value.device == device, f"{tag} is on {value.device}, not {device}"
    for optimizer in optimizers:
        host_step = not (optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
        for param, state in optimizer.state.items():
            for key, value in state.items():
                where = torch.device("cpu") if key == "step" and host_step else param.device
                assert value.device == where, f"{type(optimizer).__name__} state {key} is on {value.device}, not {where}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_run_creates_no_tensor_off_its_device_and_update_waits_for_no_gpu(script, in_process, monkeypatch):
    """After the first update (the set-up: networks, buffers, and the optimizers' state, which torch creates at their
    first step), the default device is "meta": acting, exploration noise, replay sampling, update(), logging, checkpoints,
    the saved model and its evaluation all run with it, so a tensor made without `device=` fails the run. update() stays
    within its host-sync budget, and what it returns and the optimizer state stay on the parameters' device."""
    module = importlib.import_module(script)
    update, syncs = module.update, []

    def checked_update(*args, **kwargs):
        with HostSyncs() as host:
            losses = update(*args, **kwargs)
        syncs.append(host.calls)
        device = next(p for a in args if isinstance(a, torch.nn.Module) for p in a.parameters()).device
        assert_on_device(losses, optimizers_of(args), device)
        torch.set_default_device("meta")  # from here on, a tensor made without device= is on meta
        return losses

    monkeypatch.setattr(module, "update", checked_update)
    in_process(script, "--save-model", "--eval-episodes", "1", "--checkpoint-frequency", "100")
    torch.set_default_device(None)
    assert len(syncs) > 2, "update() ran too few times to tell"
    assert max(len(calls) for calls in syncs) <= EAGER_SYNC_BUDGET[script], f"host syncs in update(): {max(syncs, key=len)}"
    (run,) = run_dirs(Path("."))
    for saved in ("checkpoint.pt", f"{script}.pt"):  # what was saved is real: no tensor of it on meta
        assert not [t for t in tensors_in(torch.load(run / saved, weights_only=True)) if t.device.type == "meta"], saved


def tensors_in(value) -> list[torch.Tensor]:
    if torch.is_tensor(value):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else []
    return [t for item in items for t in tensors_in(item)]


def test_a_minibatch_goes_to_the_device_in_one_copy():
    """plumbing.to_device on a device that is not the CPU (meta here; a GPU in benchmarks/gpu_check.sh): one copy for
    all the arrays, each back in its own shape and dtype, at a 64-byte boundary. On the CPU, the arrays themselves."""
    arrays = [np.zeros((7, 3), np.float32), np.zeros(7, np.int64), np.zeros(7, np.float32), np.zeros((7, 1, 2), np.float64)]

    class Copies(TorchFunctionMode):
        count = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Copies.count += getattr(func, "__name__", None) == "to"
            return func(*args, **(kwargs or {}))

    with Copies():
        moved = plumbing.to_device(arrays, torch.device("meta"))
    assert Copies.count == 1
    assert [(t.shape, t.dtype, t.device.type) for t in moved] == [(torch.Size(a.shape), torch.from_numpy(a).dtype, "meta")
                                                                  for a in arrays]
    assert all(t.storage_offset() * t.element_size() % 64 == 0 for t in moved)
    on_cpu = plumbing.to_device(arrays, torch.device("cpu"))
    assert all(np.shares_memory(t.numpy(), a) for t, a in zip(on_cpu, arrays))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (benchmarks/gpu_check.sh runs it on one)")
def test_a_minibatch_reaches_the_gpu_with_its_values():
    rng = np.random.default_rng(0)
    arrays = [rng.random((5, 3), np.float32), rng.integers(0, 9, 5), rng.random(5, np.float32), rng.random(5)]
    moved = plumbing.to_device(arrays, torch.device("cuda"))
    assert all(np.array_equal(t.cpu().numpy(), a) and t.is_cuda for t, a in zip(moved, arrays))


def test_compile_moves_the_optimizer_state_that_resume_loaded_to_the_parameters_device():
    """On a GPU, load_state_dict leaves RMSprop's step counters on the CPU (it keeps them there unless capturable), and the
    compiled update's functional RMSprop needs them beside the parameters. Meta stands for the GPU here."""
    import gymnasium as gym

    import a2c

    agent = a2c.Agent(4, gym.spaces.Discrete(2))
    optimizer = torch.optim.RMSprop(agent.parameters(), lr=7e-4, alpha=0.99, eps=1e-5, foreach=True)
    obs = torch.zeros(3, 4)
    (agent.get_value(obs).sum() + agent.distribution(obs).sum()).backward()  # a gradient for every parameter
    optimizer.step()
    saved = optimizer.state_dict()
    on_gpu = a2c.Agent(4, gym.spaces.Discrete(2)).to("meta")
    resumed = torch.optim.RMSprop(on_gpu.parameters(), lr=7e-4, alpha=0.99, eps=1e-5, foreach=True)
    resumed.load_state_dict(saved)
    assert {s["step"].device.type for s in resumed.state.values()} == {"cpu"}  # what --resume hands to compiled()
    plumbing.compiled(a2c.update, (resumed,))
    assert all(t.device == p.device and t.dtype == p.dtype for p, s in resumed.state.items() for t in s.values())


# A checkpoint before the end of the smoke tests' runs (SHORT), and the steps of a run that goes past it
CHECKPOINT_AT = {**{s: ["--checkpoint-frequency", "200"] for s in SCRIPTS}, "ppo": ["--total-timesteps", "768", "--checkpoint-frequency", "512"],
                 "a2c": ["--checkpoint-frequency", "400"]}


def save_as_if_on_gpu(content: dict, path) -> None:
    """torch.save, with every tensor's storage tagged "cuda:0" as on a GPU: loaded without map_location on a machine
    without one, it fails."""
    with mock.patch.object(torch.serialization, "location_tag", lambda storage: "cuda:0"):
        torch.save(content, path)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_checkpoint_and_a_model_saved_on_a_gpu_resume_and_evaluate_on_the_cpu(script, tmp_path):
    """A run on two GPUs saved both GPUs' random states (as checkpoints of 145f397 did, one per visible GPU): resumed on a machine with
    fewer GPUs or none, it goes on; its model evaluates on the CPU."""
    proc = run_script(script, "--env-id", quick_env(script), *SHORT[script], *CHECKPOINT_AT[script], "--save-model",
                      "--eval-episodes", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    checkpoint["args"]["cuda"] = True
    checkpoint["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)]
    save_as_if_on_gpu(checkpoint, run / "checkpoint.pt")
    save_as_if_on_gpu(torch.load(run / f"{script}.pt", weights_only=True), run / "model.pt")
    if not torch.cuda.is_available():  # the tags took: without map_location, torch cannot load them here
        with pytest.raises(RuntimeError):
            torch.load(run / "checkpoint.pt", weights_only=True)

    # the run ended with a checkpoint: extended to twice its steps (resuming a finished run is refused)
    longer = str(checkpoint["global_step"] * 2)
    resumed = run_script(script, "--resume", str(run / "checkpoint.pt"), "--total-timesteps", longer, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {checkpoint['global_step']}" in resumed.stdout and "eval/episodic_return" in resumed.stdout
    evaluated = run_script(script, "--eval-model", str(run / "model.pt"), "--eval-episodes", "1", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "over 1 episodes" in evaluated.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_no_cuda_run_on_a_gpu_machine_asks_nothing_of_cuda(script, in_process, monkeypatch):
    """As if on a machine with two GPUs: a --no-cuda run, its checkpoint, and its resumption from a checkpoint that holds
    GPU random states never start CUDA (a checkpoint that saved every GPU's state opened a context on each)."""
    def touched(*args, **kwargs):
        raise AssertionError("a --no-cuda run started CUDA")

    import torch._dynamo  # noqa: F401  (imported first by use_deterministic_algorithms, it indexes torch.cuda: not the fakes)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name in ("_lazy_init", "init", "get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all"):
        monkeypatch.setattr(torch.cuda, name, touched)
    in_process(script, "--no-cuda", *CHECKPOINT_AT[script])
    (run,) = run_dirs(Path("."))
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["rng"]["cuda"] == [] and not checkpoint["args"]["cuda"]
    checkpoint["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 2
    args = {**checkpoint["args"], "resume": str(run / "checkpoint.pt")}
    module = importlib.import_module(script)
    module.train(module.Args(**args), checkpoint)


@pytest.mark.parametrize("flag,cuda", [("--no-cuda", False), ("--cuda", True)])
def test_resume_takes_the_device_from_the_command_line(flag, cuda, tmp_path, monkeypatch):
    """--resume continues with the flags the run started with, except --cuda/--no-cuda: a run may move between the CPU and
    a GPU (where there is none, --cuda falls back to the CPU, as it does for a new run)."""
    import gymnasium as gym

    import sac_continuous

    monkeypatch.setattr(plumbing, "script_name", lambda: "sac_continuous")
    torch.save({"script": "sac_continuous.py", "format": plumbing.CHECKPOINT_FORMAT, "global_step": 0,
                "args": {**vars(sac_continuous.Args(exp_name="x")), "cuda": not cuda, "seed": 5, "env_id": "Pendulum-v1"}}, tmp_path / "c.pt")
    monkeypatch.setattr("sys.argv", ["sac_continuous.py", "--resume", str(tmp_path / "c.pt"), flag, "--seed", "7"])
    args, _ = plumbing.parse(sac_continuous.Args, (gym.spaces.Box,))
    assert args.cuda is cuda and args.seed == 5
