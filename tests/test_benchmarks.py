"""benchmarks/: grid.py (on a local pool and on a Ray instance the test starts), plot.py,
learning_margins.py and profile_split.py (on our script only: SB3 is not installed here)."""
import argparse
import csv
import functools
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, script_env

TINY = ["--scripts", "dqn", "--arm", "huber=dqn.py --loss huber", "--env-ids", "CartPole-v1", "--seeds", "1", "2",
        "--flags", "--total-timesteps 400 --learning-starts 100", "--tags", "charts/q_overestimation"]


def grid(*flags: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "grid.py"), *flags], cwd=cwd,
                          capture_output=True, text=True, timeout=900, env=script_env())


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_complete(results: Path, runs: set) -> None:
    table = rows(results)
    assert {(r["arm"], r["env_id"], r["seed"]) for r in table} == runs
    for run in runs:
        tags = {r["tag"] for r in table if (r["arm"], r["env_id"], r["seed"]) == run}
        assert {"charts/episodic_return", "charts/q_overestimation", "final/return_last10", "final/sps",
                "final/seconds", "final/peak_rss_mib"} <= tags, (run, tags)
        # the script's own peak memory (a torch process holds a few hundred MiB), not the grid's or a sum over runs
        (rss,) = [float(r["value"]) for r in table if (r["arm"], r["env_id"], r["seed"]) == run and r["tag"] == "final/peak_rss_mib"]
        assert 100 < rss < 4000, rss


