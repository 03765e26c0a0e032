#!/usr/bin/env bash
# Every GPU check of the speed issue in one call on the lent machine (see docs/performance.md):
#   bash benchmarks/gpu_checks.sh DATA_DIR    (DATA_DIR: Fashion-MNIST's four IDX files)
# Prints the machine, runs the CUDA tests, then the seed and best recipes' rows on the GPU with
# JAX beside digitnet. Runs from the repository root with src/ on the path: nothing to install
# where the machine already has torch, jax, optax, numpy, Pillow, scipy, safetensors and tqdm.
set -u
DATA=${1:?give the folder holding Fashion-MNIST\'s IDX files}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python - <<'PY'
import importlib, platform
print("python", platform.python_version())
for name in ("torch", "jax", "optax", "numpy", "PIL", "scipy", "safetensors", "tqdm", "pytest"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except ImportError as exc:
        print(name, "MISSING:", exc)
PY
python -m pytest -q -x -p no:cacheprovider tests/test_cuda.py tests/test_fastpath.py 2>&1 | tail -5
python benchmarks/train_speed.py --data-dir "$DATA" --device cuda --rounds 3 \
    --only digitnet,digitnet-bf16,torch-idiomatic,jax-scan,jax-scan-tf32,gemm-floor-6,gemm-floor-8
python benchmarks/train_speed.py --data-dir "$DATA" --device cuda --recipe best --rounds 3 \
    --only digitnet-best,digitnet-best-bf16,torch-idiomatic-best,jax-scan-best
