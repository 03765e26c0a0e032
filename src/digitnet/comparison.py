"""`digitnet compare RUN...`: runs side by side, one figure of their curves and one table.

The table names each run's recipe and only the settings in which the runs differ, then the final
and best test accuracy, the epochs and the median seconds per epoch. It is printed and saved as
Markdown beside the figure.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from digitnet.fsutil import write_text_atomic
from digitnet.report import pyplot, save_figure
from digitnet.runs import load_config, read_metrics

SETTINGS = ("dataset", "hidden", "seed", "precision")  # besides every recipe field


def _settings(config: dict) -> dict:
    flat = {f"recipe.{k}" if k != "name" else "recipe": v for k, v in config["recipe"].items()}
    flat.update({key: config.get(key) for key in SETTINGS})
    return flat


def differing(configs: list[dict]) -> list[str]:
    """The settings whose values are not the same in every run (recipe first)."""
    every = [_settings(c) for c in configs]
    keys = sorted({k for s in every for k in s}, key=lambda k: (k != "recipe", k))
    return [k for k in keys if len({repr(s.get(k)) for s in every}) > 1]


def table_rows(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    configs = [load_config(run) for run in runs]
    metrics = [read_metrics(run) for run in runs]
    keys = differing(configs) or ["recipe"]
    header = ["run", *keys, "final acc", "best acc (epoch)", "epochs", "s/epoch"]
    rows = []
    for run, config, rows_of_run in zip(runs, configs, metrics):
        settings = _settings(config)
        if not rows_of_run:
            rows.append([run.name, *(str(settings.get(k)) for k in keys), "-", "-", "0", "-"])
            continue
        best = max(rows_of_run, key=lambda r: r["test_accuracy"])
        rows.append([run.name, *(_format(settings.get(k)) for k in keys),
                     f"{100 * rows_of_run[-1]['test_accuracy']:.2f}%",
                     f"{100 * best['test_accuracy']:.2f}% ({best['epoch']})", str(rows_of_run[-1]["epoch"]),
                     f"{statistics.median(r['seconds'] for r in rows_of_run):.2f}"])
    return header, rows


def _format(value) -> str:
    if isinstance(value, list):
        return "-".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_runs(runs: list[Path], path: Path) -> None:
    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for k, run in enumerate(runs):
        rows = read_metrics(run)
        epochs = [r["epoch"] for r in rows]
        color = plt.cm.tab10(k % 10)
        ax_acc.plot(epochs, [100 * r["test_accuracy"] for r in rows], "o-", markersize=3, color=color, label=run.name)
        ax_loss.plot(epochs, [r["test_loss"] for r in rows], "o-", markersize=3, color=color, label=f"{run.name} test")
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], "--", color=color, alpha=0.6, label=f"{run.name} train")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    ax_loss.set(xlabel="epoch", ylabel="loss (each run's own loss)", title="loss: test (solid), train (dashed)")
    ax_loss.set_yscale("log")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def compare_runs(runs, out=None) -> tuple[str, Path, Path]:
    """Write the figure (default compare.png) and its table (same name, .md); (table, figure, table file)."""
    runs = [Path(r) for r in runs]
    figure = Path(out) if out is not None else Path("compare.png")
    if figure.suffix.lower() != ".png":
        figure = figure.with_suffix(".png")
    figure.parent.mkdir(parents=True, exist_ok=True)
    header, rows = table_rows(runs)
    table = markdown(header, rows)
    plot_runs(runs, figure)
    table_file = figure.with_suffix(".md")
    write_text_atomic(table_file, table)
    return table, figure, table_file