def test_grid_runs_locally_skips_what_is_done_and_writes_one_tidy_csv(workdir):
    out = workdir / "out"
    first = grid(*TINY, "--out", str(out), "--workers", "2", cwd=workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = {(arm, "CartPole-v1", seed) for arm in ("dqn", "huber") for seed in ("1", "2")}
    assert_complete(out / "results.csv", runs)
    before = (out / "results.csv").read_text()

    # an interrupted grid: one run has no result yet; only that one runs again
    shutil.rmtree(out / "runs" / "huber__CartPole-v1__2")
    again = grid(*TINY, "--out", str(out), "--workers", "2", cwd=workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 already done, 1 to run" in again.stdout
    assert (out / "results.csv").read_text().count("\n") == before.count("\n")


def test_grid_reports_a_failed_run_by_its_error_line_and_keeps_the_others(workdir):
    proc = grid("--arm", "bad=dqn.py --batch-size 0", "--arm", "typo=dqn.py --total-timestep 300", "--scripts", "dqn",
                "--env-ids", "CartPole-v1", "--seeds", "1", "--flags", "--total-timesteps 300 --learning-starts 100",
                "--out", str(workdir / "out"), cwd=workdir)
    assert proc.returncode != 0
    assert "2 run(s) failed" in proc.stderr
    said = proc.stdout + proc.stderr
    assert "failed: bad CartPole-v1 seed 1: exit status 1: error: --batch-size must be positive (got 0)" in said
    assert "failed: typo CartPole-v1 seed 1: exit status 2: Unrecognized options: --total-timestep, 300" in said
    assert {r["arm"] for r in rows(workdir / "out" / "results.csv")} == {"dqn"}


def test_grid_error_line_of_an_exception():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import grid as grid_module

    traceback = 'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\nValueError: bad shape (3,)\n'
    assert grid_module.error_line(traceback) == "ValueError: bad shape (3,)"
    assert grid_module.error_line("") == "(no output)"


def test_grid_reruns_a_run_whose_flags_changed_and_moves_the_old_one_aside(workdir):
    out = workdir / "out"
    small = ["--scripts", "dqn", "--env-ids", "CartPole-v1", "--seeds", "1", "--out", str(out)]
    first = grid(*small, "--flags", "--total-timesteps 300 --learning-starts 100", cwd=workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    changed = grid(*small, "--flags", "--total-timesteps 400 --learning-starts 100", cwd=workdir)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "0 already done, 1 to run" in changed.stdout and "1 stale" in changed.stdout
    kept = json.loads((out / "stale" / "dqn__CartPole-v1__1" / "identity.json").read_text())
    assert "300" in kept["command"] and (out / "stale" / "dqn__CartPole-v1__1" / "result.csv").is_file()
    now = json.loads((out / "runs" / "dqn__CartPole-v1__1" / "identity.json").read_text())
    assert "400" in now["command"] and now["hash"] != kept["hash"]
    assert max(int(r["step"]) for r in rows(out / "results.csv")) > 300  # only the new run's rows
    same = grid(*small, "--flags", "--total-timesteps 400 --learning-starts 100", cwd=workdir)
    assert "1 already done, 0 to run" in same.stdout and "stale" not in same.stdout


def test_grid_identity_covers_the_code_the_script_imports(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import grid as grid_module

    monkeypatch.setattr(grid_module, "ROOT", tmp_path)
    (tmp_path / "algo.py").write_text("import os\nimport helper\n")
    (tmp_path / "helper.py").write_text("from pkg.inner import x\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "inner.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "envs.py").write_text("E = 1\n")
    (tmp_path / "unrelated.py").write_text("y = 1\n")
    run = grid_module.Run("a", "algo.py", ("--lr", "1"), "pkg.envs:Noisy-v0", 1, str(tmp_path / "run"), 1, ())
    before = grid_module.identity(run)
    assert set(before["code"]) == {"algo.py", "helper.py", "pkg/inner.py", "pkg/envs.py"}
    (tmp_path / "unrelated.py").write_text("y = 2\n")
    assert grid_module.identity(run)["hash"] == before["hash"]
    for changed in ("pkg/inner.py", "pkg/envs.py"):
        (tmp_path / changed).write_text((tmp_path / changed).read_text() + "# changed\n")
        assert grid_module.identity(run)["hash"] != before["hash"], changed
        before = grid_module.identity(run)
    assert grid_module.identity(run._replace(flags=("--lr", "2")))["hash"] != before["hash"]
    (tmp_path / "tools").mkdir()  # a script in a folder imports its neighbours (its folder is first on sys.path)
    (tmp_path / "tools" / "runner.py").write_text("import near\nimport helper\n")
    (tmp_path / "tools" / "near.py").write_text("")
    assert set(grid_module.identity(run._replace(script="tools/runner.py"))["code"]) == {
        "tools/runner.py", "tools/near.py", "helper.py", "pkg/inner.py", "pkg/envs.py"}


def identity_hash_at_145f397(run) -> str:
    """The identity hash grid.py gave a run at commit 145f397 (its identity() and command(), copied here so that the test
    needs no git history): docs/expect-runs.csv keys the runs that finished by it, 1M-step ones among them."""
    import grid as grid_module

    files = {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in grid_module.local_code(run.script, run.env_id)}
    described = {"command": [run.script, "--env-id", run.env_id, "--seed", str(run.seed), *run.flags], "threads": run.threads,
                 "tags": list(run.tags), "code": files}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def test_a_cpu_run_keeps_its_identity_and_a_gpu_run_is_another_run(workdir, monkeypatch):
    """Every run of benchmarks/expect.py (ours and SB3's, the 1M-step rows included) has on the CPU the identity hash it had
    at 145f397, though our scripts now run with --no-cuda; with a GPU, the run is another run, its GPUs in its identity."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import expect
    import grid as grid_module

    runs = expect.plan(argparse.Namespace(only=None, scripts=None, budget=None, out=workdir / "out", threads=1))
    assert {r.gpus for r in runs} == {0} and len(runs) > 50
    runs = list({(r.arm, r.env_id, r.flags): r for r in runs}.values())  # one seed of each row's arms
    monkeypatch.setattr(grid_module, "local_code", functools.cache(grid_module.local_code))  # (parsed once per script)
    assert all(grid_module.identity(run)["hash"] == identity_hash_at_145f397(run) for run in runs)
    assert all(("--no-cuda" in grid_module.command(run)) == (not run.script.startswith("benchmarks/")) for run in runs)
    old = subprocess.run(["git", "show", "145f397:benchmarks/grid.py"], cwd=ROOT, capture_output=True, text=True)
    if old.returncode == 0:  # where the history is there, grid.py as it was at 145f397 gives the same hashes too
        namespace = {"__file__": str(ROOT / "benchmarks" / "grid.py"), "__name__": "grid_at_145f397"}
        exec(compile(old.stdout, "grid_at_145f397.py", "exec"), namespace)
        namespace["local_code"] = grid_module.local_code
        assert all(namespace["identity"](namespace["Run"](*run[:8]))["hash"] == grid_module.identity(run)["hash"] for run in runs)
    on_gpu = [run._replace(gpus=1) for run in runs[:3]]
    assert all("--no-cuda" not in grid_module.command(run) and "device" in grid_module.identity(run) for run in on_gpu)
    assert all(grid_module.identity(a)["hash"] != grid_module.identity(b)["hash"] for a, b in zip(runs, on_gpu))
    gpu_runs = expect.plan(argparse.Namespace(only=None, scripts=None, budget=None, out=workdir / "out", threads=1, gpus_per_run=1))
    assert {r.gpus for r in gpu_runs if r.script.startswith("benchmarks/")} == {0} and {r.gpus for r in gpu_runs} == {0, 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_grid_runs_on_a_ray_cluster(workdir):
    pytest.importorskip("ray")
    ray = str(Path(sys.executable).parent / "ray")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths inside it must stay under 108 characters
    env = script_env({"RAY_TMPDIR": temp})
    start = subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--port", str(port), "--disable-usage-stats",
                            "--include-dashboard", "false", "--temp-dir", temp],
                           capture_output=True, text=True, timeout=300, env=env)
    assert start.returncode == 0, start.stderr[-3000:]
    try:
        proc = grid(*TINY, "--out", str(workdir / "out"), "--backend", "ray", "--ray-address", f"127.0.0.1:{port}",
                    cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Connected to Ray cluster" in proc.stderr + proc.stdout
        assert_complete(workdir / "out" / "results.csv",
                        {(arm, "CartPole-v1", seed) for arm in ("dqn", "huber") for seed in ("1", "2")})
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=300, env=env)
        shutil.rmtree(temp, ignore_errors=True)


def test_plot_draws_a_real_image_and_a_table(workdir):
    """A small CSV of the grid's format: 2 environments × 2 arms × 4 seeds of noisy rising curves."""
    rng = np.random.default_rng(0)
    path = workdir / "results.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arm", "script", "env_id", "seed", "tag", "step", "value"])
        for env in ("Pendulum-v1", "CartPole-v1"):
            for arm, slope in (("fast", 2.0), ("slow", 1.0)):
                for seed in range(4):
                    steps = np.sort(rng.integers(1, 10_000, 60))
                    for step in steps:
                        writer.writerow([arm, "x.py", env, seed, "charts/episodic_return", step, slope * step / 100 + rng.normal()])
                    writer.writerow([arm, "x.py", env, seed, "final/return_last10", steps[-1], slope * 100 + seed])
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plot.py"), str(path), "--out", str(workdir / "fig"),
                           "--claim", "fast > slow", "--claim", "slow > fast"],
                          capture_output=True, text=True, timeout=300, env=script_env())
    assert proc.returncode == 0, proc.stderr[-3000:]

    from PIL import Image

    image = np.asarray(Image.open(workdir / "fig.png").convert("L"), dtype=float)
    assert image.shape[0] >= 300 and image.shape[1] >= 800  # two panels side by side
    assert image.std() > 10 and (image < 200).mean() > 0.01  # not blank: lines, bands, text
    table, claims = (workdir / "fig.md").read_text().split("\n\n")
    table = table.splitlines()
    assert len(table) == 2 + 4  # header, rule, 2 envs × 2 arms
    fast = next(line for line in table if "Pendulum-v1 | fast" in line)
    # mean ± std; IQM of 200..203 with its bootstrap interval, inside the seeds' range
    assert "| 4 |" in fast and "201.5 ± 1.12" in fast and "| 201.5 [200" in fast and "203] |" in fast
    # every seed of "fast" (200..203) beats every seed of "slow" (100..103), on both environments
    assert claims.count("| fast > slow | 4, 4 | 1.00 [1.00, 1.00] | supported |") == 2
    assert claims.count("| slow > fast | 4, 4 | 0.00 [0.00, 0.00] | not supported |") == 2


