"""Our safetensors files: written atomically with a digest, read back with every format check.

A digitnet file (a model or a checkpoint) is a safetensors file whose metadata names its format
and format version and carries a SHA-256 ("digest") over every tensor's name, dtype, shape and
bytes and every other metadata entry, so a flipped byte anywhere in the weights or in the JSON
beside them is an error, never a silently different model or history. Files of format version 1
carried "sha256" over the tensors alone and are still read. Nothing is ever unpickled.

The file is serialised in memory and written by our own atomic write, so a full disk is an
OSError like any other and a kill leaves only our own temporary name, which the run folder's
cleanup knows.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from digitnet.errors import ModelFileError
from digitnet.fsutil import write_bytes_atomic


def tensor_digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order, then (if given)
    every metadata key and value, in key order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for key in sorted(metadata or {}):
        digest.update(json.dumps([key, metadata[key]]).encode())
    return digest.hexdigest()


def _recorded_digest_matches(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> bool:
    if "digest" in metadata:
        covered = {k: v for k, v in metadata.items() if k != "digest"}
        return metadata["digest"] == tensor_digest(tensors, covered)
    legacy = metadata.get("format_version") == "1" and "sha256" in metadata
    return legacy and metadata["sha256"] == tensor_digest(tensors)


def write_tensor_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], file_format: str, version: int,
                      metadata: dict[str, str]) -> None:
    """Atomically write tensors (moved to the CPU) with the format, version and digest in the metadata."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {**metadata, "format": file_format, "format_version": str(version)}
    header["digest"] = tensor_digest(tensors, header)
    write_bytes_atomic(path, save(tensors, metadata=header))


def read_tensor_file(path: str | os.PathLike, file_format: str, version: int, what: str, fix: str
                     ) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a file written by write_tensor_file, or ModelFileError saying what is wrong.

    what names the file kind in messages ("model", "checkpoint"); fix says what the user can do.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc}); {fix}") from None
    if metadata.get("format") != file_format:
        raise ModelFileError(f"{path}: not a digitnet {what} (format {metadata.get('format')!r}); {fix}")
    found = metadata.get("format_version", "?")
    if not found.isdigit() or int(found) > version:
        raise ModelFileError(f"{path}: {what} format version {found} is newer than this digitnet reads ({version}); "
                             "upgrade digitnet")
    if not _recorded_digest_matches(metadata, tensors):
        raise ModelFileError(f"{path}: the contents do not match their recorded SHA-256; the file was altered or "
                             f"damaged; {fix}")
    return metadata, tensors
