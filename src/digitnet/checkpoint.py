"""Checkpoints: everything needed to continue a run bit-for-bit, in one safetensors file.

checkpoint.safetensors holds the model's weights ("model.<name>") and the optimiser's tensors
("optim.<param>.<key>"); the epoch, the metrics so far and the optimiser's and schedule's scalars
ride in its JSON metadata. No random-number state is needed: the shuffle and the augmentation of an
epoch are drawn from generators seeded by (seed, epoch) alone. Written through tensorfile (temporary
file, fsync, rename), so a kill at any instant leaves either the old or the new checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from digitnet.errors import ModelFileError
from digitnet.tensorfile import read_tensor_file, write_tensor_file

CHECKPOINT = "checkpoint.safetensors"
FORMAT = "digitnet-checkpoint"
FORMAT_VERSION = 2  # 2: the digest covers the metadata too


def _split_optimizer_state(state: dict) -> tuple[dict, dict]:
    """optimizer.state_dict() -> (tensors by flat name, the JSON-able rest)."""
    tensors, scalars = {}, {}
    for index, per_param in state.get("state", {}).items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
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


# The entries of a run's config.json that decide what training computes: a resume refuses a
# config.json whose entries differ from those recorded in the checkpoint.
COMPUTATION_KEYS = ("recipe", "dataset", "hidden", "seed", "shuffle", "precision", "architecture", "threads")


def run_identity(config: dict) -> dict:
    """What a checkpoint records of its run's config.json (COMPUTATION_KEYS and the data's hashes)."""
    identity = {key: config.get(key) for key in COMPUTATION_KEYS}
    identity["data_sha256"] = {name: f.get("sha256") for name, f in config.get("data", {}).get("files", {}).items()}
    return identity


def save_checkpoint(run_dir: str | Path, model: torch.nn.Module, step, epoch: int, history, config: dict) -> Path:
    """Atomically write run_dir/checkpoint.safetensors after `epoch` finished."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    step_state = step.state_dict()
    optim_tensors, optim_meta = _split_optimizer_state(step_state.get("optimizer", {}))
    tensors.update(optim_tensors)
    meta = {"epoch": epoch, "history": [asdict(r) for r in history], "optimizer": optim_meta,
            "schedule": step_state.get("schedule")}
    path = Path(run_dir) / CHECKPOINT
    write_tensor_file(path, tensors, FORMAT, FORMAT_VERSION,
                      {"state": json.dumps(meta), "run": json.dumps(run_identity(config))})
    return path


def _check_same_run(path: Path, recorded: str | None, config: dict) -> None:
    if recorded is None:  # format version 1 recorded nothing to compare
        return
    saved, now = json.loads(recorded), run_identity(config)
    changed = sorted(key for key in saved if saved[key] != now.get(key))
    if changed:
        raise ModelFileError(f"{path.parent / 'config.json'}: {', '.join(changed)} differ from what the checkpoint "
                             "was trained with; restore the run's config.json (or start a new run)")


def load_checkpoint(run_dir: str | Path, config: dict | None = None) -> dict | None:
    """The checkpoint of a run folder as a dict, None if there is none yet; ModelFileError if damaged,
    or if config (the run's config.json) differs from the run the checkpoint was written by."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    fix = "resume is impossible, start a new run"
    metadata, tensors = read_tensor_file(path, FORMAT, FORMAT_VERSION, "checkpoint", fix)
    try:
        if config is not None:
            _check_same_run(path, metadata.get("run"), config)
        meta = json.loads(metadata["state"])
        model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        optim_tensors = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        return {
            "epoch": meta["epoch"],
            "history": meta["history"],
            "model": model_state,
            "step": {"optimizer": _join_optimizer_state(optim_tensors, meta["optimizer"]),
                     "schedule": meta["schedule"]},
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path}: damaged checkpoint (its state metadata is malformed: {exc}); {fix}") from None
