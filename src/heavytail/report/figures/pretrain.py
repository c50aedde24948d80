"""Fig 1a, Fig 3 (validation MLM loss of BERT pretraining per optimizer) and Table 2 (Adam vs ACClip by depth).

    python -m heavytail.report.figures.pretrain fig1a --metrics <run>/metrics.jsonl... --out results/<scale>/figures/fig1a.png
    python -m heavytail.report.figures.pretrain fig3 --metrics ... --out results/<scale>/figures/fig3.png
    python -m heavytail.report.figures.pretrain table2 --metrics ... --out results/<scale>/tables/table2.csv

A run is results/<scale>/pretrain/<model>/<optimizer>/seed<N>/metrics.jsonl. Two floors are drawn as
horizontal lines: the unigram floor (predicting training-token frequencies) and the context-free floor (the
best prediction from the token at the masked position alone, which Devlin masking leaves visible 20 % of the
time). Only a curve below the context-free floor has learned anything from context.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from heavytail.io import atomic_path, read_jsonl
from heavytail.report.figures.style import OPTIMIZER_COLORS, plt, save_figure

LABELS = {"sgdm": "SGD momentum", "gclip": "GClip", "adam": "Adam", "acclip": "ACClip",
          "acclip_normalized": "ACClip (normalised)", "acclip_paper": "ACClip (paper's hparams)"}
# Table 2 of the paper: validation loss and masked-LM accuracy (%) by depth
PAPER_TABLE2 = {
    ("adam", 6): (1.907, 63.45), ("acclip", 6): (1.877, 63.85),
    ("adam", 12): (1.718, 66.44), ("acclip", 12): (1.615, 67.16),
    ("adam", 24): (1.432, 70.56), ("acclip", 24): (1.413, 70.97),
}
PAPER_DEPTHS = (6, 12, 24)
SEED_DIR = re.compile(r"seed(\d+)$")
CURVE_COLUMNS = ["model", "optimizer", "seed", "step", "mlm_loss", "mlm_accuracy", "unigram_loss",
                 "context_free_loss"]


def load_runs(metrics_paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(validation curves, one status row per run) of the runs' metrics.jsonl files."""
    curves, runs = [], []
    for path in map(Path, metrics_paths):
        run = path.parent
        match = SEED_DIR.match(run.name)
        ident = {"model": run.parent.parent.name, "optimizer": run.parent.name,
                 "seed": int(match.group(1)) if match else 0}
        rows = read_jsonl(path)
        status = next((r for r in rows if r.get("split") == "status"), {})
        runs.append({**ident, "status": status.get("status", "unknown"),
                     "diverged_at_step": status.get("diverged_at_step")})
        for row in rows:
            if row.get("split") == "validation":
                curves.append({**ident, **{k: row.get(k) for k in CURVE_COLUMNS[3:]}})
    return pd.DataFrame(curves, columns=CURVE_COLUMNS), pd.DataFrame(runs)


def _loss_figure(metrics_paths, png_path, title: str) -> None:
    curves, runs = load_runs(metrics_paths)
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    order = [o for o in LABELS if o in set(curves["optimizer"])] + sorted(set(curves["optimizer"]) - set(LABELS))
    for name in order:
        part = curves[curves["optimizer"] == name]
        by_step = part.groupby("step")["mlm_loss"]
        mean = by_step.mean()
        seeds = part["seed"].nunique()
        diverged = runs[(runs["optimizer"] == name) & (runs["status"] == "diverged")]
        label = LABELS.get(name, name) + (f" (mean of {seeds} seeds)" if seeds > 1 else "")
        if len(diverged):
            label += f", {len(diverged)} diverged"
        color = OPTIMIZER_COLORS.get(name)
        ax.plot(mean.index, mean.values, label=label, color=color, lw=1.4)
        if seeds > 1:  # band: min-max over seeds
            ax.fill_between(mean.index, by_step.min().values, by_step.max().values, alpha=0.2, color=color)
    for column, name, style in (("unigram_loss", "unigram floor", "--"),
                                ("context_free_loss", "context-free floor", ":")):
        floor = curves[column].dropna()
        if len(floor):
            ax.axhline(float(floor.iloc[0]), color="black", ls=style, lw=1, label=f"{name} ({float(floor.iloc[0]):.2f})")
    ax.set_xlabel("step")
    ax.set_ylabel("validation MLM loss (nats)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, png_path)


def fig1a(metrics_paths, png_path) -> None:
    """Fig 1a: validation loss of BERT pretraining, SGD momentum vs Adam (band over seeds)."""
    _loss_figure(metrics_paths, png_path, "BERT pretraining: SGD momentum vs Adam")


def fig3(metrics_paths, png_path) -> None:
    """Fig 3: validation loss of BERT pretraining for SGDm, GClip, Adam and the ACClip variants."""
    _loss_figure(metrics_paths, png_path, "BERT pretraining: clipped and adaptive methods")


def table2_frame(metrics_paths) -> pd.DataFrame:
    """Final validation MLM loss and accuracy (%) of Adam and ACClip per model, with the paper's row beside."""
    curves, runs = load_runs(metrics_paths)
    depth_of = {m: int(re.search(r"(\d+)$", m).group(1)) if re.search(r"(\d+)$", m) else None
                for m in curves["model"].unique()}
    ordered = sorted(depth_of, key=lambda m: (depth_of[m] is None, depth_of[m]))
    rows = []
    for position, model in enumerate(ordered):
        for optimizer in ("adam", "acclip", "acclip_normalized"):  # ACClip's two readings beside Adam
            part = curves[(curves["model"] == model) & (curves["optimizer"] == optimizer)]
            status = runs[(runs["model"] == model) & (runs["optimizer"] == optimizer)]["status"]
            final = part[part["step"] == part["step"].max()] if len(part) else part
            paper_depth = PAPER_DEPTHS[position] if position < len(PAPER_DEPTHS) else None
            paper = PAPER_TABLE2.get(("acclip" if optimizer.startswith("acclip") else optimizer, paper_depth),
                                     (None, None))
            rows.append({
                "model": model, "num_layers": depth_of[model], "optimizer": optimizer,
                "status": ",".join(sorted(set(status))) or "missing",
                "val_loss": final["mlm_loss"].mean() if len(final) else None,
                "mlm_accuracy_pct": 100 * final["mlm_accuracy"].mean() if len(final) else None,
                "unigram_loss": part["unigram_loss"].iloc[0] if len(part) else None,
                "context_free_loss": part["context_free_loss"].iloc[0] if len(part) else None,
                "paper_layers": paper_depth, "paper_val_loss": paper[0], "paper_mlm_accuracy_pct": paper[1],
            })
    return pd.DataFrame(rows)


def table2(metrics_paths, csv_path) -> pd.DataFrame:
    """Table 2 as CSV: our final validation loss and MLM accuracy per depth beside the paper's."""
    frame = table2_frame(metrics_paths)
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", choices=["fig1a", "fig3", "table2"])
    parser.add_argument("--metrics", nargs="+", required=True, help="metrics.jsonl of each run")
    parser.add_argument("--out", required=True, help="PNG (figures; an SVG is written beside it) or CSV (table2)")
    args = parser.parse_args(argv)
    {"fig1a": fig1a, "fig3": fig3, "table2": table2}[args.artifact](args.metrics, args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
