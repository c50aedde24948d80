"""The later explanations' figures, from the tables of heavytail.report.explanations.

    python -m heavytail.report.figures.explanations batch_size_sweep --tables results/<scale>/tables --out <png>
    python -m heavytail.report.figures.explanations class_imbalance --tables results/<scale>/tables --out <png>

batch_size_sweep (Kunstner et al. 2023, Fig 1 style): (a) final training loss on the fixed subset against the batch
size, one line per optimizer (mean over seeds, bars min to max; an open marker is a best lr still on its grid's
edge); (b) the measured noise at init, ||g_B - grad f|| relative to ||grad f|| and the q99/median spread of the
noise norms; (c) its tail index with interval beside the Gaussian reference level (grey). At the full batch the
noise is zero by construction.
class_imbalance (Kunstner et al. 2024, Fig 1 style): training loss of each frequency group over steps, one panel
per optimizer (seed 0), most frequent group dark, rarest light: the base BERT (Fig 1a/Fig 3 runs), the linear
softmax model, and the class-balanced vision runs (the control).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from heavytail.report.aggregate import read_tables
from heavytail.report.figures.style import OPTIMIZER_COLORS, plt, save_figure

LABELS = {"sgdm": "SGD momentum", "adam": "Adam", "gclip": "GClip", "sign_descent": "sign descent (momentum)",
          "acclip": "ACClip", "acclip_normalized": "ACClip (normalised)", "acclip_paper": "ACClip (paper's hparams)"}
COLORS = {**OPTIMIZER_COLORS, "sign_descent": "#ff7f0e"}
ROWS = (("pretrain", "base BERT (Fig 1a / Fig 3 runs)"), ("linear_softmax", "linear softmax, frozen features"),
        ("vision", "vision (class-balanced control)"))


def _order(names) -> list[str]:
    names = list(dict.fromkeys(names))
    return [n for n in LABELS if n in names] + sorted(set(names) - set(LABELS))


def _panels(train: pd.DataFrame, source: str) -> list[tuple[str, str]]:
    """(model, optimizer) of every run of `source`, by model, then in the labels' order."""
    rank = {name: i for i, name in enumerate(LABELS)}
    pairs = train[train["source"] == source][["model", "optimizer"]].drop_duplicates().itertuples(index=False)
    return sorted(((p.model, p.optimizer) for p in pairs), key=lambda p: (p[0], rank.get(p[1], len(rank)), p[1]))


