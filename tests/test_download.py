"""The downloader against a real HTTP server on 127.0.0.1 serving real IDX files."""

import gzip
import http.server
import shutil
import threading
import time

import numpy as np
import pytest

from digitnet.data.datasets import BackgroundLoad, cache_dir, load_dataset
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
    assert message == (f"could not download t10k-labels-idx1-ubyte.gz: 127.0.0.1:9: [Errno 111] Connection refused; "
                       f"{missing.split('//')[1].rstrip('/')}: HTTP 404")


def test_load_dataset_downloads_into_cache_then_reuses_it(tmp_path, fashion_dir, http_server, monkeypatch):
    monkeypatch.setenv("DIGITNET_MIRRORS", http_server(fashion_dir))
    first = load_dataset("fashion-mnist", progress=False)
    cached = sorted(p.name for p in (cache_dir() / "datasets" / "fashion-mnist").iterdir())
    assert cached == sorted(f"{f.name}.gz" for f in FASHION_MNIST.files.values())
    monkeypatch.setenv("DIGITNET_MIRRORS", "http://127.0.0.1:9/")  # offline now: the cache must serve
    second = load_dataset("fashion-mnist", progress=False)
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_a_background_load_reads_only_what_is_here(fashion_dir, http_server, monkeypatch):
    """BackgroundLoad (what `digitnet train` reads while torch imports) gives the data set that is on
    this machine, and None where it is not: it downloads nothing, leaving that to the usual load."""
    monkeypatch.setenv("DIGITNET_MIRRORS", http_server(fashion_dir))
    assert BackgroundLoad("fashion-mnist", None).result() is None
    assert not (cache_dir() / "datasets" / "fashion-mnist").exists()
    loaded = load_dataset("fashion-mnist", progress=False)
    again = BackgroundLoad("fashion-mnist", None).result()
    np.testing.assert_array_equal(again.x_train, loaded.x_train)
    np.testing.assert_array_equal(again.y_test, loaded.y_test)
    assert again.files == loaded.files
    from_folder = BackgroundLoad("fashion-mnist", fashion_dir).result()
    np.testing.assert_array_equal(from_folder.x_test, loaded.x_test)


def test_local_only_leaves_a_corrupt_cache_file_as_it_is(fashion_dir, http_server, monkeypatch, capsys):
    """local_only neither repairs nor prints: the usual load after it does (and says so once)."""
    monkeypatch.setenv("DIGITNET_MIRRORS", http_server(fashion_dir))
    load_dataset("fashion-mnist", progress=False)
    path = cache_dir() / "datasets" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.decompress(path.read_bytes()))
    labels[50] = (labels[50] + 1) % 10
    path.write_bytes(gzip.compress(bytes(labels)))
    corrupt = path.read_bytes()
    with pytest.raises(DataError, match="SHA-256"):
        load_dataset("fashion-mnist", progress=False, local_only=True)
    assert BackgroundLoad("fashion-mnist", None).result() is None
    assert path.read_bytes() == corrupt and capsys.readouterr().err == ""
    load_dataset("fashion-mnist", progress=False)
    assert path.read_bytes() != corrupt and "deleting it and downloading again" in capsys.readouterr().err


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
    assert str(info.value) == ("could not download train-images-idx3-ubyte.gz: 127.0.0.1:9: [Errno 111] "
                               "Connection refused; connect to the internet, or pass --data-dir DIR holding the files")


