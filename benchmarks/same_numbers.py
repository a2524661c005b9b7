"""Do two versions of the scripts compute the same numbers? For changes that must not change them.

Runs each script twice with the same seed and --torch-deterministic, once from the working tree and once
from a git revision (checked out in a temporary worktree), on the smoke tests' short settings plus
--save-model, on the CPU (--no-cuda; --flags=--cuda compares them on a GPU), and compares what the runs
produced: every logged scalar except the speed ones (episodic returns, losses, evaluation returns), step
by step, and every tensor of the saved model, bit for bit. Prints one line per script and exits with 1
if any differs.

Run:  python benchmarks/same_numbers.py --base HEAD~1
      python benchmarks/same_numbers.py --base main --scripts dqn ddqn --flags "--total-timesteps 2000"
"""
import argparse
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from conftest import SCRIPTS, quick_env, read_scalars, script_env  # noqa: E402
from test_smoke import SHORT  # noqa: E402

SPEED_TAGS = ("charts/SPS",)


def run(tree: Path, script: str, flags: list[str], workdir: Path) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True)
    command = [sys.executable, str(tree / f"{script}.py"), *flags]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=script_env(), timeout=1800)


def outputs(script: str, workdir: Path) -> tuple[dict, dict]:
    """The run's scalars (speed tags left out) and the tensors of its saved model."""
    import torch

    (run_dir,) = (workdir / "runs").iterdir()
    scalars = {tag: values for tag, values in read_scalars(run_dir).items() if tag not in SPEED_TAGS}
    model = torch.load(run_dir / f"{script}.pt", weights_only=True)
    tensors = {}

    def collect(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key != "args":
                    collect(f"{prefix}{key}.", item)
        elif torch.is_tensor(value):
            tensors[prefix[:-1]] = value

    collect("", model)
    return scalars, tensors


def first_difference(a: tuple[dict, dict], b: tuple[dict, dict]) -> str | None:
    import torch

    (scalars_a, tensors_a), (scalars_b, tensors_b) = a, b
    if scalars_a.keys() != scalars_b.keys():
        return f"logged tags differ: {sorted(scalars_a.keys() ^ scalars_b.keys())}"
    for tag in sorted(scalars_a):
        if scalars_a[tag] != scalars_b[tag]:
            pairs = [(x, y) for x, y in zip(scalars_a[tag], scalars_b[tag]) if x != y]
            where = pairs[0] if pairs else f"{len(scalars_a[tag])} against {len(scalars_b[tag])} values"
            return f"{tag}: first difference {where}"
    if tensors_a.keys() != tensors_b.keys():
        return f"saved tensors differ: {sorted(tensors_a.keys() ^ tensors_b.keys())}"
    for key in sorted(tensors_a):
        if not torch.equal(tensors_a[key], tensors_b[key]):
            return f"saved tensor {key} differs (max |diff| {(tensors_a[key] - tensors_b[key]).abs().max():.3g})"
    return None


def compare(script: str, base_tree: Path, flags: list[str], scratch: Path) -> tuple[str, bool]:
    flags = ["--env-id", quick_env(script), *SHORT[script], "--seed", "3", "--torch-deterministic",
             "--save-model", "--eval-episodes", "2", "--no-cuda", *flags]
    results = {}
    for name, tree in (("base", base_tree), ("new", ROOT)):
        proc = run(tree, script, flags, scratch / script / name)
        if proc.returncode != 0:
            return f"{script}: the {name} run failed: {proc.stderr.strip().splitlines()[-1:]}", False
        results[name] = outputs(script, scratch / script / name)
    difference = first_difference(results["base"], results["new"])
    n_values = sum(len(v) for v in results["new"][0].values())
    if difference is None:
        return f"{script}: identical ({n_values} logged values, {len(results['new'][1])} saved tensors)", True
    return f"{script}: DIFFERENT: {difference}", False


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    p.add_argument("--scripts", nargs="+", choices=SCRIPTS, default=SCRIPTS)
    p.add_argument("--flags", default="", help="more flags for every run (after the smoke tests' own)")
    p.add_argument("--workers", type=int, default=2, help="scripts compared at the same time")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="same-numbers-") as scratch:
        base_tree = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=ROOT, check=True)
        try:
            with ThreadPoolExecutor(args.workers) as pool:
                results = list(pool.map(lambda s: compare(s, base_tree, shlex.split(args.flags), Path(scratch) / "runs"),
                                        args.scripts))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    for line, _ in results:
        print(line)
    sys.exit(0 if all(same for _, same in results) else 1)


if __name__ == "__main__":
    main()
