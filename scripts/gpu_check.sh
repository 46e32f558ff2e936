#!/usr/bin/env bash
# The GPU check (issue 16), in one go: set up, run the `gpu` tests, run the GPU benchmark.
# Writes under DEST (default artifacts/gpu): gpu_check.log (everything printed), pytest.log,
# results.json and results.md (benchmarks/gpu.py), nvidia-smi.txt. Sized to finish within
# 8 minutes of wall time on one H100 with 16 cores, set-up included, so that it can be rerun
# once; GPU_CHECK_SECONDS (default 450) is the budget it plans the benchmark by.
#
#   scripts/gpu_check.sh [DEST]
#
# Set-up, first that applies:
#   1. .venv with a torch that sees CUDA (`make setup` on a GPU machine that reaches PyPI:
#      PyPI's torch 2.13.0 wheel for Linux x86_64 is a CUDA build);
#   2. wheels/ (scripts/gpu_wheels.sh, run where PyPI is reachable, carried here): installed
#      with no index into $GPU_SITE over $GPU_PYTHON (default python3), which must already
#      hold a CUDA build of torch; its torch version goes into results.json;
#   3. otherwise `make setup` (needs PyPI).
#
# A dry run on a machine without a GPU (the gpu tests skip; the benchmark runs on the CPU):
#   GPU_CHECK_ALLOW_CPU=1 GPU_CHECK_ROWS=200000 scripts/gpu_check.sh /tmp/gpu-dry-run
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=${1:-artifacts/gpu}
LIMIT=${GPU_CHECK_SECONDS:-450}
ROWS=${GPU_CHECK_ROWS:-10000000 100000000}
WHEELS=${GPU_WHEELS:-wheels}
mkdir -p "$DEST"
exec > >(tee "$DEST/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
CUDA_OK='import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'

echo "== set-up ($(date -u +%FT%TZ))"
if [ -x .venv/bin/python ] && .venv/bin/python -c "$CUDA_OK" 2>/dev/null; then
    PY=.venv/bin/python
elif [ -d "$WHEELS" ]; then
    PY=${GPU_PYTHON:-python3}
    SITE=${GPU_SITE:-/tmp/regflow-site}
    # No dependency resolution: wheels/ holds the pinned closure less what the image has.
    "$PY" -m pip install --quiet --no-index --no-deps --no-build-isolation --no-compile \
        --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl .
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    make setup
    PY=.venv/bin/python
fi
if ! "$PY" -c "$CUDA_OK" && [ -z "${GPU_CHECK_ALLOW_CPU:-}" ]; then
    echo "gpu_check: $PY's torch sees no CUDA device; nothing to check here" >&2
    exit 2
fi
if [ ! -f ../shared/data/nist/certified.json ] && [ -f "$WHEELS/nist/certified.json" ]; then
    export REGFLOW_NIST_DIR
    REGFLOW_NIST_DIR="$(cd "$WHEELS/nist" && pwd)"
fi
"$PY" -c 'import torch, regflow.tasks.train as t; d = t.select_device("auto")
print("torch", torch.__version__, "CUDA", torch.version.cuda, "on", d, t.describe_device(d))'
nvidia-smi > "$DEST/nvidia-smi.txt" 2>&1 || echo "nvidia-smi: not available" > "$DEST/nvidia-smi.txt"
echo "set-up took ${SECONDS} s"

echo "== gpu tests"
set +e
timeout 240 "$PY" -m pytest -m gpu tests/gpu -v -rs --durations=5 -p no:cacheprovider 2>&1 \
    | tee "$DEST/pytest.log"
tests_rc=${PIPESTATUS[0]}
set -e
echo "gpu tests: exit ${tests_rc} after ${SECONDS} s"

echo "== GPU benchmark"
# What is left of the budget, less a margin for writing up; the benchmark skips contenders
# once past it, and `timeout` stops it 60 s later whatever it is doing (results so far stay).
budget=$(( LIMIT - SECONDS - 30 ))
if (( budget < 60 )); then budget=60; fi
set +e
# shellcheck disable=SC2086  # ROWS is a list of sizes
timeout $(( budget + 60 )) "$PY" benchmarks/gpu.py --rows $ROWS --out "$DEST" --budget "$budget"
bench_rc=$?
set -e
echo "benchmark: exit ${bench_rc}; gpu_check took ${SECONDS} s in all"
if (( tests_rc != 0 || bench_rc != 0 )); then
    exit 1
fi
