#!/usr/bin/env bash
# GPU checks of framestream.nn.distributed (scripts/device_cluster_check.py) and GPU step
# times (scripts/cluster_scaling.py --device gpu) on a CUDA machine with Python, NumPy and
# CuPy but no network: the other dependencies travel as wheels in .whl/ (as for
# scripts/device_gpu_check.sh). Results land in $OUT (or ./gpu-results).
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPO=$(pwd)
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
cd /tmp || exit 1  # import the installed package, not the checkout's framestream/
python3 "$REPO/scripts/device_cluster_check.py" --device gpu 2>&1 | tee "$OUT/checks.txt"
python3 "$REPO/scripts/cluster_scaling.py" --device gpu --workers 0 1 2 --steps 60 \
    --json "$OUT/scaling_gpu.json" 2>&1 | tee "$OUT/scaling_gpu.txt"
