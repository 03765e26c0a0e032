"""`digitnet inspect RUN`: figures of what a trained network learned.

    first_layer.png           every first-layer unit's incoming weights as a 28x28 image (MLP) or
                              every first conv kernel (CNN): what each unit looks for
    hidden_pca.png            the test split in the last hidden layer, projected to 2-D by PCA
    hidden_tsne.png           the same by t-SNE, when scikit-learn is installed
    mistakes.png              the most confident mistakes on the test split
    per_class.png             test accuracy per class
    features_over_training.png  with `train --snapshots K`: first-layer units as training went on

PCA is computed with numpy (an SVD of 128-256 columns takes milliseconds). t-SNE comes from
scikit-learn (the `inside` extra), the best-kept implementation; UMAP would add numba and llvmlite
for a picture of the same kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from digitnet.inside import first_layer, hidden_and_outputs, scaled_per_unit
from digitnet.model import build_model, load_model
from digitnet.report import plot_image_grid, pyplot, save_figure
from digitnet.runs import load_run, load_run_data
from digitnet.runs.folder import SNAPSHOTS

MISTAKES_SHOWN = 24
TSNE_POINTS = 2000  # t-SNE costs O(n log n) with a large constant: a subset shows the same clusters
UNITS_OVER_TRAINING = 8


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) coordinates on the two principal components, and the share of variance each explains."""
    centred = features - features.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    return centred @ axes[:2].T, variance[:2] / max(variance.sum(), 1e-12)


def _tile(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, h, w) -> one (rows*(h+1), columns*(w+1)) mosaic, NaN between tiles."""
    n, h, w = images.shape
    rows = -(-n // columns)
    mosaic = np.full((rows * (h + 1), columns * (w + 1)), np.nan, dtype=np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        mosaic[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    return mosaic


def plot_weights(weights: np.ndarray, title: str, path: Path) -> None:
    """Units' weights in one mosaic, red positive, blue negative, each unit scaled to its own range."""
    plt = pyplot()
    scaled = scaled_per_unit(weights)
    columns = int(np.ceil(np.sqrt(len(weights))))
    fig, ax = plt.subplots(figsize=(8, 8 * (-(-len(weights) // columns)) / columns + 0.6))
    ax.imshow(_tile(scaled, columns), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    save_figure(fig, path)


def plot_projection(points: np.ndarray, labels: np.ndarray, class_names, title: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    for c, name in enumerate(class_names):
        chosen = labels == c
        ax.scatter(points[chosen, 0], points[chosen, 1], s=4, alpha=0.6, color=plt.cm.tab10(c), label=name)
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_title(title)
    save_figure(fig, path)


def plot_mistakes(images, labels, predicted, confidence, class_names, path: Path) -> None:
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong])][:MISTAKES_SHOWN]
    captions = [f"{class_names[labels[i]]} read {class_names[predicted[i]]}\n{100 * confidence[i]:.0f}%"
                for i in wrong]
    plot_image_grid(images[wrong], captions, "most confident mistakes (true, read as, confidence)", path)


def plot_per_class(labels, predicted, class_names, path: Path) -> None:
    plt = pyplot()
    accuracy = [float((predicted[labels == c] == c).mean()) if (labels == c).any() else 0.0
                for c in range(len(class_names))]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(range(len(class_names)), [100 * a for a in accuracy], color="C0")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30 if max(map(len, class_names)) > 2 else 0)
    ax.set_ylim(max(0, 100 * min(accuracy) - 5), 100)
    ax.set_ylabel("test accuracy (%)")
    for c, a in enumerate(accuracy):
        ax.text(c, 100 * a, f"{100 * a:.1f}", ha="center", va="bottom", fontsize=8)
    save_figure(fig, path)


def _snapshot_epochs(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in sorted((run_dir / SNAPSHOTS).glob("epoch-*.safetensors")):
        found.append((int(path.stem.split("-")[1]), path))
    return found


def plot_features_over_training(run_dir: Path, config: dict, path: Path) -> bool:
    """First-layer units (columns: epochs, from the seed's initial weights on) if snapshots exist."""
    snapshots = _snapshot_epochs(run_dir)
    if not snapshots:
        return False
    arch = config["architecture"]
    start = build_model(config["hidden"], seed=config["seed"], kind=arch["type"])
    stages = [(0, first_layer(start)[1])] + [(epoch, first_layer(load_model(p, arch))[1]) for epoch, p in snapshots]
    units = np.linspace(0, len(stages[0][1]) - 1, UNITS_OVER_TRAINING).round().astype(int)
    plt = pyplot()
    fig, axes = plt.subplots(len(units), len(stages), figsize=(1.2 * len(stages), 1.2 * len(units)), squeeze=False)
    for column, (epoch, weights) in enumerate(stages):
        for row, unit in enumerate(units):
            w = weights[unit]
            ax = axes[row, column]
            ax.imshow(w, cmap="RdBu_r", vmin=-np.abs(w).max(), vmax=np.abs(w).max(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"epoch {epoch}", fontsize=8)
            if column == 0:
                ax.set_ylabel(f"unit {unit}", fontsize=8)
    fig.suptitle("first-layer units as training went on")
    save_figure(fig, path)
    return True


def inspect_run(run_dir, out=None, data_dir=None, progress: bool = True, data=None) -> list[Path]:
    """Write the figures (see the module docstring) into out (default RUN/inspect); their paths.

    data, if given, is the run's Dataset already in memory (else its test split is loaded and
    checked against the run's hashes)."""
    run_dir = Path(run_dir)
    config, model = load_run(run_dir)  # a bad run folder fails before anything is created
    out = Path(out) if out is not None else run_dir / "inspect"
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    if data is None:
        data = load_run_data(config, run_dir, data_dir, progress=progress, test_only=True)
    names = list(data.class_names)
    written = []

    layer, weights = first_layer(model)
    plot_weights(weights, f"{layer}: incoming weights of each of its {len(weights)} units (red +, blue -)",
                 out / "first_layer.png")
    written.append(out / "first_layer.png")

    from digitnet.predict import confidences

    hidden, outputs = hidden_and_outputs(model, data.x_test)
    probabilities = confidences(torch.from_numpy(outputs), config["recipe"]["loss"]).numpy()
    predicted = probabilities.argmax(axis=1)
    points, shares = pca_2d(hidden)
    plot_projection(points, data.y_test, names, f"last hidden layer ({hidden.shape[1]} units), PCA: "
                    f"{100 * shares[0]:.0f}% + {100 * shares[1]:.0f}% of the variance", out / "hidden_pca.png")
    written.append(out / "hidden_pca.png")
    tsne = _tsne(hidden, data.y_test, names, out / "hidden_tsne.png")
    written += [tsne] if tsne else []

    plot_mistakes(data.x_test, data.y_test, predicted, probabilities.max(axis=1), names, out / "mistakes.png")
    plot_per_class(data.y_test, predicted, names, out / "per_class.png")
    written += [out / "mistakes.png", out / "per_class.png"]
    if plot_features_over_training(run_dir, config, out / "features_over_training.png"):
        written.append(out / "features_over_training.png")
    return written


def _tsne(hidden: np.ndarray, labels: np.ndarray, names, path: Path) -> Path | None:
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return None
    chosen = np.random.default_rng(0).permutation(len(hidden))[:TSNE_POINTS]
    points = TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(hidden[chosen])
    plot_projection(points, labels[chosen], names, f"last hidden layer, t-SNE of {len(chosen)} test images", path)
    return path
