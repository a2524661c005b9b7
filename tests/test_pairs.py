"""The twins differ in their algorithm and little else: a reader diffs them line by line."""
import subprocess

import pytest

from conftest import ROOT

# (first, second, the most changed lines the pair may show, counted as `diff a.py b.py | grep -c '^[<>]'`)
PAIRS = [
    ("sac_continuous", "sac_no_reparam", 48),  # docstring, the baseline flags, the actor loss
    ("dqn", "ddqn", 24),  # docstring, the target computation
    ("ddpg", "td3", 105),  # docstring, flags, twin critics and their min, target smoothing, OU noise
    ("a2c", "ppo", 131),  # docstring, flags and defaults, the losses, the update, PPO's epochs of minibatches, the replay lag
]


def changed_lines(a: str, b: str) -> int:
    diff = subprocess.run(["diff", str(ROOT / f"{a}.py"), str(ROOT / f"{b}.py")], capture_output=True, text=True).stdout
    return sum(1 for line in diff.splitlines() if line[:1] in "<>")


@pytest.mark.parametrize("a,b,limit", PAIRS)
def test_twin_diff_is_small(a, b, limit):
    assert changed_lines(a, b) <= limit
