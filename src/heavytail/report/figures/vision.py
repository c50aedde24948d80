"""Fig 1b and Fig 8 (validation loss of ResNet: SGDm vs Adam, + ACClip) and the final-accuracy table.

    python -m heavytail.report.figures.vision fig1b --runs <run dir>... --out results/<scale>/figures/fig1b.png
    python -m heavytail.report.figures.vision accuracy --runs <run dir>... --out results/<scale>/tables/vision_accuracy.csv

A run dir is results/<scale>/vision/<model>/<optimizer>/seed<N>; its metrics.jsonl is read directly.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from heavytail.io import atomic_path, read_jsonl
from heavytail.report.figures.style import OPTIMIZER_COLORS, plt, save_figure

# Appendix I: ResNet50 on ImageNet, final validation accuracy (top-1)
PAPER_ACCURACY = {"sgdm": 0.754, "adam": 0.716, "acclip": 0.730}
LABELS = {"sgdm": "SGD momentum", "adam": "Adam", "acclip": "ACClip"}
SEED_DIR = re.compile(r"seed(\d+)$")


def validation_curves(run_dirs: list[str | Path]) -> pd.DataFrame:
    """Long table (optimizer, seed, step, loss, top1, top5) of every validation row of the runs."""
    rows = []
    for run in map(Path, run_dirs):
        seed = int(SEED_DIR.match(run.name).group(1)) if SEED_DIR.match(run.name) else 0
        for row in read_jsonl(run / "metrics.jsonl"):
            if row.get("split") == "validation":
                rows.append({"model": run.parent.parent.name, "optimizer": run.parent.name, "seed": seed,
                             "step": row["step"], "loss": row.get("loss"), "top1": row.get("top1"),
                             "top5": row.get("top5")})
    return pd.DataFrame(rows, columns=["model", "optimizer", "seed", "step", "loss", "top1", "top5"])


def _loss_figure(run_dirs, png_path, optimizers: tuple[str, ...], title: str) -> None:
    curves = validation_curves(run_dirs)
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for name in optimizers:
        part = curves[curves["optimizer"] == name]
        if part.empty:
            continue
        by_step = part.groupby("step")["loss"]
        mean, low, high = by_step.mean(), by_step.min(), by_step.max()
        ax.plot(mean.index, mean.values, label=LABELS.get(name, name), color=OPTIMIZER_COLORS.get(name))
        if part["seed"].nunique() > 1:  # band: min-max over seeds
            ax.fill_between(mean.index, low.values, high.values, alpha=0.2, color=OPTIMIZER_COLORS.get(name))
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation loss")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, png_path)


def fig1b(run_dirs, png_path) -> None:
    """Validation loss of the ResNet runs: SGD with momentum vs Adam."""
    _loss_figure(run_dirs, png_path, ("sgdm", "adam"), "ResNet: SGDm vs Adam (Fig 1b)")


def fig8(run_dirs, png_path) -> None:
    """Validation loss of the ResNet runs: SGD with momentum, Adam and ACClip."""
    _loss_figure(run_dirs, png_path, ("sgdm", "adam", "acclip"), "ResNet: SGDm, Adam, ACClip (Fig 8)")


def accuracy_table(run_dirs) -> pd.DataFrame:
    """Final validation top-1/top-5/loss per optimizer (mean over seeds), beside the paper's top-1."""
    curves = validation_curves(run_dirs)
    final = curves.sort_values("step").groupby(["model", "optimizer", "seed"]).tail(1)
    table = final.groupby(["model", "optimizer"]).agg(
        seeds=("seed", "nunique"), final_step=("step", "max"), top1=("top1", "mean"), top1_std=("top1", "std"),
        top5=("top5", "mean"), val_loss=("loss", "mean")).reset_index()
    table["paper_top1"] = table["optimizer"].map(PAPER_ACCURACY)
    return table


def write_accuracy_table(run_dirs, csv_path) -> None:
    with atomic_path(csv_path) as tmp:
        accuracy_table(run_dirs).to_csv(tmp, index=False, float_format="%.4f")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw Fig 1b / Fig 8 or write the vision accuracy table.")
    parser.add_argument("artifact", choices=["fig1b", "fig8", "accuracy"])
    parser.add_argument("--runs", nargs="+", required=True, help="run dirs .../vision/<model>/<optimizer>/seed<N>")
    parser.add_argument("--out", required=True, help="PNG path (an SVG is written beside it) or the CSV path")
    args = parser.parse_args(argv)
    {"fig1b": fig1b, "fig8": fig8, "accuracy": write_accuracy_table}[args.artifact](args.runs, args.out)


if __name__ == "__main__":
    main()
