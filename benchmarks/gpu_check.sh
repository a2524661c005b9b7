#!/usr/bin/env bash
# The GPU check: in one command of under 6 minutes on a machine with an NVIDIA GPU, from the repository root,
#   1. tests/test_compile.py on the GPU in float32 (compiled against eager to rtol 1e-4; losses to atol 1e-5, weights to
#      1e-4, second moments to 1e-9; no host sync in the compiled update) and tests/test_device.py on the GPU
#      (no tensor off its device, each update within its host-sync budget, GPU checkpoints resumed),
#   2. a short SAC, TD3 and PPO run on Pendulum-v1, each eager and --compile, on the GPU (with the GPU memory it took),
#   3. benchmarks/speed.py: SAC eager against --compile, on the GPU and on the CPU (2 threads), 2 repeats each,
# and writes one summary, OUT_DIR/gpu_check.md, beside each step's log. Without a GPU it says so in one line and exits 1.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]    OUT_DIR: default $OUT if set, else results/gpu_check
#   bash benchmarks/gpu_check.sh --wheels     (where pip reaches PyPI) the pure-Python packages a bare GPU machine with
#                                             torch lacks, into .whl/; the check installs them from there, offline
# Packages: where torch is missing, requirements.txt (PyPI's torch is the CUDA build on Linux x86_64); where torch is
# there, the CUDA build in place is kept and what else requirements.txt pins is installed, from .whl/ if it exists.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pinned() { sed -n "s/^$1\(\[[^]]*\]\)\?==\([^ ]*\).*/$1==\2/p" requirements.txt; }  # the version requirements.txt pins
# gymnasium and tyro as pinned, and the versions of their requirements that pip resolved them to with those pins
WHEELS="$(pinned gymnasium) farama-notifications==0.0.6 $(pinned tyro) docstring-parser==0.18.0 typeguard==4.6.1"
if [ "${1:-}" = "--wheels" ]; then
    $PY -m pip download -q --no-deps --only-binary=:all: -d .whl $WHEELS || exit 1
    echo "wheels for the GPU check in .whl/ (carry them to the GPU machine): $(ls .whl | tr '\n' ' ')"
    exit 0
fi
OUT_DIR=${1:-${OUT:-results/gpu_check}}

# The GPU, packages, the GPU as torch sees it: one line and exit 1 where there is none
if ! nvidia-smi -L > /dev/null 2>&1; then
    echo "error: gpu_check: no NVIDIA GPU here (nvidia-smi lists none); nothing was run"
    exit 1
fi
if ! $PY -c "import torch" 2>/dev/null; then
    $PY -m pip install -q -r requirements.txt || { echo "error: gpu_check: pip could not install requirements.txt"; exit 1; }
fi
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "error: gpu_check: torch $($PY -c 'import torch; print(torch.__version__)') sees no GPU (a CPU build?); nothing was run"
    exit 1
