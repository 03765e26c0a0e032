"""Re-evaluating a run folder's model on the run's own test split."""

from __future__ import annotations

from digitnet.losses import make_loss
from digitnet.metrics import Evaluation, evaluate
from digitnet.runs.reading import load_run, load_run_data, read_metrics
from digitnet.settings import DEFAULT_PRECISION
from digitnet.training import cuda_numerics, prepare_test_tensors, resolve_device
from digitnet.training.devices import fast_layout


def evaluate_on_test_split(model, data, config: dict, device) -> Evaluation:
    """model's loss (the recipe's own) and accuracy on data's test split, with the products in the
    run's precision where it has one on this device (a tf32 run on a GPU; elsewhere float32) and the
    model in the memory layout training gave it (a convnet channels-last on the CPU: the other
    layout's kernels round differently), as the evaluation during training computed them."""
    recipe = config["recipe"]
    precision = config.get("precision", DEFAULT_PRECISION)
    if precision == "tf32" and device.type != "cuda":
        precision = DEFAULT_PRECISION
    x_test, y_test = prepare_test_tensors(data, device)
    with cuda_numerics(precision, device):
        return evaluate(fast_layout(model, device), x_test, y_test, make_loss(recipe["loss"], recipe["label_smoothing"]))


def evaluate_run(run_dir, data_dir=None, device: str = "auto", progress: bool = True
                 ) -> tuple[Evaluation, dict | None, str | None]:
    """Reload a run folder's model and evaluate it on the run's own test split.

    Returns (evaluation, last row of metrics.csv or None, the device type training used or None).
    The data is checked against the hashes recorded in config.json, so a different data set
    cannot pass unnoticed.
    """
    device = resolve_device(device)
    config, model = load_run(run_dir, device=device)
    data = load_run_data(config, run_dir, data_dir, progress=progress, test_only=True)
    evaluation = evaluate_on_test_split(model, data, config, device)
    metrics = read_metrics(run_dir)
    return evaluation, (metrics[-1] if metrics else None), config.get("device_used")
