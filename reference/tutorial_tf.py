"""The tutorial's own TensorFlow code (../shared/seed/tutorial.txt), extended from one step to N epochs.

Every line that computes is the tutorial's: `2 * x / 255. - 1`, tf.data batches of 512 in the
data set's order, keras.Sequential of three layers.Dense, tf.GradientTape, the loss
`reduce_sum(square(out - one_hot(y))) / batch`, optimizers.SGD(learning_rate=0.001).
Added around it: start from given initial weights, run N epochs, record every step's loss
and the final weights. `--variant` makes deliberately wrong versions (loss divided by 10,
biases left out) so the parity test can show that its tolerance catches such mistakes.

    python reference/tutorial_tf.py --data data.npz --init init.npz --epochs 2 --out tf.npz

data.npz: x (uint8, N x 28 x 28), y (uint8, N). init.npz: kernel0, bias0, kernel1, ... in
Keras layout (kernel is inputs x outputs). out: losses (float32, one per step), kernel*, bias*.
Needs the optional extra: pip install -e ".[reference]".
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers, optimizers  # noqa: E402

VARIANTS = ("tutorial", "loss-div-10", "no-bias")


def tutorial_dataset(x_uint8: np.ndarray, y_uint8: np.ndarray, batch_size: int = 512):
    x = 2 * tf.convert_to_tensor(x_uint8, dtype=tf.float32) / 255. - 1  # 转换为浮点张量，并缩放到-1~1
    y = tf.convert_to_tensor(y_uint8, dtype=tf.int32)  # 转换为整形张量
    train_dataset = tf.data.Dataset.from_tensor_slices((x, y))  # 构建数据集对象
    return train_dataset.batch(batch_size)  # 批量训练


def tutorial_model(use_bias: bool = True, hidden=(256, 128)):
    model = keras.Sequential([  # 3 个非线性层的嵌套模型
        layers.Dense(hidden[0], activation='relu', use_bias=use_bias),  # 隐藏层 1
        layers.Dense(hidden[1], activation='relu', use_bias=use_bias),  # 隐藏层 2
        layers.Dense(10, use_bias=use_bias)])  # 输出层，输出节点数为 10
    model.build((None, 28 * 28))
    return model


def tutorial_step(model, optimizer, x, y, loss_divisor: float = 1.0):
    with tf.GradientTape() as tape:  # 构建梯度记录环境
        x = tf.reshape(x, (-1, 28 * 28))  # 打平操作，[b, 28, 28] => [b, 784]
        out = model(x)  # Step1. 得到模型输出 output [b, 784] => [b, 10]
        y_onehot = tf.one_hot(y, depth=10)  # [b] => [b, 10]
        loss = tf.square(out - y_onehot)  # 计算差的平方和，[b, 10]
        loss = tf.reduce_sum(loss) / x.shape[0]  # 计算每个样本的平均误差，[b]
        if loss_divisor != 1.0:
            loss = loss / loss_divisor
    grads = tape.gradient(loss, model.trainable_variables)  # Step3. 计算参数的梯度
    optimizer.apply_gradients(zip(grads, model.trainable_variables))  # w' = w - lr * grad
    return loss


def run(x, y, epochs: int, init: dict | None, variant: str = "tutorial", lr: float = 0.001):
    use_bias = variant != "no-bias"
    model = tutorial_model(use_bias)
    if init is not None:
        weights = []
        for i in range(3):
            weights.append(init[f"kernel{i}"])
            if use_bias:
                weights.append(init[f"bias{i}"])
        model.set_weights(weights)
    optimizer = optimizers.SGD(learning_rate=lr)
    train_dataset = tutorial_dataset(x, y)
    divisor = 10.0 if variant == "loss-div-10" else 1.0
    losses = []
    for _ in range(epochs):
        for bx, by in train_dataset:
            losses.append(float(tutorial_step(model, optimizer, bx, by, divisor)))
    result = {"losses": np.array(losses, dtype=np.float32)}
    dense = [layer for layer in model.layers]
    for i, layer in enumerate(dense):
        result[f"kernel{i}"] = layer.kernel.numpy()
        result[f"bias{i}"] = layer.bias.numpy() if use_bias else np.zeros(layer.units, np.float32)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="npz with x (uint8 N x 28 x 28) and y (uint8 N)")
    parser.add_argument("--init", help="npz with kernel0..2, bias0..2 (Keras layout); default: Keras' own init")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--variant", choices=VARIANTS, default="tutorial",
                        help="tutorial (default), or a deliberately wrong version for negative controls")
    parser.add_argument("--out", required=True, help="npz to write: losses, kernel*, bias*")
    args = parser.parse_args()
    data = np.load(args.data)
    init = dict(np.load(args.init)) if args.init else None
    result = run(data["x"], data["y"], args.epochs, init, args.variant)
    np.savez(args.out, **result)
    print(f"{len(result['losses'])} steps, last loss {result['losses'][-1]:.6f}, tensorflow {tf.__version__}")


if __name__ == "__main__":
    main()