fi
if ! $PY -c "import gymnasium, tyro, tensorboard, tqdm, pytest, xdist" 2>/dev/null; then
    if [ -d .whl ]; then  # offline: the wheels of --wheels, beside the packages that are there
        $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu_check_site .whl/*.whl \
            || { echo "error: gpu_check: the wheels in .whl/ did not install"; exit 1; }
        export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
    else
        grep -v '^torch==' requirements.txt > /tmp/gpu_check_requirements.txt
        $PY -m pip install -q -r /tmp/gpu_check_requirements.txt || {
            echo "error: gpu_check: pip could not install requirements.txt (torch left as it is); without an index, run --wheels first"
            exit 1
        }
    fi
fi

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
SUMMARY=$OUT_DIR/gpu_check.md
WORK=$(mktemp -d)  # the runs' own folders (runs/, TensorBoard logs) stay out of OUT_DIR
REPO=$(pwd)
# python -c this SCRIPT FLAGS...: runs the script as `python SCRIPT FLAGS...` would, then says how much GPU memory its tensors took
RUN_AND_MEASURE='import os, runpy, sys, torch
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
print(f"peak GPU memory of its tensors: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB (0: it ran on the CPU)")'
export PY WORK REPO RUN_AND_MEASURE PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
START=$(date +%s)
{
    echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
    $PY -c 'import os, platform, torch
print(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, Python {platform.python_version()}, {os.cpu_count()} CPUs")'
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo 'unknown (no git here)')"
    echo
    echo "| step | result | seconds | last line of its log |"
    echo "|---|---|---|---|"
} > "$SUMMARY"

short_runs() {  # a short run of each, eager and compiled, one after the other: its speed, evaluation and GPU memory
    local script flags compile
    set -o pipefail
    for script in sac_continuous td3 ppo; do
        flags="--env-id Pendulum-v1 --total-timesteps 3000 --learning-starts 1000"
        [ $script = ppo ] && flags="--env-id Pendulum-v1 --total-timesteps 8192"
        for compile in "" "--compile"; do
            echo "== $script.py $flags $compile (on the GPU)"
            (cd "$WORK" && $PY -c "$RUN_AND_MEASURE" "$REPO/$script.py" $flags $compile --save-model --eval-episodes 2) 2>&1 \
                | grep -E "training-phase SPS|eval/episodic_return|peak GPU memory|error|Error" || return 1
        done
    done
}

speed() {  # SAC eager (plain) against --compile, on the GPU (--cuda) or the CPU
    $PY benchmarks/speed.py --algos sac --env-id Pendulum-v1 --learning-starts 1000 --steps 2000 --repeats 2 --threads 2 \
        --against plain --flags=--compile "$@"
}

step() {  # NAME LIMIT COMMAND...: COMMAND (or a function above) for at most LIMIT seconds into NAME.log; its row in the summary
    local name=$1 limit=$2 t0 rc result last
    shift 2
    t0=$(date +%s)
    timeout "$limit" bash -c "$(declare -f short_runs speed)"'; "$@"' step "$@" > "$OUT_DIR/$name.log" 2>&1
    rc=$?
    result="ok"
    [ $rc -eq 0 ] || result="FAILED (exit $rc$([ $rc -eq 124 ] && echo ', out of time'))"
    last=$(grep -v '^\s*$' "$OUT_DIR/$name.log" | tail -n 1 | tr '|' '/' | cut -c1-160)
    echo "| $name | $result | $(( $(date +%s) - t0 )) | $last |" >> "$SUMMARY"
}

# 1 and 2 at once (correctness, not timed; the GPU has room for all), then 3 alone
step compile_tests 200 env TEST_DEVICE=cuda TEST_DTYPE=float32 "$PY" -m pytest -q -p no:cacheprovider -n 5 tests/test_compile.py &
step device_tests 200 "$PY" -m pytest -q -p no:cacheprovider -n 6 tests/test_device.py &
step short_runs 200 short_runs &
wait
step speed_gpu 130 speed --cuda --json "$OUT_DIR/speed_gpu.json" &
step speed_cpu 130 speed --json "$OUT_DIR/speed_cpu.json" &
wait

{
    echo
    echo "Short runs (Pendulum-v1; SPS: steps per second after --learning-starts, compiling not counted):"
    echo '```'
    grep -E "^==|SPS|eval/|GPU memory" "$OUT_DIR/short_runs.log"
    echo '```'
    for where in gpu cpu; do
        echo
        echo "speed.py, SAC on Pendulum-v1, on the $where: ours = --compile, plain = eager (ratio: compiled / eager):"
        echo '```'
        sed -n '/^algorithm/,$p' "$OUT_DIR/speed_$where.log" 2>/dev/null || echo "(no log)"
        echo '```'
    done
    echo
    echo "Total: $(( $(date +%s) - START )) s. Beside this file: each step's log, and speed.py's results as JSON."
} >> "$SUMMARY"
rm -rf "$WORK"
cat "$SUMMARY"
! grep -q "FAILED" "$SUMMARY"
