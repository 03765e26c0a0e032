"""Our safetensors files: written atomically with a digest, read back with every format check.

A digitnet file (a model or a checkpoint) is a safetensors file whose metadata names its format
and format version and carries a SHA-256 over every tensor's name, dtype, shape and bytes, so a
flipped byte anywhere in the weights is an error, never a silently different model. Nothing is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from digitnet.errors import ModelFileError
from digitnet.fsutil import atomic_path


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def write_tensor_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], file_format: str, version: int,
                      metadata: dict[str, str]) -> None:
    """Atomically write tensors (moved to the CPU) with the format, version and digest in the metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {**metadata, "format": file_format, "format_version": str(version), "sha256": tensor_digest(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


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
    if metadata.get("sha256") != tensor_digest(tensors):
        raise ModelFileError(f"{path}: the tensors do not match their recorded SHA-256; the file was altered or "
                             f"damaged; {fix}")
    return metadata, tensors
