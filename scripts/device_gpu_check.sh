#!/usr/bin/env bash
# Run framestream's GPU tests on a CUDA machine that has Python, NumPy and CuPy but no
# network: the remaining dependencies travel as wheels in .whl/ (see the device notes in
# the issue closing notes). Results land in $OUT (or ./gpu-results).
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)" | tee -a "$OUT/gpu.txt"
python3 -c "import numba; print('numba', numba.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"
OUT=$(cd "$OUT" && pwd)
REPO=$(pwd)
# The GPU benchmark first (framestream on gpu(0) against PyTorch CUDA, same nets and batch).
(cd "$REPO" && timeout "${BENCH_TIMEOUT:-200}" python3 bench/gpu_training.py "$OUT/gpu_training.json") \
    2>&1 | tee "$OUT/gpu_training.txt"
# Run the tests outside the checkout, so the installed package (not ./framestream) is imported.
rm -rf /tmp/work && mkdir -p /tmp/work && cp -r tests scripts pyproject.toml /tmp/work/
cd /tmp/work || exit 1
timeout "${TEST_TIMEOUT:-330}" python3 -m pytest -q -p no:cacheprovider -m gpu tests/nn -rs \
    --timeout 300 --durations=10 "$@" 2>&1 | tee "$OUT/pytest-gpu.txt"