def test_plot_verdict_rule_on_overlapping_seeds():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import plot

    p, low, high = plot.improvement([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5])  # interleaved: no clear winner
    assert 0.3 < p < 0.5 and low < 0.5 < high
    # the same interval whatever numpy's global generator holds (arch draws from it), and that state left as it was
    import numpy as np

    np.random.seed(123)
    again, after = plot.improvement([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5]), np.random.random()
    np.random.seed(123)
    assert again == (p, low, high) and after == np.random.random()
    assert plot.iqm_interval([1.0, 5.0, 2.0, 8.0, 3.0]) == plot.iqm_interval([1.0, 5.0, 2.0, 8.0, 3.0])
    assert plot.verdict(low, high) == "not resolved"
    assert plot.verdict(0.55, 0.9) == "supported" and plot.verdict(0.1, 0.45) == "not supported"
    # a claim of equality needs the whole interval inside 0.5 ± margin
    assert plot.verdict(0.3, 0.7, equality=True, margin=0.25) == "supported"
    assert plot.verdict(0.2, 0.7, equality=True, margin=0.25) == "not resolved"
    assert plot.verdict(0.8, 0.95, equality=True, margin=0.25) == "not supported"


def test_power_simulates_the_rule_that_plot_applies():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import plot
    import power

    # power.py's numpy bootstrap gives plot.improvement's P and, within resampling noise, its interval
    rng = np.random.default_rng(5)
    for a, b in [(rng.normal(0.074, 0.024, 10), rng.normal(0.051, 0.015, 10)), (rng.normal(0, 1, 20), rng.normal(0, 1, 20))]:
        ours, theirs = power.improvement_interval(a, b, plot.REPS, np.random.default_rng(0)), plot.improvement(list(a), list(b))
        assert ours[0] == pytest.approx(theirs[0]) and np.allclose(ours[1:], theirs[1:], atol=0.03), (ours, theirs)
    # ties count half: of the 16 pairings 5 are won and 5 tied, as plot.improvement counts them
    a, b = [1.0, 1, 2, 3], [1.0, 2, 2, 2]
    assert power.improvement_interval(np.array(a), np.array(b), 10, np.random.default_rng(0))[0] == 7.5 / 16 == plot.improvement(a, b)[0]
    # arms 10 std apart always end "supported" (and "not supported" the other way round); equal arms with
    # 4 seeds never support equality within a ± 0.25 band (docs/claims.md, claim 1)
    assert power.power((10, 1), (0, 1), seeds=4, grids=50, reps=500, equality=False, margin=0.25)["supported"] == 1
    assert power.power((0, 1), (10, 1), seeds=4, grids=50, reps=500, equality=False, margin=0.25)["not supported"] == 1
    assert power.power((0, 1), (0, 1), seeds=4, grids=50, reps=500, equality=True, margin=0.25)["supported"] == 0


