"""Checkpoints: everything needed to continue a run bit-for-bit, in one safetensors file.

checkpoint.safetensors holds the model's weights ("model.<name>"), the optimiser's tensors
("optim.<param>.<key>") and PyTorch's RNG state ("rng.torch") as tensors; the epoch, the
metrics so far, the optimiser's and schedule's scalars and the Python and NumPy RNG states
ride in its JSON metadata. Nothing is ever unpickled. It is written to a temporary file,
fsynced and renamed over the previous one, so a kill at any instant leaves either the old or
the new checkpoint, never a mix.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from digitnet.errors import ModelFileError
from digitnet.fsutil import atomic_path
from digitnet.model import tensor_digest

CHECKPOINT = "checkpoint.safetensors"
FORMAT = "digitnet-checkpoint"
FORMAT_VERSION = 1


def _rng_state() -> tuple[dict, torch.Tensor]:
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(mt), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached]}
    return meta, torch.get_rng_state()


def _set_rng_state(meta: dict, torch_state: torch.Tensor) -> None:
    version, mt, gauss = meta["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch_state)


def _split_optimizer_state(state: dict) -> tuple[dict, dict]:
    """optimizer.state_dict() -> (tensors by flat name, the JSON-able rest)."""
    tensors, scalars = {}, {}
    for index, per_param in state.get("state", {}).items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"scalars": scalars, "param_groups": state.get("param_groups", [])}


def _join_optimizer_state(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: str | Path, model: torch.nn.Module, step, epoch: int, history) -> Path:
    """Atomically write run_dir/checkpoint.safetensors after `epoch` finished."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    step_state = step.state_dict()
    optim_tensors, optim_meta = _split_optimizer_state(step_state.get("optimizer", {}))
    tensors.update(optim_tensors)
    rng_meta, torch_rng = _rng_state()
    tensors["rng.torch"] = torch_rng
    meta = {
        "epoch": epoch,
        "history": [asdict(r) for r in history],
        "optimizer": optim_meta,
        "schedule": step_state.get("schedule"),
        "rng": rng_meta,
    }
    path = Path(run_dir) / CHECKPOINT
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION),
                                               "state": json.dumps(meta), "sha256": tensor_digest(tensors)})
    return path


def load_checkpoint(run_dir: str | Path) -> dict | None:
    """The checkpoint of a run folder as a dict, None if there is none yet; ModelFileError if damaged."""
    from safetensors import safe_open

    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        version = metadata.get("format_version", "?")
        if not version.isdigit() or int(version) > FORMAT_VERSION:
            raise ModelFileError(f"{path}: checkpoint format version {version} is newer than this digitnet reads "
                                 f"({FORMAT_VERSION}); upgrade digitnet")
        meta = json.loads(metadata["state"])
        if metadata.get("sha256") != tensor_digest(tensors):
            raise ValueError("its tensors do not match their recorded SHA-256")
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: damaged checkpoint ({exc}); resume is impossible, start a new run") from None
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    optim_tensors = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    return {
        "epoch": meta["epoch"],
        "history": meta["history"],
        "model": model_state,
        "step": {"optimizer": _join_optimizer_state(optim_tensors, meta["optimizer"]), "schedule": meta["schedule"]},
        "rng": (meta["rng"], tensors["rng.torch"]),
    }


def restore_rng(checkpoint: dict) -> None:
    _set_rng_state(*checkpoint["rng"])
