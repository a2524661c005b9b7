"""Shared helpers: run a script through its command line in a scratch directory, read its logs."""
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.runlogs import read_scalars  # noqa: F401  (the tests import it from here)

ROOT = Path(__file__).resolve().parent.parent
CONTINUOUS = ["sac_continuous", "sac_no_reparam", "td3", "ddpg"]
DISCRETE = ["dqn", "ddqn"]
OFF_POLICY = CONTINUOUS + DISCRETE
ON_POLICY = ["ppo", "a2c"]  # both action spaces
SCRIPTS = OFF_POLICY + ON_POLICY


def quick_env(script: str) -> str:
    """A cheap environment the script accepts, for runs that only exercise the command line."""
    return "Pendulum-v1" if script in CONTINUOUS else "CartPole-v1"


def script_env(extra: dict | None = None) -> dict:
    # one torch thread per script: pytest -n 2 already runs two at once on two cores, and
    # oversubscribed OpenMP threads spin-wait each other down to a few steps per second
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(extra or {})}


def script_command(name: str, *flags: str) -> list[str]:
    return [sys.executable, str(ROOT / f"{name}.py"), *flags]


def run_script(name: str, *flags: str, cwd: Path, timeout: float = 600, env: dict | None = None):
    """Runs `python {name}.py {flags}` in `cwd` (logs go to cwd/runs) and returns the CompletedProcess."""
    return subprocess.run(script_command(name, *flags), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=script_env(env))


def run_dirs(cwd: Path) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(cwd / "runs" / "*")))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