def batch_size_sweep(tables_dir: str | Path, png_path: str | Path) -> None:
    sweep = read_tables(Path(tables_dir)).get("batch_size_sweep", pd.DataFrame())
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    runs = sweep[sweep["kind"] == "run"] if not sweep.empty else sweep
    ax = axes[0]
    for name in _order(runs["optimizer"]) if not runs.empty else []:
        part = runs[runs["optimizer"] == name]
        by_batch = part.groupby("batch_size")["loss"]
        mean, lo, hi = by_batch.mean(), by_batch.min(), by_batch.max()
        color = COLORS.get(name)
        ax.errorbar(mean.index, mean.values, yerr=[mean.values - lo.values, hi.values - mean.values], color=color,
                    marker="o", ms=4, capsize=2, lw=1.4, label=f"{LABELS.get(name, name)} ({part['seed'].nunique()} seeds)")
        edge = part[part["on_edge"].astype(str) == "True"].groupby("batch_size")["loss"].mean()
        if len(edge):
            ax.plot(edge.index, edge.values, "o", ms=9, mfc="none", color=color)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")  # sign descent and Adam may reach 1e-8 at the full batch, SGDm stays near 1
    ax.set_xlabel("batch size (sequences; last = full batch)")
    ax.set_ylabel("final training loss (nats)")
    ax.set_title("(a) training loss at equal steps", fontsize=9)
    if not runs.empty:
        ax.legend(fontsize=7)
    noise = sweep[sweep["kind"] == "noise"].sort_values("batch_size") if not sweep.empty else sweep
    ax = axes[1]
    if not noise.empty:
        ax.plot(noise["batch_size"], noise["relative_noise"], "o-", color="black", ms=4,
                label="mean ||g_B - grad f|| / ||grad f||")
        twin = ax.twinx()
        measured = noise[noise["status"] == "ok"]
        twin.plot(measured["batch_size"], measured["q99_over_median"], "s--", color="#9467bd", ms=4,
                  label="q99 / median of the noise norms")
        twin.set_ylabel("q99 / median", color="#9467bd")
        ax.legend(fontsize=7, loc="upper right")
        twin.legend(fontsize=7, loc="center right")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("relative noise norm (at init)")
    ax.set_title("(b) the noise shrinks (zero at full batch)", fontsize=9)
    ax = axes[2]
    measured = noise[noise["status"] == "ok"] if not noise.empty else noise
    if not measured.empty:
        alpha = pd.to_numeric(measured["tail_index"], errors="coerce")
        lo = pd.to_numeric(measured["tail_index_lo"], errors="coerce")
        hi = pd.to_numeric(measured["tail_index_hi"], errors="coerce")
        ax.errorbar(measured["batch_size"], alpha, yerr=[alpha - lo, hi - alpha], fmt="o-", color="black", ms=4,
                    capsize=2, label="tail index (block sums)")
        glo = pd.to_numeric(measured["gaussian_tail_index_lo"], errors="coerce")
        ghi = pd.to_numeric(measured["gaussian_tail_index_hi"], errors="coerce")
        ax.fill_between(measured["batch_size"], glo, ghi, color="grey", alpha=0.3, label="the estimator on Gaussian noise")
        ax.legend(fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("tail index alpha (2 = Gaussian)")
    ax.set_title("(c) tail index of the noise", fontsize=9)
    fig.tight_layout()
    save_figure(fig, png_path)


def class_imbalance(tables_dir: str | Path, png_path: str | Path) -> None:
    tables = read_tables(Path(tables_dir))
    groups = tables.get("frequency_groups", pd.DataFrame())
    train = groups[(groups["split"] == "train") & (groups["seed"] == groups["seed"].min())] if not groups.empty \
        else groups
    panels = {source: _panels(train, source) for source, _ in ROWS} if not train.empty else {}
    panels = {source: pairs for source, pairs in panels.items() if pairs}
    rows = [(s, title) for s, title in ROWS if s in panels] or [("none", "no run has logged its groups yet")]
    columns = max([len(p) for p in panels.values()] or [1])
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.6 * columns, 2.3 * len(rows)), squeeze=False)
    for i, (source, title) in enumerate(rows):
        for j in range(columns):
            ax = axes[i][j]
            if j >= len(panels.get(source, [])):
                ax.axis("off")
                continue
            model, optimizer = panels[source][j]
            run = train[(train["source"] == source) & (train["model"] == model) & (train["optimizer"] == optimizer)]
            n = int(run["group"].max()) + 1
            cmap = plt.get_cmap("viridis")
            for g, curve in run.groupby("group"):
                curve = curve.sort_values("step")
                ax.plot(curve["step"], curve["loss"], color=cmap(g / max(1, n - 1)), lw=1.1,
                        label=("most frequent" if g == 0 else "rarest" if g == n - 1 else None))
            name = LABELS.get(optimizer, optimizer)
            ax.set_title(f"{name}" + (f" ({model})" if source == "vision" else ""), fontsize=8)
            ax.set_xlabel("step", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{title}\ntraining loss", fontsize=7)
                ax.legend(fontsize=6)
    fig.suptitle("Training loss by frequency group (equal shares of the training examples)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, png_path)


FIGURES = {"batch_size_sweep": batch_size_sweep, "class_imbalance": class_imbalance}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", choices=sorted(FIGURES))
    parser.add_argument("--tables", required=True, help="the aggregated tables folder")
    parser.add_argument("--out", required=True, help="PNG (an SVG is written beside it)")
    args = parser.parse_args(argv)
    FIGURES[args.figure](args.tables, args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
