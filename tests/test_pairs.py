"""The twins differ in their algorithm and little else: a reader diffs them line by line."""
import difflib

import pytest

from conftest import ROOT

# (first, second, the most changed lines — removed plus added — the pair may show)
PAIRS = [
    ("sac_continuous", "sac_no_reparam", 60),  # docstring, baseline flags, the actor-update block
    ("ddpg", "td3", 130),  # docstring, flags, twin critics + min, target smoothing, the delay block
    ("dqn", "ddqn", 25),  # docstring, the target computation
]


def changed_lines(a: str, b: str) -> int:
    first = (ROOT / f"{a}.py").read_text().splitlines()
    second = (ROOT / f"{b}.py").read_text().splitlines()
    return sum(1 for line in difflib.ndiff(first, second) if line[:2] in ("- ", "+ "))


@pytest.mark.parametrize("a,b,limit", PAIRS)
def test_twin_diff_is_small(a, b, limit):
    assert changed_lines(a, b) <= limit
