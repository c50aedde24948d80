"""Shared matplotlib setup: the agg backend, one style, and saving every figure as PNG and SVG."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402

# one colour per optimizer, the same in every figure
OPTIMIZER_COLORS = {
    "sgd": "#7f7f7f",
    "sgdm": "#1f77b4",
    "gclip": "#17becf",
    "cclip": "#9467bd",
    "adam": "#d62728",
    "adamw": "#d62728",
    "acclip": "#2ca02c",
    "acclip_normalized": "#bcbd22",
    "acclip_paper": "#8c564b",
}

plt.rcParams.update({
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
})


def save_figure(fig: plt.Figure, png_path: str | os.PathLike) -> list[Path]:
    """Save `fig` as PNG at `png_path` and as SVG beside it (atomically), then close it."""
    png = Path(png_path)
    png.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for path in (png, png.with_suffix(".svg")):
        tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
        fig.savefig(tmp, bbox_inches="tight")
        os.replace(tmp, path)
        written.append(path)
    plt.close(fig)
    return written
