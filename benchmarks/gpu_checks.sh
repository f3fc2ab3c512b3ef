#!/usr/bin/env bash
# The engine's GPU checks in one go, for a lent CUDA machine (CI has no GPU): the store loop on
# the demo projects (CUDA, 16-mixed), MC-dropout scoring against baal in mixed and full precision,
# and whether patch training waits for its data. From the repository root:
#   WORKBENCH_SHARED_DATA=../shared/data PYTHONPATH=. bash benchmarks/gpu_checks.sh OUT_DIR
set -u
out=${1:-benchmarks/results}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
status=0
timeout 170 "$py" benchmarks/gpu_loop_check.py --out "$out/gpu_loop.json" || status=1
for precision in 16-mixed 32; do
    timeout 150 "$py" benchmarks/bench_scoring.py --device cuda --precision "$precision" \
        --threads 16 --baal-max-items 10000 --out-dir "$out" || status=1
done
timeout 150 "$py" benchmarks/bench_patch_throughput.py --shape 192 192 128 --patch 96 96 96 \
    --scans 12 --threads 16 --out "$out/patch_throughput_cuda.json" || status=1
exit $status
