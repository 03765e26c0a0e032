"""Training speed of the seed recipe (and, with --recipe best, of `best`): digitnet against its peers.

Each implementation runs as its own process, one after another, for several rounds, so machine
noise hits them alike. Every one trains the seed recipe (784-256-128-10, MSE on one-hot labels,
plain SGD lr 0.001, batch 512, fp32) on Fashion-MNIST's 60,000 training images: one warm-up
epoch, then --epochs timed epochs. The table gives the median s/epoch over all timed epochs of
all rounds, samples/s, the worker's peak RSS, ratios, and the test accuracy each reached.

    python benchmarks/train_speed.py --data-dir ../shared/data/fashion-mnist
    python benchmarks/train_speed.py --recipe best   # best: batch 128, AdamW, one-cycle, smoothed CE
    python benchmarks/train_speed.py --recipe cnn --epochs 1 --rounds 2   # the convnet (slow: ~20 s/epoch)
    python benchmarks/train_speed.py --recipe best --only digitnet-best --baseline-src /tmp/before/src
        # every digitnet row also from another source tree (`git worktree add /tmp/before <commit>`),
        # in the same rounds, as "ROW (baseline)", with a column of each row against its baseline

Rows that need TensorFlow are skipped when it is not installed (pip install -e ".[reference]").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe_cpu

ROOT = Path(__file__).resolve().parents[1]
BATCH, LR = 512, 0.001
IMPLEMENTATIONS = {
    "digitnet": "digitnet, default path (hand-fused SGD step)",
    "digitnet-bf16": "digitnet --precision bf16",
    "digitnet-tf32": "digitnet --precision tf32 (GPUs: TF32 tensor cores, TensorFlow's and JAX's GPU default)",
    "digitnet-eager": "digitnet with CUDA graphs off (DIGITNET_CUDA_GRAPHS=0): the same steps, launched one by one",
    "digitnet-no-triton": "digitnet with the Triton top layer off (DIGITNET_TRITON=0): PyTorch's kernels throughout",
    "digitnet-tf32-no-triton": "digitnet --precision tf32 with the Triton top layer off",
    "tf-eager": "tutorial's TensorFlow eager loop, as written",
    "tf-function": "the same step in tf.function",
    "keras-fit": "Keras model.fit (TensorFlow backend)",
    "torch-idiomatic": "idiomatic PyTorch (nn.Sequential, optim.SGD)",
    "jax-scan": "JAX, the whole epoch in one jitted lax.scan (shuffled on the device, last batch included)",
    "jax-scan-tf32": "the same JAX at its default matmul precision (TF32 on GPUs; on CPUs the same as above)",
    "gemm-floor-6": "floor: the step's 6 GEMMs alone (3 fwd + 3 weight-grad)",
    "gemm-floor-8": "floor: all 8 GEMMs backprop needs (+ 2 input-grad)",
    "gemm-floor-8-picked": "floor: the same 8 GEMMs, each oneDNN's or MKL's as digitnet's CPU plan picks (cpu_linear.py)",
}
BEST_IMPLEMENTATIONS = {
    "digitnet-best": "digitnet --recipe best, default path (written-out backward, fused AdamW)",
    "digitnet-best-autograd": "digitnet --recipe best through autograd (as before 2026-11-27, AdamW now fused)",
    "torch-idiomatic-best": "idiomatic PyTorch (nn.Sequential, cross_entropy, AdamW(fused=True), LambdaLR)",
    "digitnet-best-bf16": "digitnet --recipe best --precision bf16 (written-out backward, bf16 GEMMs)",
    "digitnet-best-tf32": "digitnet --recipe best --precision tf32 (GPUs only)",
    "digitnet-best-eager": "digitnet --recipe best with CUDA graphs off (DIGITNET_CUDA_GRAPHS=0)",
    "digitnet-best-no-triton": "digitnet --recipe best with the Triton top layer off (DIGITNET_TRITON=0)",
    "torch-idiomatic-best-bf16": "the idiomatic loop under torch.autocast(bfloat16)",
    "jax-scan-best": "JAX + optax (adamw, warm-up cosine, smoothed labels), one jitted lax.scan per epoch",
    "jax-scan-best-tf32": "the same JAX at its default matmul precision (TF32 on GPUs)",
    "gemm-floor-best-6": "floor: the step's 6 GEMMs alone at batch 128",
    "gemm-floor-best-8": "floor: all 8 GEMMs backprop needs at batch 128",
    "gemm-floor-best-8-picked": "floor: the same 8 GEMMs at batch 128, each as digitnet's CPU plan picks",
}
CNN_IMPLEMENTATIONS = {
    "digitnet-cnn": "digitnet --recipe cnn --augment none (CPU: channels-last, fused AdamW; GPU: written-out step, epochs replayed)",
    "torch-idiomatic-cnn": "idiomatic PyTorch, the same convnet (NCHW, AdamW(fused=True), LambdaLR)",
    "digitnet-cnn-bf16": "digitnet --recipe cnn --augment none --precision bf16",
    "digitnet-cnn-tf32": "digitnet --recipe cnn --augment none --precision tf32",
    "torch-idiomatic-cnn-bf16": "the idiomatic convnet under torch.autocast(bfloat16)",
    "digitnet-cnn-augmented": "digitnet --recipe cnn as it trains (affine, thickness, print and pairs augmentation)",
    "jax-scan-cnn": "JAX + optax, the same convnet (NHWC) and schedule, one jitted lax.scan per epoch",
    "jax-scan-cnn-tf32": "the same JAX at its default matmul and convolution precision (TF32 on GPUs)",
}
ROWS = {"tutorial": IMPLEMENTATIONS, "best": BEST_IMPLEMENTATIONS, "cnn": CNN_IMPLEMENTATIONS}
REFERENCE_ROW = {"tutorial": "digitnet", "best": "digitnet-best", "cnn": "digitnet-cnn"}
BASELINE = " (baseline)"  # the suffix of a row run from --baseline-src
FLOOR_ROW = {"tutorial": "gemm-floor-6", "best": "gemm-floor-best-6", "cnn": None}
BEST_BATCH = 128
TF_ROWS = {"tf-eager", "tf-function", "keras-fit"}
JAX_ROWS = {"jax-scan", "jax-scan-tf32", "jax-scan-best", "jax-scan-best-tf32", "jax-scan-cnn", "jax-scan-cnn-tf32"}
# on a CPU these would repeat another row, or fail (tf32)
GPU_ONLY_ROWS = {"jax-scan-tf32", "jax-scan-best-tf32", "jax-scan-cnn-tf32", "digitnet-tf32", "digitnet-best-tf32",
                 "digitnet-cnn-tf32",
                 "digitnet-eager", "digitnet-best-eager", "digitnet-no-triton", "digitnet-tf32-no-triton",
                 "digitnet-best-no-triton"}
# left out of a GPU run: oneDNN serves only CPUs, so these would repeat the MKL floor
CPU_ONLY_ROWS = {"gemm-floor-8-picked", "gemm-floor-best-8-picked"}
# left out of a CPU run unless named in --only: JAX's convnet took 351 s an epoch on a 2-core AMD EPYC
# (digitnet's 12 s; 2026-11-27, --recipe cnn --only jax-scan-cnn,digitnet-cnn --rounds 1 --epochs 1)
SLOW_ON_CPU_ROWS = {"jax-scan-cnn"}


# ----------------------------------------------------------------------------- workers
def _data(data_dir):
    from digitnet.data import load_dataset

    return load_dataset("fashion-mnist", data_dir, progress=False)


DEVICE = os.environ.get("DIGITNET_BENCH_DEVICE", "cpu")  # PyTorch rows only; set by --device


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _timed(epochs: int, run_epoch) -> list[float]:
    run_epoch()  # warm-up: first-call costs, tracing, allocator
    _sync()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        run_epoch()
        _sync()
        seconds.append(time.perf_counter() - started)
    return seconds


def worker_digitnet(data, epochs, recipe="tutorial", precision="fp32", autograd=False, graphs=True, triton=True,
                    **overrides):
    from digitnet.recipes import get_recipe
    from digitnet.training import TrainConfig, fit

    if not graphs:
        os.environ["DIGITNET_CUDA_GRAPHS"] = "0"
    if not triton:
        os.environ["DIGITNET_TRITON"] = "0"

    if autograd:
        import digitnet.training.loop as loop
        from digitnet.training.optim import AutogradStep

        loop.make_step = lambda model, recipe, total, dtype, dist: AutogradStep(model, recipe, total, dtype)
    config = TrainConfig(get_recipe(recipe, epochs=epochs + 1, **overrides), "fashion-mnist", device=DEVICE,
                         precision=precision)
    result = fit(config, data, progress=False)
    return [r.seconds for r in result.history[1:]], result.final.accuracy


def _torch_images(pixels):
    """uint8 images -> float32 (N, 784) in [-1, 1] on DEVICE, as an idiomatic script scales them."""
    import torch

    return (torch.tensor(pixels, dtype=torch.float32).reshape(-1, 784) * 2 / 255 - 1).to(DEVICE)


def _torch_mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def _torch_accuracy(model, data) -> float:
    import torch

    with torch.no_grad():
        return float((model(_torch_images(data.x_test)).argmax(1).cpu().numpy() == data.y_test).mean())


def _idiomatic_cnn():
    from torch import nn

    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def worker_torch_idiomatic_best(data, epochs, autocast=False, cnn=False):
    import contextlib
    import math

    import torch
    from torch import nn

    x, y = _torch_images(data.x_train), torch.tensor(data.y_train, dtype=torch.long).to(DEVICE)
    model = (_idiomatic_cnn() if cnn else _torch_mlp()).to(DEVICE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05, fused=True)
    total = (epochs + 1) * math.ceil(len(x) / BEST_BATCH)
    warmup = round(0.05 * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warmup if s < warmup else
                                                 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))

    def run_epoch():
        order = torch.randperm(len(x), device=DEVICE)
        for start in range(0, len(x), BEST_BATCH):
            index = order[start : start + BEST_BATCH]
            with torch.autocast(DEVICE.split(":")[0], dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
                out = model(x[index])
            loss = nn.functional.cross_entropy(out.float(), y[index], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()

    return _timed(epochs, run_epoch), _torch_accuracy(model, data)


def worker_torch_idiomatic(data, epochs):
    import torch
    from torch import nn

    x, y = _torch_images(data.x_train), torch.tensor(data.y_train, dtype=torch.long).to(DEVICE)
    model = _torch_mlp().to(DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def run_epoch():
        order = torch.randperm(len(x), device=DEVICE)
        for start in range(0, len(x), BATCH):
            index = order[start : start + BATCH]
            out = model(x[index])
            loss = ((out - nn.functional.one_hot(y[index], 10).float()) ** 2).sum() / len(index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return _timed(epochs, run_epoch), _torch_accuracy(model, data)


def _gemm_floor(data, epochs, with_input_grads, batch=BATCH):
    import torch

    x = _torch_images(data.x_train)
    w1, w2, w3 = (torch.randn(256, 784, device=DEVICE) * 0.05, torch.randn(128, 256, device=DEVICE) * 0.05,
                  torch.randn(10, 128, device=DEVICE) * 0.1)

    def run_epoch():
        for start in range(0, len(x), batch):
            xb = x[start : start + batch]
            h1 = xb @ w1.t()
            h2 = h1 @ w2.t()
            out = h2 @ w3.t()
            out.t() @ h2  # dW3
            if with_input_grads:
                g2 = out @ w3
                g2.t() @ h1  # dW2
                g1 = g2 @ w2
                g1.t() @ xb  # dW1
            else:
                h2.t() @ h1
                h1.t() @ xb

    return _timed(epochs, run_epoch), None


def _picked_gemm_floor(data, epochs, batch=BATCH):
    """The 8 GEMMs of _gemm_floor(with_input_grads=True), each in the form digitnet's step takes for that
    layer and batch size on this CPU: oneDNN's (src/digitnet/cpu_linear.py) or MKL's."""
    import torch
    from torch import nn

    from digitnet import cpu_linear

    x = _torch_images(data.x_train)
    layers = [nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)]
    weights = [torch.randn_like(layer.weight) * 0.05 for layer in layers]
    plans: dict[int, list[tuple[bool, bool]]] = {}

    def forward(k, inputs, rows):
        if plans[rows][k][0]:
            return cpu_linear.linear(inputs, weights[k], None, relu=False)
        return inputs @ weights[k].t()

    def gradients(k, grad, below, rows, flows_below):
        onednn = plans[rows][k][1]
        if onednn:
            cpu_linear.weight_gradient(grad, below)
        else:
            grad.t() @ below
        if flows_below:
            return cpu_linear.input_gradient(grad, weights[k]) if onednn else grad @ weights[k]
        return None

    def run_epoch():
        for start in range(0, len(x), batch):
            xb = x[start : start + batch]
            rows = len(xb)
            if rows not in plans:
                plans[rows] = [(cpu_linear.onednn_serves(layer, torch.float32, rows, hidden=k < 2),
                                cpu_linear.onednn_serves_gradients(layer, torch.float32, rows))
                               for k, layer in enumerate(layers)]
            h1 = forward(0, xb, rows)
            h2 = forward(1, h1, rows)
            out = forward(2, h2, rows)
            g2 = gradients(2, out, h2, rows, flows_below=True)
            g1 = gradients(1, g2, h1, rows, flows_below=True)
            gradients(0, g1, xb, rows, flows_below=False)

    return _timed(epochs, run_epoch), None


def _glorot(key, shape, fan_in: int, fan_out: int):
    import jax
    import jax.numpy as jnp
    import numpy as np

    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def _jax_mlp():
    """784-256-128-10 with ReLUs: (params, forward(params, x) -> logits) for _jax_scan."""
    import jax

    keys = jax.random.split(jax.random.PRNGKey(0), 4)  # four, as before: the same weights in any JAX's split
    shapes = [(784, 256), (256, 128), (128, 10)]
    params = [(_glorot(k, (a, b), a, b), jax.numpy.zeros(b)) for k, (a, b) in zip(keys, shapes)]

    def forward(params, xb):
        for i, (w, b) in enumerate(params):
            xb = xb @ w + b
            if i < len(params) - 1:
                xb = jax.nn.relu(xb)
        return xb

    return params, forward


def _jax_cnn():
    """digitnet's convnet (3x3 conv 32, 2x2 max-pool, ReLU, 3x3 conv 64, pool, ReLU, dense 128, ReLU,
    dense 10) as a JAX user writes it: NHWC, lax.conv_general_dilated and reduce_window."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    params = [(_glorot(keys[0], (3, 3, 1, 32), 9, 9 * 32), jnp.zeros(32)),
              (_glorot(keys[1], (3, 3, 32, 64), 9 * 32, 9 * 64), jnp.zeros(64)),
              (_glorot(keys[2], (64 * 7 * 7, 128), 64 * 7 * 7, 128), jnp.zeros(128)),
              (_glorot(keys[3], (128, 10), 128, 10), jnp.zeros(10))]

    def conv_block(xb, w, b):
        xb = jax.lax.conv_general_dilated(xb, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
        return jax.nn.relu(jax.lax.reduce_window(xb, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"))

    def forward(params, xb):
        xb = xb.reshape(-1, 28, 28, 1)
        for w, b in params[:2]:
            xb = conv_block(xb, w, b)
        hidden = jax.nn.relu(xb.reshape(len(xb), -1) @ params[2][0] + params[2][1])
        return hidden @ params[3][0] + params[3][1]

    return params, forward


def _jax_scan(data, epochs, batch: int, model, make_optimizer, loss_of):
    """Train model() = (params, forward) in JAX, the way a JAX user writes it fast: each epoch one
    jitted function that shuffles on the device and runs every full batch in a lax.scan, then the
    last batch."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    x = jnp.asarray(2 * data.x_train.reshape(-1, 784).astype(np.float32) / 255.0 - 1)
    y = jnp.asarray(data.y_train.astype(np.int32))
    n, full = len(data.y_train), len(data.y_train) // batch
    params, forward = model()
    optimizer = make_optimizer((epochs + 1) * -(-n // batch))
    state = optimizer.init(params)

    def step(carry, batch_xy):
        params, state = carry
        loss, grads = jax.value_and_grad(lambda p: loss_of(forward(p, batch_xy[0]), batch_xy[1]))(params)
        updates, state = optimizer.update(grads, state, params)
        return (jax.tree_util.tree_map(lambda p, u: p + u, params, updates), state), loss

    @jax.jit
    def epoch(params, state, key):
        order = jax.random.permutation(key, n)
        xs, ys = x[order], y[order]
        batches = (xs[: full * batch].reshape(full, batch, 784), ys[: full * batch].reshape(full, batch))
        (params, state), losses = jax.lax.scan(step, (params, state), batches)
        (params, state), _ = step((params, state), (xs[full * batch :], ys[full * batch :]))
        return params, state, losses

    carry = {"params": params, "state": state, "epoch": 0}

    def run_epoch():
        carry["epoch"] += 1
        params, state, losses = epoch(carry["params"], carry["state"], jax.random.PRNGKey(carry["epoch"]))
        jax.block_until_ready(losses)
        carry["params"], carry["state"] = params, state

    seconds = _timed(epochs, run_epoch)
    x_test = jnp.asarray(2 * data.x_test.reshape(-1, 784).astype(np.float32) / 255.0 - 1)
    predict = jax.jit(forward)
    predicted = np.concatenate([np.asarray(predict(carry["params"], x_test[i : i + 1000])).argmax(1)
                                for i in range(0, len(x_test), 1000)])
    accuracy = float((predicted == data.y_test).mean())
    return seconds, accuracy


def worker_jax_tutorial(data, epochs, precision="highest"):
    import jax
    import jax.numpy as jnp
    import optax

    def mse_sum(out, labels):
        return jnp.sum((out - jax.nn.one_hot(labels, 10)) ** 2) / out.shape[0]

    with jax.default_matmul_precision(precision):  # "highest": fp32 on GPUs too (their default is TF32)
        return _jax_scan(data, epochs, BATCH, _jax_mlp, lambda total: optax.sgd(LR), mse_sum)


def worker_jax_best(data, epochs, precision="highest", model=_jax_mlp):
    import jax
    import optax

    def smoothed_cross_entropy(out, labels):
        targets = optax.smooth_labels(jax.nn.one_hot(labels, 10), 0.1)
        return optax.softmax_cross_entropy(out, targets).mean()

    def adamw(total):
        schedule = optax.warmup_cosine_decay_schedule(0.0, 2e-3, round(0.05 * total), total)
        return optax.adamw(schedule, weight_decay=0.05)

    with jax.default_matmul_precision(precision):
        return _jax_scan(data, epochs, BEST_BATCH, model, adamw, smoothed_cross_entropy)


def _tf_setup(data):
    sys.path.insert(0, str(ROOT / "reference"))
    import tutorial_tf

    return tutorial_tf


def worker_tf(data, epochs, compiled):
    tutorial_tf = _tf_setup(data)
    import tensorflow as tf

    dataset = tutorial_tf.tutorial_dataset(data.x_train, data.y_train)
    model = tutorial_tf.tutorial_model()
    optimizer = tutorial_tf.optimizers.SGD(learning_rate=LR)
    step = tf.function(tutorial_tf.tutorial_step) if compiled else tutorial_tf.tutorial_step

    def run_epoch():
        for bx, by in dataset:
            step(model, optimizer, bx, by)

    seconds = _timed(epochs, run_epoch)
    return seconds, _tf_accuracy(model, data)


def _tf_accuracy(model, data):
    import numpy as np

    x_test = (2 * data.x_test.astype(np.float32) / 255.0 - 1).reshape(-1, 784)
    return float((model.predict(x_test, batch_size=2048, verbose=0).argmax(1) == data.y_test).mean())


def worker_keras_fit(data, epochs):
    tutorial_tf = _tf_setup(data)
    import numpy as np
    import tensorflow as tf

    x = (2 * data.x_train.astype(np.float32) / 255.0 - 1).reshape(-1, 784)
    onehot = np.eye(10, dtype=np.float32)[data.y_train]
    model = tutorial_tf.tutorial_model()
    # Keras averages the per-example loss over the batch: sum over classes / batch, as the tutorial.
    model.compile(optimizer=tutorial_tf.optimizers.SGD(learning_rate=LR),
                  loss=lambda t, o: tf.reduce_sum(tf.square(o - t), axis=-1))

    def run_epoch():
        model.fit(x, onehot, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)

    return _timed(epochs, run_epoch), _tf_accuracy(model, data)


def run_worker(name: str, data_dir: str, epochs: int) -> dict:
    data = _data(data_dir)
    workers = {
        "digitnet": lambda: worker_digitnet(data, epochs),
        "digitnet-bf16": lambda: worker_digitnet(data, epochs, precision="bf16"),
        "digitnet-tf32": lambda: worker_digitnet(data, epochs, precision="tf32"),
        "digitnet-eager": lambda: worker_digitnet(data, epochs, graphs=False),
        "digitnet-no-triton": lambda: worker_digitnet(data, epochs, triton=False),
        "digitnet-tf32-no-triton": lambda: worker_digitnet(data, epochs, precision="tf32", triton=False),
        "tf-eager": lambda: worker_tf(data, epochs, compiled=False),
        "tf-function": lambda: worker_tf(data, epochs, compiled=True),
        "keras-fit": lambda: worker_keras_fit(data, epochs),
        "torch-idiomatic": lambda: worker_torch_idiomatic(data, epochs),
        "gemm-floor-6": lambda: _gemm_floor(data, epochs, with_input_grads=False),
        "gemm-floor-8": lambda: _gemm_floor(data, epochs, with_input_grads=True),
        "gemm-floor-8-picked": lambda: _picked_gemm_floor(data, epochs),
        "jax-scan": lambda: worker_jax_tutorial(data, epochs),
        "jax-scan-tf32": lambda: worker_jax_tutorial(data, epochs, precision="default"),
        "jax-scan-best": lambda: worker_jax_best(data, epochs),
        "jax-scan-best-tf32": lambda: worker_jax_best(data, epochs, precision="default"),
        "jax-scan-cnn": lambda: worker_jax_best(data, epochs, model=_jax_cnn),
        "jax-scan-cnn-tf32": lambda: worker_jax_best(data, epochs, precision="default", model=_jax_cnn),
        "digitnet-best": lambda: worker_digitnet(data, epochs, recipe="best"),
        "digitnet-best-autograd": lambda: worker_digitnet(data, epochs, recipe="best", autograd=True),
        "torch-idiomatic-best": lambda: worker_torch_idiomatic_best(data, epochs),
        "digitnet-best-bf16": lambda: worker_digitnet(data, epochs, recipe="best", precision="bf16"),
        "digitnet-best-tf32": lambda: worker_digitnet(data, epochs, recipe="best", precision="tf32"),
        "digitnet-best-eager": lambda: worker_digitnet(data, epochs, recipe="best", graphs=False),
        "digitnet-best-no-triton": lambda: worker_digitnet(data, epochs, recipe="best", triton=False),
        "torch-idiomatic-best-bf16": lambda: worker_torch_idiomatic_best(data, epochs, autocast=True),
        "gemm-floor-best-6": lambda: _gemm_floor(data, epochs, with_input_grads=False, batch=BEST_BATCH),
        "gemm-floor-best-8": lambda: _gemm_floor(data, epochs, with_input_grads=True, batch=BEST_BATCH),
        "gemm-floor-best-8-picked": lambda: _picked_gemm_floor(data, epochs, batch=BEST_BATCH),
        "digitnet-cnn": lambda: worker_digitnet(data, epochs, recipe="cnn", augment="none"),
        "torch-idiomatic-cnn": lambda: worker_torch_idiomatic_best(data, epochs, cnn=True),
        "digitnet-cnn-bf16": lambda: worker_digitnet(data, epochs, recipe="cnn", augment="none", precision="bf16"),
        "digitnet-cnn-tf32": lambda: worker_digitnet(data, epochs, recipe="cnn", augment="none", precision="tf32"),
        "torch-idiomatic-cnn-bf16": lambda: worker_torch_idiomatic_best(data, epochs, autocast=True, cnn=True),
        "digitnet-cnn-augmented": lambda: worker_digitnet(data, epochs, recipe="cnn"),
    }
    seconds, accuracy = workers[name]()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"name": name, "seconds": seconds, "accuracy": accuracy, "peak_rss_mb": peak_mb}


# ----------------------------------------------------------------------------- driver
def hardware() -> str:
    import torch

    versions = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        versions += f", GPU {torch.cuda.get_device_name(0)}"
    try:
        import importlib.metadata as md

        versions += f", tensorflow {md.version('tensorflow-cpu')}"
    except Exception:
        pass
    return f"{describe_cpu()}; Python {platform.python_version()}; {versions}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run, after one warm-up (default 3; on a GPU the first "
                        "timed epoch captures the CUDA graph, so fewer than 3 put it into the median)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all implementations (default 3)")
    parser.add_argument("--recipe", choices=tuple(ROWS), default="tutorial",
                        help="whose rows: tutorial (default; the seed recipe), best or cnn")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(n for rows in ROWS.values() for n in rows))
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda: where the PyTorch rows run (TensorFlow rows stay on the CPU)")
    parser.add_argument("--baseline-src", help="a digitnet source tree (its src folder) whose digitnet rows run beside")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.data_dir, args.epochs)))
        return 0

    import importlib.util

    names = args.only.split(",") if args.only else list(ROWS[args.recipe])
    if args.device == "cpu" and not args.only:
        names = [n for n in names if n not in GPU_ONLY_ROWS | SLOW_ON_CPU_ROWS]
    if args.device != "cpu":
        names = [n for n in names if n not in CPU_ONLY_ROWS]
    if args.device == "cpu" and set(names) & GPU_ONLY_ROWS:
        print(f"rows for a GPU only: {', '.join(sorted(set(names) & GPU_ONLY_ROWS))}; add --device cuda", file=sys.stderr)
        return 2
    if importlib.util.find_spec("tensorflow") is None:
        names = [n for n in names if n not in TF_ROWS]
        print("tensorflow not installed: skipping", ", ".join(sorted(TF_ROWS)), file=sys.stderr)
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("optax") is None:
        names = [n for n in names if n not in JAX_ROWS]
        print("jax or optax not installed (pip install -e '.[peers]'): skipping the JAX rows", file=sys.stderr)
    if args.baseline_src:
        names += [n + BASELINE for n in names if n.startswith("digitnet")]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for round_ in range(1, args.rounds + 1):
        for name in names:
            worker = name.removesuffix(BASELINE)
            cmd = [sys.executable, __file__, "--worker", worker, "--data-dir", args.data_dir,
                   "--epochs", str(args.epochs)]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", DIGITNET_BENCH_DEVICE=args.device)
            if name != worker:  # its digitnet imported from the baseline tree, ahead of the installed one
                env["PYTHONPATH"] = str(Path(args.baseline_src).resolve())
            if name in JAX_ROWS and args.device == "cpu":
                env["JAX_PLATFORMS"] = "cpu"
            if name in TF_ROWS or args.device == "cpu":
                env["CUDA_VISIBLE_DEVICES"] = ""
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{name} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(f"round {round_} {name:16s} median {statistics.median(result['seconds']):.4g} s/epoch",
                  file=sys.stderr, flush=True)
    print_table(runs, args)
    return 0


def _paired_ratio(results: list[dict], reference: list[dict] | None) -> str:
    """The median over rounds of this row's median s/epoch over the reference row's in the same round:
    a load that comes and goes between rounds (these machines are shared) cancels out."""
    if not reference:
        return "-"
    ratios = [statistics.median(r["seconds"]) / statistics.median(ref["seconds"]) for r, ref in zip(results, reference)]
    return f"{statistics.median(ratios):.2f}"


def print_table(runs, args) -> None:
    ours, floor = runs.get(REFERENCE_ROW[args.recipe]), runs.get(FLOOR_ROW[args.recipe])
    batch = BATCH if args.recipe == "tutorial" else BEST_BATCH
    print(f"\n{args.recipe} recipe, Fashion-MNIST 60k, batch {batch}, fp32 unless named, "
          f"PyTorch rows on {args.device}; {args.rounds} rounds x {args.epochs} timed epochs after 1 warm-up; "
          "ratios are medians of per-round ratios")
    print(hardware())
    baseline = any(name.endswith(BASELINE) for name in runs)
    print(f"\n| implementation | s/epoch | slowest epoch | samples/s | peak RSS (MB) | x digitnet | x floor-6 | "
          f"test acc after {args.epochs + 1} epochs |" + (" x its baseline |" if baseline else ""))
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if baseline else ""))
    for name, results in runs.items():
        sec = statistics.median(s for r in results for s in r["seconds"])
        rss = max(r["peak_rss_mb"] for r in results)
        accuracies = [r["accuracy"] for r in results if r["accuracy"] is not None]
        acc_text = f"{100 * statistics.median(accuracies):.2f}%" if accuracies else "-"
        worker = name.removesuffix(BASELINE)
        described = next(rows[worker] for rows in ROWS.values() if worker in rows) + name[len(worker):]
        slowest = max(s for r in results for s in r["seconds"])  # a one-off cost (a CUDA graph's capture) shows here
        against_baseline = f" {_paired_ratio(results, runs.get(name + BASELINE))} |" if baseline else ""
        print(f"| {described} | {sec:.4g} | {slowest:.4g} | {60000 / sec:,.0f} | {rss:.0f} | "
              f"{_paired_ratio(results, ours)} | {_paired_ratio(results, floor)} | {acc_text} |{against_baseline}")


if __name__ == "__main__":
    raise SystemExit(main())
