#!/usr/bin/env bash
# Every GPU check of the speed issue in one call on the lent machine (see docs/performance.md):
#   bash benchmarks/gpu_checks.sh SHARED_DATA [ROUNDS] [BASELINE_SRC]
#   (SHARED_DATA: holds fashion-mnist/'s four IDX files; BASELINE_SRC: another version's src folder,
#   e.g. from `git archive COMMIT src`, whose digitnet rows then run beside in the same rounds)
# Prints the machine, runs the CUDA tests, the per-kernel probe, then the seed and best recipes' rows
# on the GPU with JAX beside digitnet. Runs from the repository root with src/ on the path: nothing
# to install where the machine already has torch, jax, optax, numpy, Pillow, scipy, matplotlib,
# safetensors, tqdm and pytest. With $OUT set (the lent machine), the whole log is kept there too.
# On 2026-11-27, with the probe's Triton sweep (now behind its --sweep) on a fresh machine compiling
# every kernel, it ran past 8 minutes; give it a generous timeout (on an H200 each benchmark row
# took about 20 s: its process, the data, JAX's compile). The idiomatic PyTorch rows (torch-idiomatic,
# torch-idiomatic-best), the graph-less rows (digitnet-eager, digitnet-best-eager) and those without
# Triton (digitnet-no-triton, ...) are slow on a GPU or change little between versions: add them to
# --only when wanted.
set -u
SHARED=${1:?give the folder holding fashion-mnist/}
ROUNDS=${2:-2}
BASELINE=${3:+--baseline-src $3}
DATA="$SHARED/fashion-mnist"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 DIGITNET_SHARED_DATA="$SHARED"
LOG=${OUT:-/tmp}/gpu_checks.log
{
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'PY'
import importlib, platform
print("python", platform.python_version())
for name in ("torch", "triton", "jax", "optax", "numpy", "PIL", "scipy", "matplotlib", "safetensors", "tqdm", "pytest"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except ImportError as exc:
        print(name, "MISSING:", exc)
PY
python3 -m pytest -q --tb=short -p no:cacheprovider tests/test_cuda.py tests/test_fastpath.py tests/test_triton_kernels.py \
    tests/test_convnet.py 2>&1 | tail -40
python3 benchmarks/gpu_step_probe.py
python3 benchmarks/gpu_cnn_probe.py --replayed
python3 benchmarks/gpu_streams_probe.py
python3 benchmarks/train_speed.py --data-dir "$DATA" --device cuda --rounds "$ROUNDS" \
    --only digitnet,digitnet-tf32,digitnet-bf16,jax-scan,jax-scan-tf32 $BASELINE
python3 benchmarks/train_speed.py --data-dir "$DATA" --device cuda --recipe best --rounds "$ROUNDS" \
    --only digitnet-best,digitnet-best-tf32,jax-scan-best,jax-scan-best-tf32 $BASELINE
echo "the convnet (written-out step, whole epochs replayed; 3 timed epochs so the median is a replayed one):"
python3 benchmarks/train_speed.py --data-dir "$DATA" --device cuda --recipe cnn --epochs 3 --rounds 1 \
    --only digitnet-cnn,digitnet-cnn-bf16,digitnet-cnn-augmented,torch-idiomatic-cnn,jax-scan-cnn,jax-scan-cnn-tf32 $BASELINE
echo "30 epochs of best, command to result (CUDA graph capture and evaluation included):"
time python3 -m digitnet train --recipe best --dataset fashion-mnist --data-dir "$DATA" --epochs 30 \
    --device cuda --no-progress --out "$(mktemp -d)/best30" | tail -2
} 2>&1 | tee "$LOG"
