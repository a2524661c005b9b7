"""Run a grid of scripts × environments × seeds, locally on a pool of processes or on a Ray cluster,
and gather every run's curve and final figures into one tidy CSV.

An *arm* is a script with its flags, named: `--arm "no-baseline=sac_no_reparam.py --no-baseline"`;
`--scripts a b` adds one arm per script, named after it. `--flags` go to every arm. Every arm runs on
every `--env-ids` × `--seeds`, each run in its own folder `{out}/runs/{arm}__{env_id}__{seed}/`.

A script of this repository runs on the CPU, with --no-cuda (on a GPU machine each run would otherwise
take the GPU and open a CUDA context on it), unless `--gpus-per-run` gives it GPUs: then it uses the GPU
torch sees. A run's identity is a hash of its command line (script, environment, seed, flags; not that
--no-cuda, which every CPU run has), its torch threads, the tags it gathers, the code that runs it (the
script file and every module of this repository it imports, transitively: plumbing.py; for `--env-id
module:Env`, that module too), and for a run with GPUs, their number and name, so that a GPU run and a
CPU run never count as the same run (a CPU run's identity is what it was before runs could have GPUs). It is written to
the run's `identity.json` before the run starts. Run again, the grid skips a run whose folder holds a
`result.csv` and the same identity, runs again one that was interrupted, and moves a folder of another
identity (other flags, other code) aside to `{out}/stale/`, never deleting it, so a grid never mixes
settings. The gathered `{out}/results.csv` has one row per measurement:

    arm, script, env_id, seed, tag, step, value

where `tag` is a TensorBoard tag of the run (`charts/episodic_return` and any `--tags`) or a final
figure: `final/return_last10` (mean of the last 10 episodic returns), `final/eval_return` (mean of
the evaluation episodes at the end; none with --no-save-model), `final/sps` (the script's training-phase SPS) and
`final/seconds` (wall time of the run) and `final/peak_rss_mib` (the script process's peak resident
memory, from wait4; processes it starts, such as torch.compile's workers, are not counted).

Run:  python benchmarks/grid.py --scripts sac_continuous sac_no_reparam --env-ids Pendulum-v1 \\
          --seeds 1 2 3 --flags "--total-timesteps 20000" --out results/sac
      python benchmarks/grid.py ... --backend ray --ray-address auto   (a running Ray cluster)
"""
import argparse
import ast
import csv
import functools
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["arm", "script", "env_id", "seed", "tag", "step", "value"]


class Run(NamedTuple):
    arm: str
    script: str  # a file name at the repository root, e.g. "sac_continuous.py"
    flags: tuple  # the arm's flags and the grid's --flags
    env_id: str
    seed: int
    folder: str  # where the script runs (its runs/ and videos/ go there)
    threads: int  # OMP_NUM_THREADS of the run
    tags: tuple  # TensorBoard tags to gather besides charts/episodic_return
    gpus: float = 0  # GPUs of the run (--gpus-per-run); with none, a script of this repository runs with --no-cuda


def parse_arm(text: str) -> tuple[str, str, list[str]]:
    """"name=script.py --flag value ..." → (name, script, flags)."""
    name, sep, command = text.partition("=")
    words = shlex.split(command)
    if not sep or not name or not words or not words[0].endswith(".py"):
        raise argparse.ArgumentTypeError(f"--arm {text!r}: expected NAME=SCRIPT.py [FLAGS...]")
    return name, words[0], words[1:]


def plan(args: argparse.Namespace) -> list[Run]:
    arms = [(s, f"{s}.py", []) for s in args.scripts] + [parse_arm(a) for a in args.arm]
    if not arms:
        sys.exit("error: no runs: give --scripts or --arm")
    for name, script, _ in arms:
        if not (ROOT / script).is_file():
            sys.exit(f"error: arm {name!r}: no script {script} at the repository root")
    if len({name for name, _, _ in arms}) != len(arms):
        sys.exit("error: two arms have the same name")
    common = shlex.split(args.flags)
    return [Run(name, script, tuple(flags + common), env_id, seed,
                str(args.out / "runs" / f"{name}__{env_id}__{seed}"), args.cpus_per_run, tuple(args.tags), args.gpus_per_run)
            for name, script, flags in arms for env_id in args.env_ids for seed in args.seeds]


def command(run: Run, device_flag: bool = True) -> list[str]:
    """The run's command line, after the interpreter: a script of this repository without GPUs gets --no-cuda (unless its
    flags name the device), left out with `device_flag=False` (the identity's command)."""
    words = [run.script, "--env-id", run.env_id, "--seed", str(run.seed), *run.flags]
    on_cpu = not run.gpus and "/" not in run.script and not {"--cuda", "--no-cuda"} & set(run.flags)
    return words + ["--no-cuda"] if device_flag and on_cpu else words