def test_learning_margins_finds_when_the_bar_was_reached_and_whether_it_held():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import learning_margins

    assert learning_margins.arms([("dqn", ["--lr", "1", "--seed", "1", "--x"], 400)]) == ["dqn=dqn.py --lr 1 --x"]
    # seed 1 climbs to 300 (the 10-episode mean first reaches it at its 19th episode) and falls back;
    # seed 2 stays at 200
    curves = {1: [100] * 9 + [300] * 10 + [50] * 10, 2: [200] * 20}
    rows = [dict(arm="a2c", seed=str(seed), tag="charts/episodic_return", step=str(1000 * (i + 1)), value=str(v))
            for seed, values in curves.items() for i, v in enumerate(values)]
    rows.append(dict(arm="a2c", seed="1", tag="final/return_last10", step="29000", value="50"))
    table = learning_margins.summarize(rows, {"a2c": 300, "dqn": 400}).splitlines()
    assert table[2:] == ["| a2c | 300 | 1/2 | 19k (19k–19k) | 0/2 | 1: 50, 2: 200 |"]  # no dqn rows: no line


def test_expect_table_keeps_the_rows_an_earlier_run_measured():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import expect

    earlier = expect.table({("td3", "Pendulum-v1", "20k"): {"seconds": [60.0] * 5, "last10": [-150.0] * 5,
                                                           "eval": [-140.0] * 5, "curves": [], "commits": {"aaaaaaa"}}})
    found = {("dqn", "CartPole-v1", "500k"): {"seconds": [120.0] * 5, "last10": [400.0, 500.0] * 2 + [450.0],
                                             "eval": [500.0] * 5, "curves": [], "commits": {"bbbbbbb"}}}
    rows = [line for line in expect.table(found, earlier).splitlines() if expect.row_key(line)]
    assert [expect.row_key(line) for line in rows] == [("td3", "Pendulum-v1", "20k"), ("dqn", "CartPole-v1", "500k")]
    assert rows[0].endswith("| aaaaaaa |") and "| 1.0 min | -150 ± 0 | -140 ± 0 |" in rows[0]
    assert rows[1].endswith("| 2.0 min | 450 ± 45 | 500 ± 0 | — | — | — | bbbbbbb |")
    part = expect.table({("dqn", "CartPole-v1", "500k"): {**found["dqn", "CartPole-v1", "500k"], "last10": [400.0, 500.0]}})
    assert "| 450 ± 50 (2 of 5 seeds) |" in part  # a row measured in part says so
    # a row measured again replaces the earlier one; a row whose runs span two commits names both
    again = expect.table({("td3", "Pendulum-v1", "20k"): {**found["dqn", "CartPole-v1", "500k"], "commits": {"ccccccc", "ddddddd"}}},
                         earlier)
    assert [line[-20:] for line in again.splitlines() if expect.row_key(line)] == ["| ccccccc, ddddddd |"]
    # CleanRL's reference: ours where a row has CleanRL's budget, "not measured" elsewhere, earlier cells kept
    reference = expect.reference(found, "| `td3.py` | Hopper-v4, 1M | 3135 ± 360 | 3000 ± 100 (3 seeds) | | | | | | |\n"
                                        "| `ddpg.py` | Hopper-v4, 1M | 1577 ± 819 | 1500 (an older table's row) |")
    assert ("| `dqn.py` | CartPole-v1, 500k | 489 ± 16 | — | 450 ± 45 | 500 ± 0 | 2.0 min | — | — (no last-100 kept) "
            "| bbbbbbb |") in reference
    assert "| `td3.py` | Hopper-v4, 1M | 3135 ± 360 | 3000 ± 100 (3 seeds) |" in reference
    assert "| `ddpg.py` | Hopper-v4, 1M | 1577 ± 819 | not measured |" in reference  # a row of other columns is not kept
    assert "| `ppo.py` | CartPole-v1, 500k | 490 ± 6 | not measured |" in reference
    # the 1M rows, in CleanRL's measure (last 100): a verdict once all 3 seeds ran; sac_no_reparam.py against our sac_continuous.py
    sac = {"seconds": [9000.0] * 3, "last10": [2100.0] * 3, "last100": [2000.0, 2200.0, 2400.0], "eval": [2500.0] * 3,
           "peak_rss": [900.0, 950.0, 1000.0], "curves": [], "commits": {"ccccccc"}}
    long = expect.reference({("sac_continuous", "Hopper-v4", "1M"): sac,
                             ("sac_no_reparam", "Hopper-v4", "1M"): {**sac, "last100": [1900.0, 1950.0, 2000.0]},
                             ("ppo", "Hopper-v4", "1M"): {**sac, "last100": [2500.0, 2600.0]}}).splitlines()
    row = {line.split("|")[1].strip(" `"): line for line in long if expect.row_key(line) and "Hopper" in line}
    assert ("| `sac_continuous.py` | Hopper-v4, 1M | 2310 ± 343 | 2200 ± 163 (3 seeds) | 2100 ± 0 | 2500 ± 0 | 150.0 min "
            "| 1000 MiB | at its level |") in row["sac_continuous.py"]  # 2200 >= 2310 − 343
    assert "| none; `sac_continuous.py`: 2200 ± 163 | 1950 ± 41 (3 seeds) |" in row["sac_no_reparam.py"]
    # a row not measured yet takes the reference anew: sac_no_reparam.py's, once sac_continuous.py's row is complete
    stale = "| `sac_no_reparam.py` | Hopper-v4, 1M | none; `sac_continuous.py`: pending | not measured | | | | | | |\n"
    assert "| none; `sac_continuous.py`: 2200 ± 163 | not measured |" in expect.reference({("sac_continuous", "Hopper-v4", "1M"): sac}, stale)
    assert "| below |" in row["sac_no_reparam.py"]  # 1950 < 2200 − 163
    assert "| pending (2 of 3 seeds) |" in row["ppo.py"]
    one = expect.reference({("td3", "Hopper-v4", "1M"): {**sac, "last100": [3361.0], "last10": [3486.0], "eval": [3522.0]}})
    assert "| 3135 ± 360 | 3361 (1 seed) | 3486 | 3522 |" in one  # one run: its value, no "± 0"
    assert expect.verdict([2111.0] * 3, "2383 ± 272", 3) == "at its level" and expect.verdict([2110.0] * 3, "2383 ± 272", 3) == "below"


