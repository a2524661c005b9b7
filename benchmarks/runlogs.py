"""Reading the scripts' TensorBoard logs and console back: shared by the tests and the benchmarks."""
import re
from pathlib import Path

SPS_LINE = re.compile(r"training-phase SPS: ([0-9.eE+-]+)")  # the speed every script prints at its end


def window_means(values, window: int = 10):
    """The mean of every `window` consecutive values (one per full window), e.g. of episodic returns."""
    import numpy as np

    return np.convolve(np.asarray(values, dtype=float), np.ones(window) / window, mode="valid")


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of a TensorBoard run directory: {tag: [(step, value), ...]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
