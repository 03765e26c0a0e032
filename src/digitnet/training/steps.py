"""Choosing the step that computes a recipe fastest on this device."""

from __future__ import annotations

import os

import torch

from digitnet.distributed import Distributed
from digitnet.recipes import Recipe
from digitnet.training.backprop import BackpropStep, supports_model
from digitnet.training.fastpath import CudaGraphStep, FusedSGDStep, supports
from digitnet.training.optim import AutogradStep

CUDA_GRAPHS_ENV = "DIGITNET_CUDA_GRAPHS"  # "0" turns CUDA graph replay of the fused step off


def make_step(model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32,
              dist: Distributed | None = None, cuda_graphs: bool | None = None):
    """Hand-fused for plain SGD on MSE (replayed from a CUDA graph on GPUs), a written-out backward
    pass and the recipe's optimiser for other MLP recipes, autograd for the CNN.

    Across processes: autograd through DistributedDataParallel, which all-reduces the gradients.
    """
    if dist is not None and dist.active:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [dist.local_rank] if next(model.parameters()).is_cuda else None
        return AutogradStep(DistributedDataParallel(model, device_ids=device_ids), recipe, total_steps,
                            compute_dtype)
    if supports(recipe):
        step = FusedSGDStep(model, recipe.lr, compute_dtype)
        if cuda_graphs is None:
            cuda_graphs = os.environ.get(CUDA_GRAPHS_ENV, "1") != "0"
        if cuda_graphs and next(model.parameters()).is_cuda:
            return CudaGraphStep(step, recipe.batch_size)
        return step
    if supports_model(model):
        return BackpropStep(model, recipe, total_steps, compute_dtype)
    return AutogradStep(model, recipe, total_steps, compute_dtype)