def test_expect_counts_a_kept_run_only_while_its_identity_holds(workdir):
    """A run summarised in docs/expect-runs.csv counts as done for the same command and code, and not after
    either changes (its figures stay in the table, marked with its commit, until it runs again); the summary's
    binned curve and figures survive the round trip through the file."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import argparse

    import expect
    import grid

    args = argparse.Namespace(only=["Pendulum-v1"], scripts=["td3"], out=workdir / "out", threads=1)
    runs = expect.plan(args)
    assert {(r.arm, r.seed) for r in runs} == {("td3", s) for s in expect.OUR_SEEDS} | {("sb3-td3", s) for s in expect.SB3_SEEDS}
    run = runs[0]
    folder = Path(run.folder)
    folder.mkdir(parents=True)
    grid.write_rows(folder / "result.csv", [[run.arm, run.script, run.env_id, run.seed, "charts/episodic_return", step, -step / 100]
                                            for step in range(50, 20000, 100)]
                    + [[run.arm, run.script, run.env_id, run.seed, f"final/{tag}", 20000, value]
                       for tag, value in (("seconds", 150.0), ("return_last10", -160.0), ("eval_return", -145.0),
                                                           ("peak_rss_mib", 800.0))])
    fresh = expect.summary(folder, 20000)
    assert len(fresh["curve"]) == expect.CURVE_BINS and fresh["curve"][0] == (100, -1.0) and fresh["seconds"] == 150.0
    assert fresh["last100"] == -150.0  # CleanRL's measure: the mean of the last 100 of the 200 returns (steps 10050-19950)
    assert expect.ran(run) is None and expect.figures(runs, {}) == {}  # a folder without its identity.json is not a run
    (folder / "identity.json").write_text(json.dumps(grid.identity(run)))
    (folder / "commit.txt").write_text("aaaaaaa\n")
    assert expect.ran(run) == {**fresh, "hash": grid.identity(run)["hash"], "commit": "aaaaaaa"}
    path = workdir / "kept.csv"
    expect.keep({folder.name: expect.ran(run)}, path)
    kept = expect.read_kept(path)
    assert kept[folder.name]["curve"] == fresh["curve"] and kept[folder.name]["eval"] == -145.0 and kept[folder.name]["peak_rss"] == 800 \
        and kept[folder.name]["last100"] == -150.0
    (folder / "result.csv").unlink()  # a new machine: only the kept summary remains
    assert expect.done_and_kept(runs, kept) == [run]
    found = {("td3", "Pendulum-v1", "20k"): {"seconds": [150.0], "last10": [-160.0], "last100": [fresh["last100"]], "eval": [-145.0],
                                            "peak_rss": [800.0],
                                            "curves": [fresh["curve"]], "commits": {"aaaaaaa"}}}
    assert expect.figures(runs, kept) == found
    # other flags (or code): the kept run must run again, and until it has, the table shows it as measured at aaaaaaa
    changed = run._replace(flags=run.flags + ("--tau", "0.01"))
    assert expect.done_and_kept([changed], kept) == [] and expect.figures([changed], kept) == found


def test_expect_plan_says_which_runs_would_run_and_why_and_runs_nothing(workdir, capsys):
    """--plan: per row and arm, the runs --write would keep, take from --out, or run, with the reason: the
    files of the code that changed since the commit a kept run was measured at."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import argparse

    import expect
    import grid

    args = argparse.Namespace(only=["Pendulum-v1"], scripts=["td3"], out=workdir / "out", threads=1)
    runs = [r for r in expect.plan(args) if r.arm == "td3"]
    now = grid.identity(runs[1])

    def as_at_commit(commit, path):  # td3.py differs at "aaaaaaa"; every other file is as now
        return b"old td3.py" if path == "td3.py" else (ROOT / path).read_bytes()

    described = {"command": now["command"], "threads": now["threads"], "tags": now["tags"],
                 "code": {path: hashlib.sha256(as_at_commit("aaaaaaa", path)).hexdigest() for path in now["code"]}}
    old_hash = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    name = lambda run: Path(run.folder).name  # noqa: E731
    kept = {name(runs[0]): {"hash": grid.identity(runs[0])["hash"], "commit": "bbbbbbb"},  # seed 1: as it would run now
            name(runs[1]): {"hash": old_hash, "commit": "aaaaaaa"},  # seed 2: measured before td3.py changed
            name(runs[2]): {"hash": "0" * 16, "commit": "aaaaaaa"}}  # seed 3: another command at that commit
    done = Path(runs[3].folder)  # seed 4: finished in --out with its identity now
    done.mkdir(parents=True)
    (done / "identity.json").write_text(json.dumps(grid.identity(runs[3])))
    (done / "result.csv").write_text("")
    found = {run.seed: (state, why) for run, state, why in expect.states(runs, kept, args.out, as_at_commit)}
    assert found[1] == ("kept", "measured at bbbbbbb")
    assert found[2] == ("would run", "td3.py changed since aaaaaaa")
    assert found[3][0] == "would run" and found[3][1].startswith("td3.py changed since aaaaaaa; its command")
    assert found[4][0] == "done" and found[5] == ("would run", "not measured")
    lines = expect.plan_lines(expect.states(runs, kept, args.out, as_at_commit))
    assert lines[0].startswith("td3, Pendulum-v1, 20k: kept 1 (seeds 1): measured at bbbbbbb; would run 1 (seeds 2): td3.py changed")

    # the command line: one line per row and arm and a count; nothing run, no folder made, nothing written
    readme, csv_text = (ROOT / "README.md").read_text(), expect.KEPT.read_text()
    expect.main(["--out", str(workdir / "fresh"), "--only", "Pendulum-v1", "--scripts", "td3", "--plan"])
    said = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in said[:-1]] == ["td3, Pendulum-v1, 20k", "sb3-td3, Pendulum-v1, 20k"]
    assert said[-1].startswith("8 runs: ") and not (workdir / "fresh").exists()
    assert (ROOT / "README.md").read_text() == readme and expect.KEPT.read_text() == csv_text


