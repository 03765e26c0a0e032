"""Loading a data set: local folder, system package, cache, or download, always verified.

`load_mnist()` and `load_fashion_mnist()` keep keras.datasets' contract:
``(x_train, y_train), (x_test, y_test)`` as uint8 arrays of shapes
(60000, 28, 28), (60000,), (10000, 28, 28), (10000,).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet.data.download import download_file, mirrors_for, verify_file
from digitnet.data.idx import parse_idx
from digitnet.data.sources import MNIST, SOURCES, DatasetSource, IdxFile
from digitnet.errors import DataError
from digitnet.settings import DATASETS, SIDE

HOME_ENV = "DIGITNET_HOME"
DATA_ENV = "DIGITNET_DATA"

# "mnist-10k": real digits from MNIST's test files alone (the training split cannot be
# downloaded on an offline machine): the first 8,000 train, the last 2,000 test.
SPLIT_10K = 8000


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    files: dict[str, dict] = field(default_factory=dict)  # IDX name -> {"path", "sha256"}

    def as_tuples(self):
        return (self.x_train, self.y_train), (self.x_test, self.y_test)


def cache_dir() -> Path:
    """$DIGITNET_HOME, else the platform's user cache folder."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("digitnet"))


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    """The checks that make an images file and a labels file one usable split."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(
            f"{images_name}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{labels_name}: expected a 1-D uint8 label vector, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_name} has {len(images):,} images but {labels_name} has {len(labels):,} labels; "
            "use files from the same split"
        )
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{labels_name}: label {int(labels[bad])} at index {bad} is outside 0-9")


def _find_in(folder: Path, idx: IdxFile) -> Path | None:
    for candidate in (folder / f"{idx.name}.gz", folder / idx.name):
        if candidate.is_file():
            return candidate
    return None


def _needed_keys(name: str, test_only: bool) -> tuple[str, ...]:
    if name == "mnist-10k" or test_only:
        return ("test_images", "test_labels")
    return ("train_images", "train_labels", "test_images", "test_labels")


def _missing_error(source: DatasetSource, keys, folder: Path) -> DataError:
    names = ", ".join(f"{source.files[k].name}[.gz]" for k in keys)
    return DataError(
        f"{source.name}: {folder} lacks {names}; put the files there, or drop --data-dir/{DATA_ENV} "
        "to download them"
    )


def _resolve_local(source: DatasetSource, keys, data_dir: Path) -> dict[str, tuple[Path, bytes]]:
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir}: no such folder; give the folder that holds the IDX files")
    found = {k: _find_in(data_dir, source.files[k]) for k in keys}
    missing = [k for k, p in found.items() if p is None]
    if missing:
        raise _missing_error(source, missing, data_dir)
    return {k: (p, verify_file(p, source.files[k], source.name)) for k, p in found.items()}


def _resolve_cached(source: DatasetSource, key: str, folder: Path, progress: bool, local_only: bool
                    ) -> tuple[Path, bytes]:
    idx = source.files[key]
    for system_dir in source.system_dirs:
        path = _find_in(Path(system_dir), idx)
        if path is not None and (data := _verified(path, idx, source.name, local_only, "ignoring {}")) is not None:
            return path, data
    path = _find_in(folder, idx)
    if path is not None:
        note = "{}; deleting it and downloading again"
        if (data := _verified(path, idx, source.name, local_only, note)) is not None:
            return path, data
        path.unlink()
    if local_only:
        raise DataError(f"{idx.name} is not in {folder}")
    return download_file(idx, folder, mirrors_for(source.mirrors), progress=progress)


def _verified(path: Path, idx: IdxFile, dataset: str, local_only: bool, note: str) -> bytes | None:
    """The file's contents, verified against idx; None, after saying note (formatted with the error),
    where it fails verification and a download may replace it (with local_only the error is raised)."""
    try:
        return verify_file(path, idx, dataset)
    except DataError as exc:
        if local_only:
            raise
        print(f"digitnet: {note.format(exc)}", file=sys.stderr)
        return None


def _resolve(source: DatasetSource, keys, data_dir, progress: bool, local_only: bool
             ) -> dict[str, tuple[Path, bytes]]:
    if data_dir is None and os.environ.get(DATA_ENV):
        data_dir = os.environ[DATA_ENV]
    if data_dir is not None:
        return _resolve_local(source, keys, Path(data_dir).expanduser())
    folder = cache_dir() / "datasets" / source.name
    try:
        return {k: _resolve_cached(source, k, folder, progress, local_only) for k in keys}
    except DataError as exc:
        raise DataError(f"{exc}; connect to the internet, or pass --data-dir DIR holding the files") from None


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, progress: bool = True,
                 test_only: bool = False, local_only: bool = False) -> Dataset:
    """Load a data set by name ("mnist", "fashion-mnist" or "mnist-10k"), verified by SHA-256.

    data_dir (or $DIGITNET_DATA) names a folder of IDX files, gzipped or plain, and
    forbids the network; otherwise the cache is used and filled from the mirrors. With
    test_only, only the test split's files are needed (the training split comes back empty).
    With local_only, a file not on this machine, or failing its check, raises DataError at once
    (nothing is downloaded, deleted or printed).
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    source = MNIST if name == "mnist-10k" else SOURCES[name]
    keys = _needed_keys(name, test_only)
    resolved = _resolve(source, keys, data_dir, progress, local_only)
    arrays = {k: parse_idx(data, str(path)) for k, (path, data) in resolved.items()}
    # Every file passed verify_file, so its digest is the table's.
    files = {source.files[k].name: {"path": str(path), "sha256": source.files[k].sha256} for k, (path, _) in resolved.items()}
    check_pair(arrays["test_images"], arrays["test_labels"], "test images", "test labels")
    if name == "mnist-10k":
        x, y = arrays["test_images"], arrays["test_labels"]
        return Dataset(name, x[:SPLIT_10K], y[:SPLIT_10K], x[SPLIT_10K:], y[SPLIT_10K:], source.class_names, files)
    if test_only:
        empty = np.zeros((0, SIDE, SIDE), np.uint8), np.zeros(0, np.uint8)
        return Dataset(name, *empty, arrays["test_images"], arrays["test_labels"], source.class_names, files)
    check_pair(arrays["train_images"], arrays["train_labels"], "train images", "train labels")
    return Dataset(
        name, arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"],
        source.class_names, files,
    )


