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
# Run the tests outside the checkout, so the installed package (not ./framestream) is imported.
rm -rf /tmp/work && mkdir -p /tmp/work && cp -r tests pyproject.toml /tmp/work/
OUT=$(cd "$OUT" && pwd)
cd /tmp/work || exit 1
python3 -m pytest -q -p no:cacheprovider -m gpu tests/nn -rs --timeout 300 "$@" 2>&1 | tee "$OUT/pytest-gpu.txt"