@functools.cache
def gpu_name() -> str:
    """The name of this machine's first GPU (nvidia-smi), or "unknown"."""
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        return names.stdout.strip().splitlines()[0] if names.returncode == 0 and names.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def module_file(name: str, near: Path | None = None) -> Path | None:
    """The file of this repository that `import name` loads, looked up beside the importing file (a
    script's own folder comes first on sys.path) and at the repository root."""
    for base in (Path(near or ROOT).joinpath(*name.split(".")), ROOT.joinpath(*name.split("."))):
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file() and ROOT.resolve() in path.resolve().parents:
                return path
    return None


def local_code(script: str, env_id: str) -> list[Path]:
    """The script and every module of this repository it imports, transitively; with an environment
    id `module:Env`, that module and its imports too."""
    found, queue = set(), [ROOT / script]
    if ":" in env_id and module_file(env_id.split(":")[0]):
        queue.append(module_file(env_id.split(":")[0]))
    while queue:
        path = queue.pop()
        if path in found:
            continue
        found.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            queue += [f for f in (module_file(name, path.parent) for name in names) if f]
    return sorted(found)


def identity(run: Run) -> dict:
    """What makes two runs the same run: their command, threads, gathered tags and code (file hashes), and their GPUs."""
    files = {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in local_code(run.script, run.env_id)}
    described = {"command": command(run, device_flag=False), "threads": run.threads, "tags": list(run.tags), "code": files}
    if run.gpus:  # only then: a CPU run's identity stays what it was before runs could have GPUs
        described["device"] = {"gpus": run.gpus, "name": gpu_name()}
    described["hash"] = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return described


def sort_out(runs: list[Run], out: Path) -> tuple[list[Run], int, int]:
    """Which runs still have to run: (runs to run, how many are done, how many were stale). A folder
    whose identity.json is not the run's own (or is missing) is moved to {out}/stale/, never deleted;
    every run to run gets its identity.json before it starts."""
    todo, done, stale = [], 0, 0
    for run in runs:
        folder, wanted = Path(run.folder), identity(run)
        stored = folder / "identity.json"
        if folder.exists():
            same = stored.is_file() and json.loads(stored.read_text()).get("hash") == wanted["hash"]
            if same and (folder / "result.csv").is_file():
                done += 1
                continue
            if not same:
                aside = out / "stale" / folder.name
                n = 1
                while aside.exists():
                    n += 1
                    aside = out / "stale" / f"{folder.name}.{n}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                os.replace(folder, aside)
                stale += 1
        folder.mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps(wanted, indent=1) + "\n")
        todo.append(run)
    return todo, done, stale


def error_line(stderr: str) -> str:
    """The line of a failed run's stderr that says what went wrong: the script's `error:` line, tyro's
    message from inside its box, or an exception's last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1]
    boxed = [re.sub(r"^[│┃|]\s*|\s*[│┃|]$", "", line).strip() for line in lines if line[0] in "│┃"]
    boxed = [line for line in boxed if line and set(line) - set("─━ ")]
    if boxed:
        return boxed[0]
    return lines[-1] if lines else "(no output)"


def run_process(argv: list[str], folder: Path, threads: int) -> tuple[int, float, float, str, str]:
    """Runs argv to its end in folder, its output in stdout.txt and stderr.txt, with `threads` torch threads:
    (exit status, wall seconds, peak resident MiB of the process, stdout, stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    start = time.time()
    with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
        proc = subprocess.Popen(argv, cwd=folder, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4, not wait: the child's own resource usage, its peak RSS
    seconds = time.time() - start
    # Linux gives ru_maxrss in KiB
    return os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss / 1024, (folder / "stdout.txt").read_text(), (folder / "stderr.txt").read_text()


def run_rows(head: list, scalars: dict, tags: tuple, stdout: str, seconds: float | None, peak_rss_mib: float | None,
             last: tuple = (10,)) -> list[list]:
    """One run's rows (COLUMNS after `head` = arm, script, env_id, seed): its curves, then its final figures:
    the mean of its last N episodic returns for each N of `last`, its evaluation, its SPS, its time, its memory."""
    rows = [head + [tag, step, value] for tag in ("charts/episodic_return", *tags) for step, value in scalars.get(tag, [])]
    returns = scalars.get("charts/episodic_return", [])
    final_step = max((step for tag in scalars.values() for step, _ in tag), default=0)
    for n in last if returns else ():
        rows.append(head + [f"final/return_last{n}", final_step, sum(v for _, v in returns[-n:]) / len(returns[-n:])])
    if scalars.get("eval/episodic_return"):
        evals = [v for _, v in scalars["eval/episodic_return"]]
        rows.append(head + ["final/eval_return", final_step, sum(evals) / len(evals)])
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from runlogs import SPS_LINE
    sps = SPS_LINE.search(stdout)
    if sps:
        rows.append(head + ["final/sps", final_step, float(sps.group(1))])
    if seconds is not None:
        rows.append(head + ["final/seconds", final_step, seconds])
    if peak_rss_mib is not None:
        rows.append(head + ["final/peak_rss_mib", final_step, peak_rss_mib])
    return rows


def execute(run: Run) -> list[list]:
    """Runs one script to the end in its folder and returns its rows (COLUMNS). Runs wherever it is
    called: in a thread of this process, or in a Ray worker on another machine."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from runlogs import read_scalars
    folder = Path(run.folder)
    code, seconds, peak_rss_mib, stdout, stderr = run_process([sys.executable, str(ROOT / run.script), *command(run)[1:]],
                                                              folder, run.threads)
    if code != 0:
        raise RuntimeError(f"{run.arm} {run.env_id} seed {run.seed}: exit status {code}: {error_line(stderr)}")
    (run_dir,) = sorted((folder / "runs").iterdir(), key=lambda p: p.stat().st_mtime)[-1:]
    return run_rows([run.arm, run.script, run.env_id, run.seed], read_scalars(run_dir), run.tags, stdout, seconds, peak_rss_mib)


def write_rows(path: Path, rows: list[list]) -> None:
    """Atomically: a result file that exists is complete, so the run it stands for can be skipped."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, path)


def read_rows(path: Path) -> list[list]:
    with open(path, newline="") as f:
        return list(csv.reader(f))[1:]


def run_local(todo: list[Run], workers: int, progress) -> list[str]:
    """A pool of threads, each waiting on one script's process: `workers` runs at a time."""
    failures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute, run): run for run in todo}
        for future in as_completed(futures):
            failures += finish(futures[future], future.exception() or future.result(), progress)
    return failures