def test_profile_split_accounts_for_the_whole_training_phase(workdir):
    out = workdir / "split.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_split.py"), "--algo", "dqn", "--only", "ours",
                           "--steps", "300", "--learning-starts", "100", "--threads", "1", "--json", str(out)],
                          cwd=workdir, capture_output=True, text=True, timeout=600, env=script_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    split, plain = result["profiled"]["ours"], result["unprofiled"]["ours"]
    buckets = ["matmul", "optimizer", "other torch", "env", "the rest"]
    # 300 steps, 30 gradient steps: each bucket the profiler measures took time, and together they
    # stay within the phase's wall time (an op counted twice, or one from another thread, would not)
    assert all(split[b] > 0 for b in buckets[:4]), split
    assert sum(split[b] for b in buckets[:4]) < split["total"], split
    # the unprofiled run timed its 30 updates (rb.sample to optimizer.step): some, not all, of the phase
    assert 0 < plain["update"] < plain["total"], plain
    assert "| ours | " in proc.stdout and "ours, unprofiled: the update takes" in proc.stdout


def test_speed_compares_our_scripts_with_a_git_revision(workdir):
    """speed.py --against rev:REV (SB3 is not installed by the README's test command): our dqn.py from
    the working tree against itself at HEAD, in a worktree speed.py makes and removes."""
    out = workdir / "speed.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--algos", "dqn", "--against", "rev:HEAD",
                           "--repeats", "1", "--steps", "500", "--learning-starts", "100", "--threads", "1", "--json", str(out)],
                          cwd=workdir, capture_output=True, text=True, timeout=600, env=script_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["against"] == "rev:HEAD" and row["ours_sps"] > 0 and row["against_sps"] > 0 and row["ratio"] > 0
    listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "speed-" not in listed  # the worktree is gone


