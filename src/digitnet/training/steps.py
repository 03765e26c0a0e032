"""Choosing the step that computes a recipe fastest on this device."""

from __future__ import annotations

import os

import torch

from digitnet.distributed import Distributed
from digitnet.recipes import Recipe
from digitnet.training.backprop import BackpropStep, supports_model
from digitnet.training.convnet import ConvNetStep, supports_model as supports_convnet
from digitnet.training.fastpath import FusedSGDStep, supports
from digitnet.training.graphs import EpochGraph
from digitnet.training.optim import AutogradStep

CUDA_GRAPHS_ENV = "DIGITNET_CUDA_GRAPHS"  # "0" turns CUDA graph replay of whole epochs off


def make_step(model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32,
              dist: Distributed | None = None, cuda_graphs: bool | None = None):
    """Hand-fused for plain SGD on MSE; a written-out backward pass and the recipe's optimiser for
    other MLP recipes, and for the CNN on a GPU (convnet.py; on the CPU autograd over
    channels-last maps was faster: 30 against 52 ms a step on a 2-core AMD EPYC); else autograd.
    On a GPU, epochs are replayed from a CUDA graph where every step can be captured (graphs.py):
    with AdamW reading its schedule on the device, or the hand-fused SGD; augmented recipes too.

    Across processes: autograd through DistributedDataParallel, which all-reduces the gradients.
    """
    if dist is not None and dist.active:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [dist.local_rank] if next(model.parameters()).is_cuda else None
        return AutogradStep(DistributedDataParallel(model, device_ids=device_ids), recipe, total_steps,
                            compute_dtype)
    on_gpu = next(model.parameters()).is_cuda
    if supports(recipe):
        step = FusedSGDStep(model, recipe.lr, compute_dtype)
    else:
        step = _optimiser_step(model, recipe, total_steps, compute_dtype, on_gpu)
        if on_gpu and recipe.optimizer == "adamw":  # eager or replayed alike, so both compute the same
            step.schedule_on_device(total_steps)
    if cuda_graphs is None:
        cuda_graphs = os.environ.get(CUDA_GRAPHS_ENV, "1") != "0"
    capturable = isinstance(step, FusedSGDStep) or step.device_schedule is not None
    if cuda_graphs and on_gpu and capturable:
        return EpochGraph(step)
    return step


def _optimiser_step(model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype, on_gpu: bool):
    """A step that runs the recipe's own torch.optim optimiser: written out where one serves the model."""
    if supports_model(model):
        return BackpropStep(model, recipe, total_steps, compute_dtype)
    if on_gpu and supports_convnet(model):
        return ConvNetStep(model, recipe, total_steps, compute_dtype)
    return AutogradStep(model, recipe, total_steps, compute_dtype)