class _Hostile(http.server.BaseHTTPRequestHandler):
    """A mirror that drips a byte every 0.5 s, or streams zeros without end, or claims a huge size."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.path.startswith("/huge/"):
            self.send_header("Content-Length", str(10**12))
        self.end_headers()
        try:
            if self.path.startswith("/drip/"):
                for _ in range(120):
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                    time.sleep(0.5)
            elif self.path.startswith("/endless/"):
                block = b"\x00" * (1 << 16)
                for _ in range(100_000):  # 6.5 GB if nobody stops reading
                    self.wfile.write(block)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def hostile_mirror():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_dripping_mirror_is_given_up_at_the_deadline(tmp_path, hostile_mirror, monkeypatch):
    monkeypatch.setenv("DIGITNET_DOWNLOAD_DEADLINE", "2")
    started = time.monotonic()
    with pytest.raises(DownloadError, match="127.0.0.1:[0-9]+: it was still sending after 2 s"):
        download_file(LABELS, tmp_path / "cache", (hostile_mirror + "/drip/",), progress=False)
    assert time.monotonic() - started < 30  # 60 s of dripping were on offer
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("kind, message", [("endless", "it sent more than 75,544 bytes"),
                                           ("huge", "it announces 1,000,000,000,000 bytes")])
def test_a_mirror_sending_too_much_is_cut_off_at_the_files_size(tmp_path, hostile_mirror, kind, message):
    with pytest.raises(DownloadError, match=message):
        download_file(LABELS, tmp_path / "cache", (f"{hostile_mirror}/{kind}/",), progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_gzip_bomb_is_refused_from_its_header(tmp_path, mnist_t10k_dir):
    """2.7 million images declared in the header of a small .gz: refused before it is inflated."""
    import resource

    shutil.copy(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    bomb = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(b"\x00\x00\x08\x03" + (2_700_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
        for _ in range(200):
            f.write(b"\x00" * (1 << 20))  # 200 MB of zeros behind the header, ~200 kB compressed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match=r"header declares 2700000x28x28 items \(2,116,800,016 bytes\), not the "
                                        r"original's 7,840,016 bytes"):
        load_dataset("mnist-10k", tmp_path, progress=False)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: nothing was inflated


def test_another_data_sets_files_are_named(fashion_dir):
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: this is fashion-mnist's t10k-images-idx3-ubyte, "
                                        r"not mnist's; give the folder of mnist's files"):
        load_dataset("mnist-10k", fashion_dir, progress=False)


def test_the_test_split_alone_is_enough_for_evaluation(tmp_path, fashion_dir):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(next(fashion_dir.glob(name + "*")), tmp_path)
    data = load_dataset("fashion-mnist", tmp_path, progress=False, test_only=True)
    assert data.x_train.shape == (0, 28, 28) and data.x_test.shape == (10000, 28, 28)
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", tmp_path, progress=False)


@pytest.mark.slow
def test_evaluate_needs_only_the_test_files(tmp_path, fashion_dir):
    from digitnet.runs import evaluate_run, train

    run = tmp_path / "run"
    train("tutorial", "fashion-mnist", data_dir=fashion_dir, epochs=1, out=run, progress=False)
    test_only = tmp_path / "test-only"
    test_only.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(next(fashion_dir.glob(name + "*")), test_only)
    evaluation, last, _ = evaluate_run(run, data_dir=test_only, device="cpu", progress=False)
    assert (evaluation.loss, evaluation.accuracy) == (last["test_loss"], last["test_accuracy"])


def test_a_corrupt_copy_in_a_system_folder_is_ignored_and_left_alone(tmp_path, fashion_dir, http_server, monkeypatch,
                                                                     capsys):
    """A packaged copy (e.g. Debian's /usr/share/...) that fails its checksum is named and passed over for
    the download, never deleted (it is not ours); local_only raises instead."""
    import dataclasses

    from digitnet.data import datasets

    system = tmp_path / "system-copy"
    shutil.copytree(fashion_dir, system)
    labels = system / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[50] = (raw[50] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    corrupt = labels.read_bytes()
    patched = dataclasses.replace(datasets.SOURCES["fashion-mnist"], system_dirs=(str(system),))
    monkeypatch.setitem(datasets.SOURCES, "fashion-mnist", patched)
    monkeypatch.setenv("DIGITNET_MIRRORS", http_server(fashion_dir))
    with pytest.raises(DataError, match="SHA-256"):
        load_dataset("fashion-mnist", progress=False, local_only=True)
    data = load_dataset("fashion-mnist", progress=False)
    assert "ignoring" in capsys.readouterr().err and labels.read_bytes() == corrupt
    assert data.files["t10k-labels-idx1-ubyte"]["path"].startswith(str(cache_dir()))
    assert data.files["train-images-idx3-ubyte"]["path"].startswith(str(system))  # the good copies still serve
