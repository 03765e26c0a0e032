"""`train --tensorboard DIR`: the run as TensorBoard shows Keras and PyTorch runs.

Per epoch: the losses, the test accuracy and the learning rate as scalars, every parameter as a
histogram, and the first layer's units as images. Written with torch.utils.tensorboard, which needs
the `tensorboard` package (the `tensorboard` extra); `tensorboard --logdir DIR` shows it.
"""

from __future__ import annotations

import os
from pathlib import Path

from digitnet.errors import ConfigError
from digitnet.inside import first_layer, scaled_per_unit

IMAGES_PER_EPOCH = 64  # first-layer units shown as images


def require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package; pip install 'digitnet[tensorboard]'") from None


class TensorBoardLog:
    """An on_epoch callback writing one TensorBoard step per epoch into log_dir/<run name>."""

    def __init__(self, log_dir: str | Path, run_name: str):
        require_tensorboard()
        # TensorBoard imports TensorFlow when it is installed; keep its start-up log off the terminal.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(log_dir) / run_name))

    def __call__(self, record, state) -> None:
        step = record.epoch
        self.writer.add_scalar("loss/train", record.train_loss, step)
        self.writer.add_scalar("loss/test", record.test_loss, step)
        self.writer.add_scalar("accuracy/test", record.test_accuracy, step)
        self.writer.add_scalar("learning_rate", record.lr, step)
        self.writer.add_scalar("seconds_per_epoch", record.seconds, step)
        for name, parameter in state.model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), step)
        layer, weights = first_layer(state.model)
        images = (scaled_per_unit(weights[:IMAGES_PER_EPOCH]) + 1) / 2  # 0.5 = zero weight
        self.writer.add_images(f"first_layer/{layer.replace(' ', '_')}", images[:, None], step, dataformats="NCHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

