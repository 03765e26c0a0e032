"""Time to result: from the command to the final line, not just the epochs.

    python benchmarks/time_to_result.py [--data-dir ../shared/data/fashion-mnist] [--epochs 30] [--rounds 1]
        [--baseline-src DIR]   # e.g. DIR=/tmp/before/src after `git worktree add /tmp/before <commit>`

Runs, each as a fresh process, the tutorial recipe (784-256-128-10, MSE on one-hot labels, SGD
0.001, batch 512) for --epochs epochs on Fashion-MNIST with the test split evaluated every epoch:

  digitnet train     the CLI, writing its run folder (checkpoints, metrics, plots, summary)
  tutorial TF loop   the tutorial's GradientTape loop, plus a test evaluation per epoch
  Keras fit          model.fit(..., validation_data=test)

and prints the wall time, the time until the first epoch was under way (digitnet: its first
table row's time less that epoch's training and evaluation seconds; the peers: the time their
first batch started, which they print), and for digitnet the wall time over its pure training
time (the sum of metrics.csv's seconds column). With --baseline-src, digitnet from that source
tree runs too, in the same rounds, as the row "digitnet train (baseline)".
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe_cpu

ROOT = Path(__file__).resolve().parents[1]

PEER_COMMON = """
import gzip, os, sys, time
STARTED = float(sys.argv[3])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers, optimizers
def idx(name):
    path = os.path.join(sys.argv[1], name)
    raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)
x, y = idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte")
xt, yt = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")
epochs = int(sys.argv[2])
model = keras.Sequential([layers.Dense(256, activation="relu"), layers.Dense(128, activation="relu"), layers.Dense(10)])
def scale(a):
    return 2 * tf.convert_to_tensor(a.reshape(len(a), 784), dtype=tf.float32) / 255. - 1
"""

TUTORIAL_LOOP = PEER_COMMON + """
train = tf.data.Dataset.from_tensor_slices((scale(x), tf.convert_to_tensor(y, dtype=tf.int32))).batch(512)
xt_s = scale(xt)
optimizer = optimizers.SGD(learning_rate=0.001)
print(f"first batch {time.time() - STARTED:.3f}", flush=True)
for epoch in range(epochs):
    for bx, by in train:
        with tf.GradientTape() as tape:
            out = model(bx)
            loss = tf.reduce_sum(tf.square(out - tf.one_hot(by, depth=10))) / bx.shape[0]
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    accuracy = float(np.mean(np.argmax(model(xt_s).numpy(), axis=1) == yt))
    print(f"epoch {epoch + 1} accuracy {accuracy:.4f}", flush=True)
"""

KERAS_FIT = PEER_COMMON + """
def mse_sum(y_true, y_pred):
    return tf.reduce_sum(tf.square(y_pred - tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), 10)), axis=-1)
model.compile(optimizer=optimizers.SGD(learning_rate=0.001), loss=mse_sum, metrics=["accuracy"])
class First(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0 and not hasattr(self, "seen"):
            self.seen = True
            print(f"first batch {time.time() - STARTED:.3f}", flush=True)
model.fit(scale(x), y, batch_size=512, epochs=epochs, shuffle=False, verbose=0,
          validation_data=(scale(xt), yt), callbacks=[First()])
print("done", flush=True)
"""


def _run(command: list[str], env: dict | None = None) -> tuple[float, list[tuple[float, str]]]:
    started = time.time()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    lines = [(time.time() - started, line.rstrip()) for line in proc.stdout]
    if proc.wait() != 0:
        raise SystemExit(f"{command[:3]} failed")
    return time.time() - started, lines


def digitnet_row(data_dir: str, epochs: int, src: str | None = None) -> dict:
    env = None if src is None else dict(os.environ, PYTHONPATH=src)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        wall, lines = _run([sys.executable, "-m", "digitnet", "train", "--dataset", "fashion-mnist", "--data-dir",
                            data_dir, "--epochs", str(epochs), "--out", str(run), "--no-progress"], env)
        with open(run / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    first_row = next(t for t, line in lines if line.strip().startswith("1 "))
    first = rows[0]
    under_way = first_row - float(first["seconds"]) - float(first["eval_seconds"])
    training = sum(float(r["seconds"]) for r in rows)
    return {"wall": wall, "under_way": under_way, "training": training,
            "accuracy": float(rows[-1]["test_accuracy"])}


def peer_row(script: str, data_dir: str, epochs: int) -> dict:
    started = time.time()
    wall, lines = _run([sys.executable, "-c", script, data_dir, str(epochs), repr(started)])
    under_way = next(float(line.split()[-1]) for _, line in lines if line.startswith("first batch"))
    return {"wall": wall, "under_way": under_way}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", help="comma-separated subset of: digitnet, tutorial, keras")
    parser.add_argument("--baseline-src", help="a digitnet source tree (its src folder) to run beside this one")
    args = parser.parse_args()
    chosen = set((args.only or "digitnet,tutorial,keras").split(","))
    cpu = describe_cpu()
    print(f"# {time.strftime('%Y-%m-%d')}, {cpu}, {args.epochs} epochs of the tutorial recipe "
          f"on Fashion-MNIST, test split evaluated every epoch, {args.rounds} round(s)")
    results: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        if args.baseline_src:
            results.setdefault("digitnet train (baseline)", []).append(
                digitnet_row(args.data_dir, args.epochs, str(Path(args.baseline_src).resolve())))
        if "digitnet" in chosen:
            results.setdefault("digitnet train", []).append(digitnet_row(args.data_dir, args.epochs))
        if "tutorial" in chosen:
            results.setdefault("tutorial TF loop", []).append(peer_row(TUTORIAL_LOOP, args.data_dir, args.epochs))
        if "keras" in chosen:
            results.setdefault("Keras fit", []).append(peer_row(KERAS_FIT, args.data_dir, args.epochs))
    print("| program | wall s | first epoch under way after s | wall / pure training | wall - training, each round (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        best = min(rows, key=lambda r: r["wall"])
        ratio = f"{best['wall'] / best['training']:.2f} ({best['training']:.1f} s training)" if "training" in best else "-"
        outside = ", ".join(f"{r['wall'] - r['training']:.2f}" for r in rows) if "training" in best else "-"
        print(f"| {name} | {best['wall']:.1f} | {best['under_way']:.2f} | {ratio} | {outside} |")


if __name__ == "__main__":
    main()