def run_ray(todo: list[Run], address: str, gpus_per_run: float, progress) -> list[str]:
    """One Ray task per run, with its CPUs (and GPUs) declared; the rows come back to this driver.
    Every node needs this repository at the same path and the packages of requirements.txt."""
    try:
        import ray
    except ImportError:
        sys.exit("error: --backend ray needs Ray, which is not installed: pip install -r requirements-grid.txt")

    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    except ConnectionError as e:
        sys.exit(f"error: --ray-address {address!r}: no Ray cluster there ({e}); 'local' starts one on this machine")
    remote = ray.remote(execute)
    pending = {remote.options(num_cpus=run.threads, num_gpus=gpus_per_run).remote(run): run for run in todo}
    failures = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        run = pending.pop(done[0])
        try:
            outcome = ray.get(done[0])
        except ray.exceptions.RayTaskError as e:  # the task's RuntimeError, wrapped by Ray
            outcome = e.cause if isinstance(e.cause, Exception) else e
        failures += finish(run, outcome, progress)
    ray.shutdown()
    return failures


def finish(run: Run, outcome: list | Exception, progress) -> list[str]:
    """Records one finished run: its rows in its result.csv, or its failure."""
    progress.update(1)
    if isinstance(outcome, Exception):
        progress.write(f"failed: {outcome}")
        return [str(outcome)]
    write_rows(Path(run.folder) / "result.csv", outcome)
    progress.set_postfix_str(f"last: {run.arm} {run.env_id} seed {run.seed}")
    return []


def main(argv=None) -> None:
    from tqdm import tqdm

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scripts", nargs="*", default=[], help="one arm per script, e.g. dqn ddqn")
    p.add_argument("--arm", action="append", default=[], help='a named arm: "NAME=SCRIPT.py FLAGS..." (repeatable)')
    p.add_argument("--env-ids", nargs="+", required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--flags", default="", help="flags for every arm, in one string")
    p.add_argument("--tags", nargs="*", default=[], help="TensorBoard tags to gather besides charts/episodic_return")
    p.add_argument("--out", type=Path, required=True, help="folder of the runs and of results.csv")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="local: runs at a time (default: the cores)")
    p.add_argument("--cpus-per-run", type=int, default=1, help="CPUs declared per run (and its torch threads)")
    p.add_argument("--gpus-per-run", type=float, default=0,
                   help="GPUs of each run: 0 runs the scripts on the CPU (--no-cuda); above 0 they use the GPU torch sees (ray: declared per task)")
    p.add_argument("--ray-address", default="auto",
                   help="ray: the cluster to join ('auto': the one started here by `ray start`; 'local': a new one in this process)")
    args = p.parse_args(argv)
    if args.workers < 1 or args.cpus_per_run < 1 or args.gpus_per_run < 0:
        sys.exit("error: --workers and --cpus-per-run must be >= 1, --gpus-per-run >= 0")

    runs = plan(args)
    todo, done, stale = sort_out(runs, args.out)
    print(f"{len(runs)} runs in the grid, {done} already done, {len(todo)} to run ({args.backend})"
          + (f"; {stale} stale (other flags or code) moved to {args.out / 'stale'}" if stale else ""))
    with tqdm(total=len(todo), unit="run", dynamic_ncols=True) as progress:
        if args.backend == "local":
            failures = run_local(todo, args.workers, progress)
        else:
            failures = run_ray(todo, args.ray_address, args.gpus_per_run, progress)
    rows = [row for run in runs if (Path(run.folder) / "result.csv").is_file()
            for row in read_rows(Path(run.folder) / "result.csv")]
    write_rows(args.out / "results.csv", rows)
    print(f"{args.out / 'results.csv'}: {len(rows)} rows from {len(runs) - len(failures)} runs")
    if failures:
        sys.exit(f"error: {len(failures)} run(s) failed (their stderr.txt is in their folder); run the grid again to retry them")


if __name__ == "__main__":
    main()