def test_speed_pairs_each_script_with_its_own_run_of_a_shared_peer(workdir, monkeypatch):
    """sac and sac_no_reparam are both compared with SB3's SAC, which runs once for each in every
    repeat; each repeat's ratio takes the SB3 run made next to that script, not the other's. The runs
    are faked: in each repeat SB3's SAC gives 50 SPS beside sac and 25 beside sac_no_reparam, ours 100."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import speed

    calls = []

    def fake_run(impl, args, seed, workdir):
        slot = ("sac", "sac", "sac_no_reparam", "sac_no_reparam")[len(calls) % 4]  # two runs per script, in turn
        calls.append(impl)
        return 100.0 if impl.kind == "ours" else {"sac": 50.0, "sac_no_reparam": 25.0}[slot]

    out = workdir / "speed.json"
    monkeypatch.setattr(speed, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["speed.py", "--algos", "sac", "sac_no_reparam", "--repeats", "3", "--json", str(out)])
    speed.main()
    rows = {row["algo"]: row for row in json.loads(out.read_text())["rows"]}
    assert len(calls) == 12
    assert rows["sac"]["repeat_ratios"] == [2.0] * 3 and rows["sac"]["ratio"] == 2.0
    assert rows["sac_no_reparam"]["repeat_ratios"] == [4.0] * 3 and rows["sac_no_reparam"]["ratio"] == 4.0


def test_speed_times_cleanrl_jax_from_its_10th_draw_and_needs_a_checkout(workdir):
    """--against cleanrl-jax runs CleanRL's own file from a checkout (--cleanrl) and times it from its replay
    buffer's draws. Here the checkout is a stand-in whose TD3 file checks the flags it was given and draws
    once per training step: its first 9 steps take 50 ms (as JAX compiling), the 40 after the 10th draw
    5 ms each. The figure counts those 40 (200 SPS less the sleeps' overshoot), not the slow start (57)."""
    fake = workdir / "cleanrl"
    (fake / "cleanrl_utils").mkdir(parents=True)
    (fake / "cleanrl").mkdir()
    (fake / "cleanrl_utils" / "__init__.py").write_text("")
    (fake / "cleanrl_utils" / "buffers.py").write_text("class ReplayBuffer:\n    def sample(self, n):\n        return n\n")
    (fake / "cleanrl" / "td3_continuous_action_jax.py").write_text(
        "import sys, time\nfrom cleanrl_utils.buffers import ReplayBuffer\n"
        "assert sys.argv[1:] == ['--env-id', 'Hopper-v4', '--seed', '3', '--learning-starts', '7', '--total-timesteps', '57'], sys.argv\n"
        "rb = ReplayBuffer()\n"
        "for step in range(50):\n    rb.sample(256)\n    time.sleep(0.05 if step < 9 else 0.005)\n")
    worker = [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--cleanrl-worker", "td3", "--env-id", "Hopper-v4",
              "--seed", "3", "--learning-starts", "7", "--steps", "50"]
    proc = subprocess.run([*worker, "--cleanrl", str(fake)], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sps = float(proc.stdout.split("training-phase SPS: ")[1].split()[0])
    assert 100 < sps <= 200, proc.stdout  # from the 10th draw on; from the 1st it would be 57
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--algos", "td3", "--against", "cleanrl-jax"],
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--against cleanrl-jax needs --cleanrl DIR" in proc.stderr and "Traceback" not in proc.stderr


# A stand-in for CleanRL's ppo_continuous_action.py: the four places that gymnasium 1.x changes, in a
# function never called, then a run that checks its command line and logs 120 episodic returns.
FAKE_CLEANRL_PPO = '''import os, sys
from torch.utils.tensorboard import SummaryWriter


def never(gym, np, args, infos, writer, global_step, time, start_time, make_env, env):
    if True:
        env = gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10))
        envs = gym.vector.SyncVectorEnv(
            [make_env(i) for i in range(args.num_envs)]
        )
        for step in range(1):
            if "final_info" in infos:
                for info in infos["final_info"]:
                    if info and "episode" in info:
                        print(f"global_step={global_step}, episodic_return={info['episode']['r']}")
                        writer.add_scalar("charts/episodic_return", info["episode"]["r"], global_step)
                        writer.add_scalar("charts/episodic_length", info["episode"]["l"], global_step)
        print("SPS:", int(global_step / (time.time() - start_time)))


seed = int(sys.argv[4])
assert sys.argv[1:] == ["--env-id", "Hopper-v4", "--seed", str(seed), "--no-cuda", "--total-timesteps", "120"], sys.argv
assert os.environ["OMP_NUM_THREADS"] == "1"
writer = SummaryWriter(f"runs/Hopper-v4__ppo_continuous_action__{seed}")
for i in range(120):
    writer.add_scalar("charts/episodic_return", 1000 * seed + i, 8 * i)
writer.close()
'''


def test_cleanrl_peer_runs_cleanrl_file_patched_for_gymnasium_1_and_tabulates_its_last_100(workdir):
    """cleanrl_peer.py changes exactly the gymnasium-1.x lines of CleanRL's file, runs it per seed, writes
    CleanRL's measure (the mean of the last 100 episodic returns) in grid.py's format, skips a seed already
    run with the same file, refuses one run with another file, and stops on a file it cannot patch."""
    fake = workdir / "cleanrl"
    (fake / "cleanrl").mkdir(parents=True)
    (fake / "cleanrl" / "ppo_continuous_action.py").write_text(FAKE_CLEANRL_PPO)
    tool = [sys.executable, str(ROOT / "benchmarks" / "cleanrl_peer.py"), "--cleanrl", str(fake), "--seeds", "1", "2",
            "--flags", "--total-timesteps 120", "--workers", "2", "--out", str(workdir / "peer")]
    proc = subprocess.run(tool, cwd=workdir, capture_output=True, text=True, timeout=300, env=script_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    patched = (workdir / "peer" / "ppo_continuous_action.py").read_text()
    assert "env.observation_space)" in patched and "AutoresetMode.SAME_STEP" in patched
    assert 'infos["final_info"]["_episode"]' in patched and 'print("SPS:"' not in patched
    table = rows(workdir / "peer" / "results.csv")
    for seed in (1, 2):
        final = {r["tag"]: float(r["value"]) for r in table if r["seed"] == str(seed) and r["tag"].startswith("final/")}
        assert final["final/return_last100"] == pytest.approx(1000 * seed + np.mean(range(20, 120)))
        assert final["final/return_last10"] == pytest.approx(1000 * seed + np.mean(range(110, 120)))
        assert final["final/seconds"] > 0 and final["final/peak_rss_mib"] > 0
    assert {r["arm"] for r in table} == {"cleanrl-ppo"}
    # run again: nothing reruns; plot.py reads CleanRL's measure from these rows, and computes it for a grid
    # run that wrote only its episodic returns
    ran = [(workdir / "peer" / f"seed{seed}" / "stdout.txt").stat().st_mtime_ns for seed in (1, 2)]
    again = subprocess.run(tool, cwd=workdir, capture_output=True, text=True, timeout=300, env=script_env())
    assert again.returncode == 0 and "last 100 1070" in again.stdout
    assert [(workdir / "peer" / f"seed{seed}" / "stdout.txt").stat().st_mtime_ns for seed in (1, 2)] == ran
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import plot

    assert plot.seed_figure({"charts/episodic_return": [(i, float(i)) for i in range(150)]}, "final/return_last100") == np.mean(range(50, 150))
    # a seed run with another file is refused; a file without one of the lines stops with one line
    (fake / "cleanrl" / "ppo_continuous_action.py").write_text(FAKE_CLEANRL_PPO + "# changed\n")
    other = subprocess.run(tool, cwd=workdir, capture_output=True, text=True, timeout=300, env=script_env())
    assert other.returncode == 1 and "holds a run of another file" in other.stderr and "Traceback" not in other.stderr
    (fake / "cleanrl" / "ppo_continuous_action.py").write_text(FAKE_CLEANRL_PPO.replace('print("SPS:"', 'print("speed:"'))
    moved = subprocess.run(tool, cwd=workdir, capture_output=True, text=True, timeout=300, env=script_env())
    assert moved.returncode == 1 and "0 times, not once" in moved.stderr and "Traceback" not in moved.stderr


def test_update_time_builds_td3_twin_critics_and_times_both_ways(workdir):
    """benchmarks/update_time.py on td3.py, whose update takes the two critics as one TwinQ module
    (docs/speed.md quotes its figures): a round of 2 updates eager and compiled gives both times."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "update_time.py"), "--algo", "td3", "--rounds", "1",
                           "--blocks", "1", "--updates", "2", "--warmup", "2", "--threads", "1"],
                          cwd=workdir, capture_output=True, text=True, timeout=600, env=script_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "round 1: eager " in proc.stdout and "eager / compiled" in proc.stdout, proc.stdout


def test_step_parts_splits_our_step_into_pieces_that_add_up(workdir):
    """benchmarks/step_parts.py on td3.py (eager, to stay fast): every piece of the loop was timed once on
    each of the 20 timed steps, and no piece was counted inside another (the rest, the step less the pieces,
    stays above zero: acting and the loop are in it)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_parts.py"), "--algo", "td3", "--no-compile",
                           "--steps", "20", "--learning-starts", "50"],
                          cwd=workdir, capture_output=True, text=True, timeout=600, env=script_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if "steps timed" in line)
    assert lines[head].startswith("ours td3, Hopper-v4: 20 steps timed, ")
    per_step = float(lines[head].split("timed, ")[1].split(" ms")[0])
    parts = {line[:25].strip(): line[25:] for line in lines[head + 1:] if " ms" in line}
    for piece in ("learn (the update)", "envs.step", "rb.add", "rb.sample"):
        assert parts[piece].endswith("(20 calls)"), (piece, proc.stdout)
    times = {name: float(text.split(" ms")[0]) for name, text in parts.items()}
    assert all(t > 0 for t in times.values()) and times["the rest"] < per_step, proc.stdout


def test_maxbias_env_is_the_notes_maximisation_bias_example():
    """benchmarks/envs.py's MaxBias-v0: in A, action 0 ends the episode with 0 and the others lead to B;
    in B every action ends it with a reward of mean −0.1 and std 1."""
    import gymnasium as gym

    import benchmarks.envs  # noqa: F401  (registers MaxBias-v0)

    env = gym.make("MaxBias-v0")
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1.0, 0.0]
    assert env.step(0)[1:4] == (0.0, True, False)
    rewards = []
    for i in range(20_000):
        env.reset()
        obs, reward, terminated, _, _ = env.step(1 + i % 9)  # any action but 0: on to B
        assert obs.tolist() == [0.0, 1.0] and reward == 0.0 and not terminated
        obs, reward, terminated, _, _ = env.step(i % 10)
        assert terminated
        rewards.append(reward)
    assert abs(np.mean(rewards) + 0.1) < 5 / np.sqrt(len(rewards)) and abs(np.std(rewards) - 1) < 0.05


@pytest.mark.parametrize("script", ["dqn", "ddqn"])
def test_maxbias_env_runs_with_the_value_scripts_unchanged(script, workdir):
    from conftest import run_dirs, read_scalars, run_script

    proc = run_script(script, "--env-id", "benchmarks.envs:MaxBias-v0", "--total-timesteps", "600",
                      "--learning-starts", "200", "--train-frequency", "1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scalars = read_scalars(run_dirs(workdir)[-1])
    assert len(scalars["charts/q_overestimation"]) == 6  # read every 100 steps, each time over episodes of one or two steps
