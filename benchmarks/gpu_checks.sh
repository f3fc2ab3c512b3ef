#!/usr/bin/env bash
# The engine's GPU checks in one go, for a lent CUDA machine (CI has no GPU): the store loop on
# the demo projects (CUDA, 16-mixed), MC-dropout scoring against baal in mixed and full precision
# at the CPU benchmark's batch sizes (512 / 64) and at 4096 for both, 3D scoring per precision,
# whether patch training waits for its data (patches cut in the training process, then in the
# recipe's workers), what keyed dropout masks cost a 3D U-Net, what test-time flips cost and
# buy in segmentation scoring, and the typical cold start's encoder on CUDA (seeded trainings
# repeat bit for bit; what its trunk buys a classifier).
# From the repository root:
#   WORKBENCH_SHARED_DATA=../shared/data PYTHONPATH=. bash benchmarks/gpu_checks.sh OUT_DIR
set -u
out=${1:-benchmarks/results}
py=${PYTHON:-python3}
mkdir -p "$out/b512" "$out/b4096"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
status=0
timeout 170 "$py" benchmarks/gpu_loop_check.py --out "$out/gpu_loop.json" || status=1
timeout 200 "$py" benchmarks/gpu_ssl_check.py \
    --npz "${WORKBENCH_SHARED_DATA:-../shared/data}/medmnist/pneumoniamnist.npz" \
    --out "$out/ssl_cuda.json" || status=1
for precision in 16-mixed 32; do
    timeout 150 "$py" benchmarks/bench_scoring.py --device cuda --precision "$precision" \
        --threads 16 --baal-max-items 10000 --out-dir "$out/b512" || status=1
    timeout 150 "$py" benchmarks/bench_scoring.py --device cuda --precision "$precision" \
        --threads 16 --baal-max-items 10000 --batch-size 4096 --baal-batch-size 4096 \
        --out-dir "$out/b4096" || status=1
done
timeout 150 "$py" benchmarks/bench_scoring_precision.py --device cuda --shape 256 256 160 \
    --patch 96 96 96 --out "$out/scoring_precision_cuda.json" || status=1
timeout 200 "$py" benchmarks/bench_patch_throughput.py --shape 192 192 128 --patch 96 96 96 \
    --scans 12 --epochs 3 --threads 16 --workers 0 -1 \
    --out "$out/patch_throughput_cuda.json" || status=1
timeout 60 "$py" benchmarks/bench_keyed_dropout.py --device cuda \
    --out "$out/keyed_dropout_cuda.json" || status=1
timeout 240 "$py" benchmarks/bench_segmentation_tta.py --threads 16 \
    --out "$out/segmentation_tta_cuda.json" || status=1
exit $status
