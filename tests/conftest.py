import gzip
import http.server
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
import pytest
import torch

from digitnet.data.idx import idx_bytes

# Without a GPU, Triton's kernels (training/triton_tail.py) can only run in its interpreter, which
# must be chosen before Triton is first imported (tests/test_triton_kernels.py).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DIGITNET_SHARED_DATA", ROOT.parent / "shared" / "data"))
FASHION_DIR = SHARED_DATA / "fashion-mnist"
MNIST_T10K_DIR = SHARED_DATA / "mnist-t10k"
# Every subprocess timeout and wait deadline is multiplied by this: a loaded machine (CI sets 4)
# makes the suite slower, never red.
TIME_FACTOR = float(os.environ.get("DIGITNET_TEST_TIME_FACTOR", "1"))
# Every file of a finished run folder.
RUN_FILES = {"config.json", "metrics.csv", "model.safetensors", "checkpoint.safetensors", "curves.png",
             "confusion.png", "misclassified.png", "per_class.csv", "summary.md", ".lock"}


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared/data beside the repository")
    return path


@pytest.fixture
def fashion_dir() -> Path:
    return require(FASHION_DIR)


@pytest.fixture
def mnist_t10k_dir() -> Path:
    return require(MNIST_T10K_DIR)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache and no network mirrors unless it sets them."""
    home = tmp_path_factory.mktemp("digitnet-home")
    monkeypatch.setenv("DIGITNET_HOME", str(home))
    monkeypatch.delenv("DIGITNET_DATA", raising=False)
    monkeypatch.setenv("DIGITNET_MIRRORS", "http://127.0.0.1:9/")  # discard port: refused at once
    return home


def random_batches(sizes, seed: int = 0, device="cpu") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A batch of random scaled pixels in [-1, 1) and labels for each size, from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    batches = [(torch.rand(n, 784, generator=gen) * 2 - 1, torch.randint(0, 10, (n,), generator=gen)) for n in sizes]
    return [(x.to(device), y.to(device)) for x, y in batches]


def with_no_digit_labels(batches, recipe) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches with every third label NO_DIGIT where the recipe's augmentation makes pairs (what
    its steps are then handed), else as they are."""
    if "pairs" not in recipe.augment:
        return batches
    from digitnet.settings import NO_DIGIT

    return [(x, torch.where(torch.arange(len(y), device=y.device) % 3 == 0, NO_DIGIT, y)) for x, y in batches]


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def synthetic_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """Start a real HTTP server on 127.0.0.1 serving a folder; yields a function folder -> base URL."""
    servers = []

    def serve(folder: Path) -> str:
        handler = lambda *a, **kw: _QuietHandler(*a, directory=str(folder), **kw)  # noqa: E731
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory) -> Path:
    """A best-recipe model trained here on the first 8,000 MNIST test digits (tested on the last 2,000)."""
    from digitnet.runs import train

    out = tmp_path_factory.mktemp("mnist-run") / "run"
    train("best", "mnist-10k", data_dir=require(MNIST_T10K_DIR), epochs=10, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def mnist_test_digits():
    """The last 2,000 MNIST test digits (the held-out part of mnist-10k) and their labels."""
    from digitnet.data import load_dataset

    data = load_dataset("mnist-10k", require(MNIST_T10K_DIR), progress=False)
    return data.x_test, data.y_test


def learnable_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images a network can learn in a second: class k is a bright 6x6 block at one of ten
    places, with noise. Small synthetic data for the fast tier."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        top, left = 4 + 10 * (label // 5), 2 + 5 * (label % 5)
        image[top : top + 6, left : left + 6] = rng.integers(180, 256, (6, 6))
    return images, labels


@pytest.fixture(scope="session")
def synthetic_data():
    """A small in-memory Dataset (600 train, 200 test) of learnable_digits."""
    from digitnet.data import Dataset

    x, y = learnable_digits(800, seed=1)
    return Dataset("synthetic", x[:600], y[:600], x[600:], y[600:], tuple(str(i) for i in range(10)))


@pytest.fixture
def hand_over_data(monkeypatch, synthetic_data):
    """resume() reloads a run's data by name; a synthetic set has none, so hand it over."""
    import digitnet.runs.api as api

    monkeypatch.setattr(api, "load_run_data", lambda *args, **kwargs: synthetic_data)


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory, synthetic_data) -> Path:
    """A best-recipe run folder trained in about a second on synthetic_data."""
    from digitnet.runs import train

    out = tmp_path_factory.mktemp("synthetic-run") / "run"
    train("best", synthetic_data, epochs=3, out=out, progress=False)
    return out


class Crash(Exception):
    """Raised by crash_after's callback: a training process dying after an epoch."""


def crash_after(epoch: int):
    """An on_epoch callback that raises Crash once `epoch` has finished (and been saved)."""
    def on_epoch(record, state):
        if record.epoch == epoch:
            raise Crash

    return on_epoch


def strokes(size: tuple[int, int], lines: list[list[tuple[int, int]]], width: int = 9) -> Image.Image:
    """Lines of ink (each a list of points) drawn black on a white image of size: a digit written by hand."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for line in lines:
        draw.line(line, fill=0, width=width, joint="curve")
    return image
