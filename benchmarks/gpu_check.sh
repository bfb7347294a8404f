#!/usr/bin/env bash
# Every CUDA test (pytest -m cuda) and the CUDA benchmark, in one go, in under 8 minutes.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, on a machine with a GPU
#
# Works on a bare machine that has a CUDA build of torch (and Triton, which ships with it):
# it installs the project itself (pip install -e ".[test]"; offline, without dependencies;
# or, failing both, a path shim), runs the CUDA tests, then benchmarks/bench_cuda.py, which
# writes benchmarks/optimizers_cuda.json.  Logs go to benchmarks/gpu_check.log (and, where the
# variable OUT names a folder, copies of the log, the JUnit XML and the JSON go there too).
# Exit status: 0 when the tests passed and the benchmark ran, 1 otherwise, 2 without a GPU.
# Budgets (seconds): install 2 x 30, tests 230, benchmark 170 of which compilation 100
# (env TEST_BUDGET, BENCH_BUDGET, COMPILE_BUDGET): under 8 minutes in all.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
LOG=benchmarks/gpu_check.log
TEST_BUDGET=${TEST_BUDGET:-230}
BENCH_BUDGET=${BENCH_BUDGET:-170}
COMPILE_BUDGET=${COMPILE_BUDGET:-100}
: >"$LOG"
say() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
finish() {
    if [ -n "${OUT:-}" ] && [ -d "${OUT}" ]; then
        cp -f "$LOG" benchmarks/optimizers_cuda.json benchmarks/gpu_check_junit.xml "$OUT"/ 2>/dev/null
    fi
}
trap finish EXIT
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >>"$LOG" 2>&1; then
    say "no CUDA device visible to $PY (torch missing or CPU build): nothing to check"
    exit 2
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$LOG"

# ---------------------------------------------------------------- install
importable() { "$PY" -c "import momentumlab.empirics.optim, pytest" >/dev/null 2>&1; }
if ! importable; then
    say "installing the project"
    timeout 30 "$PY" -m pip install -q --retries 0 --timeout 5 -e ".[test]" >>"$LOG" 2>&1 \
        || timeout 30 "$PY" -m pip install -q --no-deps --no-build-isolation -e . >>"$LOG" 2>&1 \
        || true
fi
if ! "$PY" -c "import momentumlab.empirics.optim" >/dev/null 2>&1; then
    say "pip could not install the project: using a path shim"
    SHIM="$ROOT/.gpu_check_shim"
    rm -rf "$SHIM" && mkdir -p "$SHIM/momentumlab"
    cp src/momentumlab/__init__.py "$SHIM/momentumlab/__init__.py"
    ln -s "$ROOT/theory" "$SHIM/momentumlab/theory"
    ln -s "$ROOT/empirics" "$SHIM/momentumlab/empirics"
    export PYTHONPATH="$SHIM:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! importable; then
    say "momentumlab or pytest cannot be imported; see $LOG"
    "$PY" -c "import momentumlab.empirics.optim, pytest" >>"$LOG" 2>&1
    exit 1
fi

# ---------------------------------------------------------------- tests
# only the files that hold CUDA tests: others may need packages a bare machine lacks
FILES=$(grep -rl --include='test_*.py' -e 'mark.cuda' tests | sort)
EXTRA=()
if "$PY" -c "import xdist" >/dev/null 2>&1; then EXTRA+=(-n 6); fi  # compilation is CPU-bound
if ! "$PY" -c "import hypothesis" >/dev/null 2>&1; then
    EXTRA+=(--noconftest)  # tests/conftest.py only sets hypothesis profiles, which CUDA tests need not
fi
say "CUDA tests: $(echo $FILES | tr '\n' ' ')"
timeout "$TEST_BUDGET" "$PY" -m pytest -m cuda $FILES -q -p no:cacheprovider -o addopts="" -rfEs \
    "${EXTRA[@]}" --junitxml=benchmarks/gpu_check_junit.xml 2>&1 | tee -a "$LOG"
TESTS=${PIPESTATUS[0]}
say "tests: exit status $TESTS (124: the budget ran out)"

# ---------------------------------------------------------------- benchmark
say "benchmark"
timeout "$BENCH_BUDGET" "$PY" benchmarks/bench_cuda.py --compile-budget "$COMPILE_BUDGET" \
    --out benchmarks/optimizers_cuda.json 2>&1 | tee -a "$LOG"
BENCH=${PIPESTATUS[0]}
say "benchmark: exit status $BENCH"

if [ "$TESTS" -eq 0 ] && [ "$BENCH" -eq 0 ]; then
    say "all CUDA checks passed"
    exit 0
fi
exit 1