class BackgroundLoad:
    """A data set read and verified in a thread while the caller does something else (the CLI
    imports torch meanwhile: zlib and hashlib release the GIL, so the two overlap).

    Only what is already on this machine is read: result() is None where the data would need the
    network or failed any check; the caller then loads it the usual way, which downloads with a
    progress bar or raises the error where it always did.
    """

    def __init__(self, name: str, data_dir: str | os.PathLike | None):
        self._result: Dataset | None = None
        self._thread = threading.Thread(target=self._load, args=(name, data_dir), daemon=True,
                                        name="digitnet-data")
        self._thread.start()

    def _load(self, name: str, data_dir) -> None:
        try:
            self._result = load_dataset(name, data_dir, progress=False, local_only=True)
        except Exception:  # noqa: BLE001 - the caller's own load repeats and reports it
            pass

    def result(self) -> Dataset | None:
        self._thread.join()
        return self._result


def load_mnist(data_dir=None, progress: bool = True):
    """MNIST as keras.datasets.mnist.load_data() returns it: ((x, y), (x_test, y_test)), uint8."""
    return load_dataset("mnist", data_dir, progress).as_tuples()


def load_fashion_mnist(data_dir=None, progress: bool = True):
    """Fashion-MNIST, same contract as load_mnist()."""
    return load_dataset("fashion-mnist", data_dir, progress).as_tuples()
