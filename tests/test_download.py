"""The downloader against a real HTTP server on 127.0.0.1 serving real IDX files."""

import gzip
import shutil

import numpy as np
import pytest

from digitnet.data.datasets import cache_dir, load_dataset
from digitnet.data.download import download_file
from digitnet.data.sources import FASHION_MNIST, MNIST
from digitnet.errors import DataError, DownloadError

LABELS = MNIST.files["test_labels"]


@pytest.fixture
def good_mirror(tmp_path, mnist_t10k_dir, http_server):
    folder = tmp_path / "good"
    shutil.copytree(mnist_t10k_dir, folder)
    return http_server(folder)


@pytest.fixture
def corrupt_mirror(tmp_path, mnist_t10k_dir, http_server):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    raw = bytearray(gzip.decompress((mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # a valid label, a wrong file
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    return http_server(folder)


def test_good_file_is_downloaded_and_verified(tmp_path, good_mirror):
    path, data = download_file(LABELS, tmp_path / "cache", (good_mirror,), progress=False)
    assert path == tmp_path / "cache" / "t10k-labels-idx1-ubyte.gz"
    assert len(data) == 10008
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_corrupt_file_is_rejected_removed_and_next_mirror_used(tmp_path, corrupt_mirror, good_mirror):
    cache = tmp_path / "cache"
    path, _ = download_file(LABELS, cache, (corrupt_mirror, good_mirror), progress=False)
    assert path.is_file() and [p.name for p in cache.iterdir()] == [path.name]


def test_corrupt_only_mirror_leaves_nothing(tmp_path, corrupt_mirror):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="failed verification"):
        download_file(LABELS, cache, (corrupt_mirror,), progress=False)
    assert list(cache.iterdir()) == []


def test_first_mirror_down_second_used(tmp_path, good_mirror, http_server):
    missing = http_server(tmp_path)  # answers 404 for every file
    path, _ = download_file(LABELS, tmp_path / "cache", ("http://127.0.0.1:9/", missing, good_mirror), progress=False)
    assert path.is_file()


def test_offline_error_lists_every_attempt(tmp_path, http_server):
    missing = http_server(tmp_path)
    with pytest.raises(DownloadError) as info:
        download_file(LABELS, tmp_path / "cache", ("http://127.0.0.1:9/", missing), progress=False)
    message = str(info.value)
    assert "127.0.0.1:9/t10k-labels-idx1-ubyte.gz" in message and "(HTTP 404)" in message
    assert "\n" not in message


def test_load_dataset_downloads_into_cache_then_reuses_it(tmp_path, fashion_dir, http_server, monkeypatch):
    monkeypatch.setenv("DIGITNET_MIRRORS", http_server(fashion_dir))
    first = load_dataset("fashion-mnist", progress=False)
    cached = sorted(p.name for p in (cache_dir() / "datasets" / "fashion-mnist").iterdir())
    assert cached == sorted(f"{f.name}.gz" for f in FASHION_MNIST.files.values())
    monkeypatch.setenv("DIGITNET_MIRRORS", "http://127.0.0.1:9/")  # offline now: the cache must serve
    second = load_dataset("fashion-mnist", progress=False)
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_corrupt_cache_file_is_replaced(fashion_dir, http_server, monkeypatch):
    monkeypatch.setenv("DIGITNET_MIRRORS", http_server(fashion_dir))
    load_dataset("fashion-mnist", progress=False)
    cached = cache_dir() / "datasets" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    cached.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x03"))
    data = load_dataset("fashion-mnist", progress=False)
    assert len(data.y_test) == 10000


def test_offline_without_local_copy_gives_both_fixes():
    with pytest.raises(DataError) as info:
        load_dataset("mnist", progress=False)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "--data-dir DIR" in message and "DIGITNET_DATA" in message and "internet" in message
