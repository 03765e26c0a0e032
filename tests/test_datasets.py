import gzip
import shutil

import numpy as np
import pytest

from conftest import synthetic_split, write_idx
from digitnet import load_fashion_mnist
from digitnet.data.datasets import check_pair, load_dataset
from digitnet.data.idx import read_idx
from digitnet.errors import DataError


def test_fashion_mnist_contract_matches_keras(fashion_dir):
    (x, y), (x_test, y_test) = load_fashion_mnist(data_dir=fashion_dir, progress=False)
    assert (x.shape, y.shape, x_test.shape, y_test.shape) == ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    assert {a.dtype for a in (x, y, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_mnist_10k_splits_the_real_test_digits(mnist_t10k_dir):
    data = load_dataset("mnist-10k", mnist_t10k_dir, progress=False)
    assert data.x_train.shape == (8000, 28, 28) and data.x_test.shape == (2000, 28, 28)
    # The first MNIST test digits are 7, 2, 1, 0, 4 and the last is a 6.
    assert data.y_train[:5].tolist() == [7, 2, 1, 0, 4] and data.y_test[-1] == 6
    assert data.files["t10k-images-idx3-ubyte"]["sha256"].startswith("0fa7898d")


def test_plain_files_and_env_variable(tmp_path, mnist_t10k_dir, monkeypatch):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((mnist_t10k_dir / f"{name}.gz").read_bytes()))
    monkeypatch.setenv("DIGITNET_DATA", str(tmp_path))
    data = load_dataset("mnist-10k", progress=False)
    assert len(data.y_train) + len(data.y_test) == 10000


def test_a_flipped_byte_fails_verification(tmp_path, mnist_t10k_dir):
    shutil.copy(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    raw = bytearray(gzip.decompress((mnist_t10k_dir / "t10k-images-idx3-ubyte.gz").read_bytes()))
    raw[5000] ^= 0x01
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: SHA-256 .* corrupt or not the original"):
        load_dataset("mnist-10k", tmp_path, progress=False)


def test_missing_files_in_data_dir_are_named(tmp_path):
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte\\[.gz\\], train-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", tmp_path, progress=False)
    with pytest.raises(DataError, match="no such folder"):
        load_dataset("mnist", tmp_path / "absent", progress=False)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_dataset("cifar")


def test_synthetic_pair_reads_gzipped_and_plain(tmp_path):
    images, labels = synthetic_split(7)
    got = read_idx(write_idx(tmp_path / "i.gz", images, True)), read_idx(write_idx(tmp_path / "l", labels))
    np.testing.assert_array_equal(got[0], images)
    np.testing.assert_array_equal(got[1], labels)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8), r"shape \(N, 28, 28\)"),
        (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "expected uint8 images"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros((3, 1), np.uint8), "1-D uint8 label"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8), "3 images but .* 4 labels"),
        (np.zeros((3, 28, 28), np.uint8), np.array([1, 10, 2], np.uint8), "label 10 at index 1 is outside 0-9"),
    ],
)
def test_pair_checks(images, labels, message):
    with pytest.raises(DataError, match=message):
        check_pair(images, labels, "imgs", "labs")


def test_fashion_mnist_found_in_the_debian_package_folder(tmp_path, fashion_dir, monkeypatch):
    import dataclasses

    from digitnet.data import datasets

    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    shutil.copytree(fashion_dir, debian)
    patched = dataclasses.replace(datasets.SOURCES["fashion-mnist"], system_dirs=(str(debian),))
    monkeypatch.setitem(datasets.SOURCES, "fashion-mnist", patched)
    data = load_dataset("fashion-mnist", progress=False)  # no --data-dir, no network: the package copy
    assert data.files["train-images-idx3-ubyte"]["path"].startswith(str(debian))
