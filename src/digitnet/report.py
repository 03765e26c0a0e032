"""What a person reads: the per-epoch table, plots, per-class accuracy and summary.md."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from digitnet.fsutil import atomic_path, write_text_atomic
from digitnet.linechart import BLUE, GREEN, ORANGE, Panel, Series, chart, vertical_text
from digitnet.metrics import confusion_matrix
from digitnet.model import describe

TABLE_HEADER = f"{'epoch':>5}  {'train loss':>10}  {'test loss':>10}  {'test acc':>8}  {'seconds':>7}"
MISCLASSIFIED_SHOWN = 40


def format_epoch(record) -> str:
    return (f"{record.epoch:>5}  {record.train_loss:>10.6f}  {record.test_loss:>10.6f}  "
            f"{100 * record.test_accuracy:>7.2f}%  {record.seconds:>7.2f}")


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure (inspect's, compare's) as a PNG atomically, cropped to what it shows, and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)


def save_image(image, path: Path) -> None:
    """Write a PIL image (the report's own figures) as a PNG atomically."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def curve_panels(history) -> list[Panel]:
    """The run's curves: train and test loss by epoch, and test accuracy (%) by epoch."""
    epochs = [r.epoch for r in history]
    loss = Panel("loss", "epoch", "loss", [
        Series("train loss", epochs, [r.train_loss for r in history], BLUE, "o"),
        Series("test loss", epochs, [r.test_loss for r in history], ORANGE, "s")], legend=True)
    accuracy = Panel("test accuracy", "epoch", "test accuracy (%)", [
        Series("test accuracy", epochs, [100 * r.test_accuracy for r in history], GREEN, "o")])
    return [loss, accuracy]


def plot_curves(history, path: Path, title: str) -> None:
    save_image(chart(curve_panels(history), title), path)


CELL = 46  # a confusion matrix cell's side in pixels: room for 5 digits
LIGHTEST, DARKEST = np.array([247, 251, 255]), np.array([8, 48, 107])  # the ends of matplotlib's "Blues"


def confusion_image(counts: np.ndarray, class_names, title: str = "confusion matrix (test split)"):
    """The confusion matrix as a PIL image: a cell per (true, predicted) pair shaded by its count,
    white to dark blue, the count written in it. Pillow draws it in 0.02-0.03 s, where matplotlib's
    hundred texts took 0.19 s at the end of every run (benchmarks/cli_overheads.py)."""
    from PIL import Image, ImageDraw, ImageFont

    font, title_font = ImageFont.load_default(size=12), ImageFont.load_default(size=15)
    classes = len(class_names)
    names_w = int(max((font.getlength(str(n)) for n in class_names), default=0)) + 10
    left, top = names_w + 30, 40
    sheet = Image.new("RGB", (left + classes * CELL + 20, top + classes * CELL + names_w + 34), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((left + classes * CELL // 2, 12), title, fill="black", font=title_font, anchor="ma")
    shade = counts / max(1, counts.max())
    for (i, j), n in np.ndenumerate(counts):
        x, y = left + j * CELL, top + i * CELL
        color = tuple(int(v) for v in np.rint(LIGHTEST + shade[i, j] * (DARKEST - LIGHTEST)))
        draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=color)
        draw.text((x + CELL // 2, y + CELL // 2), str(n), font=font, anchor="mm",
                  fill="white" if shade[i, j] > 0.5 else "black")
    for k, name in enumerate(class_names):
        draw.text((left - 6, top + k * CELL + CELL // 2), str(name), fill="black", font=font, anchor="rm")
        label = vertical_text(str(name), font)
        sheet.paste(label, (left + k * CELL + (CELL - label.width) // 2, top + classes * CELL + 6))
    draw.text((left + classes * CELL // 2, sheet.height - 6), "predicted", fill="black", font=font, anchor="md")
    axis = vertical_text("true", font)
    sheet.paste(axis, (4, top + (classes * CELL - axis.height) // 2))
    return sheet


def plot_confusion(counts: np.ndarray, class_names, path: Path) -> None:
    save_image(confusion_image(counts, class_names), path)


GRID_SCALE = 3  # a 28x28 image is drawn 84x84, each pixel a 3x3 block


def image_grid(images: np.ndarray, captions: list[str], title: str, columns: int = 8):
    """Small grey images (uint8, 255 = ink, drawn dark on white) in one PIL image, a caption above
    each. Pillow draws it in 0.03-0.05 s, where matplotlib took 0.23-0.30 s for the 40 captions
    (benchmarks/cli_overheads.py)."""
    from PIL import Image, ImageDraw, ImageFont

    font, title_font = ImageFont.load_default(size=11), ImageFont.load_default(size=15)
    count, side = len(images), (images.shape[1] if len(images) else 28) * GRID_SCALE
    caption_h = 14 * max((c.count("\n") + 1 for c in captions), default=1) + 4
    widest = max((font.getlength(line) for c in captions for line in c.split("\n")), default=0)
    cell_w, cell_h, top = max(side, int(widest) + 1) + 14, caption_h + side + 12, 34
    rows = max(1, -(-count // columns))
    sheet = Image.new("L", (columns * cell_w, top + rows * cell_h), 255)
    draw = ImageDraw.Draw(sheet)
    draw.text((sheet.width // 2, 10), title, fill=0, font=title_font, anchor="ma")
    for k, (image, caption) in enumerate(zip(images, captions)):
        r, c = divmod(k, columns)
        x, y = c * cell_w, top + r * cell_h
        draw.multiline_text((x + cell_w // 2, y), caption, fill=0, font=font, anchor="ma", align="center", spacing=3)
        tile = Image.fromarray(255 - np.asarray(image, dtype=np.uint8)).resize((side, side), Image.Resampling.NEAREST)
        sheet.paste(tile, (x + (cell_w - side) // 2, y + caption_h))
    return sheet


def plot_image_grid(images: np.ndarray, captions: list[str], title: str, path: Path, columns: int = 8) -> None:
    save_image(image_grid(images, captions, title, columns), path)


def plot_misclassified(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, class_names,
                       path: Path) -> None:
    wrong = np.flatnonzero(labels != predicted)[:MISCLASSIFIED_SHOWN]
    captions = [f"#{i}\ntrue {class_names[labels[i]]}\npred {class_names[predicted[i]]}" for i in wrong]
    plot_image_grid(images[wrong], captions,
                    f"first {len(wrong)} misclassified test images of {int((labels != predicted).sum())}", path)


def per_class_rows(counts: np.ndarray, class_names) -> list[tuple]:
    rows = []
    for c, name in enumerate(class_names):
        total = int(counts[c].sum())
        correct = int(counts[c, c])
        rows.append((c, name, total, correct, correct / total if total else float("nan")))
    return rows


def per_class_csv(rows) -> str:
    lines = ["class,name,count,correct,accuracy"]
    lines += [f'{c},"{name}",{total},{correct},{acc!r}' for c, name, total, correct, acc in rows]
    return "\n".join(lines) + "\n"


def summary_markdown(run_dir: Path, config: dict, history, rows, stopped: str | None = None) -> str:
    last = history[-1]
    best = max(history, key=lambda r: r.test_accuracy)
    recipe = config["recipe"]
    status = ([f"**Stopped after epoch {last.epoch} of {recipe['epochs']}**: {stopped}", ""] if stopped else [])
    lines = [
        f"# Run {run_dir.name}",
        "",
        *status,
        f"- data set: **{config['data']['name']}** ({config['data']['train_size']:,} train, "
        f"{config['data']['test_size']:,} test)",
        f"- recipe: **{recipe['name']}**: loss {recipe['loss']}, optimizer {recipe['optimizer']}, lr {recipe['lr']:g}, "
        f"batch {recipe['batch_size']}, schedule {recipe['schedule']}, {recipe['epochs']} epochs, seed {config['seed']}",
        f"- network: {describe(config['architecture'])} (ReLU)",
        f"- final test accuracy: **{100 * last.test_accuracy:.2f}%**, test loss {last.test_loss:.6f} (epoch {last.epoch})",
        f"- best test accuracy: {100 * best.test_accuracy:.2f}% (epoch {best.epoch})",
        f"- training time: median {statistics.median(r.seconds for r in history):.2f} s/epoch, "
        f"total {sum(r.seconds for r in history):.1f} s",
        "",
        "## Per-class test accuracy",
        "",
        "| class | name | count | accuracy |",
        "| ---: | --- | ---: | ---: |",
        *[f"| {c} | {name} | {total} | {100 * acc:.2f}% |" for c, name, total, _, acc in rows],
        "",
        "## Files",
        "",
        "- `config.json`: the exact configuration, data hashes and versions",
        "- `metrics.csv`: train loss, test loss, test accuracy and seconds per epoch",
        "- `model.safetensors`: the weights (architecture in `config.json`)",
        "- `curves.png`, `confusion.png`, `misclassified.png`, `per_class.csv`",
        "",
        "## Use it",
        "",
        "```",
        f"digitnet evaluate {run_dir}",
        f"digitnet predict {run_dir} IMAGE.png",
        "```",
        "",
        "![curves](curves.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(run_dir: Path, config: dict, history, final, data, stopped: str | None = None) -> None:
    """Write plots, per-class accuracy and summary.md for a finished run (or, with `stopped`, the
    saved epochs of a run that stopped early)."""
    names = list(data.class_names)
    title = f"{config['data']['name']} / recipe {config['recipe']['name']}"
    counts = confusion_matrix(data.y_test, final.predictions, len(names))
    rows = per_class_rows(counts, names)
    plot_curves(history, run_dir / "curves.png", title)
    plot_confusion(counts, names, run_dir / "confusion.png")
    plot_misclassified(data.x_test, data.y_test, final.predictions, names, run_dir / "misclassified.png")
    write_text_atomic(run_dir / "per_class.csv", per_class_csv(rows))
    write_text_atomic(run_dir / "summary.md", summary_markdown(run_dir, config, history, rows, stopped))
