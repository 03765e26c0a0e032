"""Where each data set comes from and what its files must hash to.

Hashes are SHA-256 of the *decompressed* IDX bytes, so a recompressed copy (Debian's
dataset-fashion-mnist, the copies in ../shared/data) verifies and a flipped byte does not.
MNIST's training-split hashes are the decompressed digests that several independent
projects publish beside the files whose published .gz SHA-256 are
440fcabf...3609 (train images) and 3552534a...255c (train labels).
"""

from __future__ import annotations

from dataclasses import dataclass

FILE_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class IdxFile:
    name: str  # the file's name without .gz, as on every mirror
    sha256: str  # of the decompressed bytes
    size: int  # decompressed bytes


@dataclass(frozen=True)
class DatasetSource:
    name: str
    files: dict[str, IdxFile]  # keyed by FILE_KEYS
    mirrors: tuple[str, ...]  # base URLs tried in order; each serves "<name>.gz"
    system_dirs: tuple[str, ...] = ()  # folders a distribution package installs into
    class_names: tuple[str, ...] = tuple(str(i) for i in range(10))


MNIST = DatasetSource(
    name="mnist",
    files={
        "train_images": IdxFile(
            "train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016
        ),
        "train_labels": IdxFile(
            "train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008
        ),
        "test_images": IdxFile(
            "t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016
        ),
        "test_labels": IdxFile(
            "t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008
        ),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's first mirror
        "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow Datasets'
        "https://yann.lecun.com/exdb/mnist/",  # the original; answers 404 today, tried last
    ),
)

FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    files={
        "train_images": IdxFile(
            "train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016
        ),
        "train_labels": IdxFile(
            "train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008
        ),
        "test_images": IdxFile(
            "t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016
        ),
        "test_labels": IdxFile(
            "t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008
        ),
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # torchvision's
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # Keras'
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
)

SOURCES = {s.name: s for s in (MNIST, FASHION_MNIST)}


def known_file(sha256: str) -> str | None:
    """"Fashion-MNIST's t10k-images-idx3-ubyte" for the digest of a file some data set here has."""
    for source in SOURCES.values():
        for idx in source.files.values():
            if idx.sha256 == sha256:
                return f"{source.name}'s {idx.name}"
    return None
