"""Figures behind Table 1: the synthetic checks of the theory, drawn from `theory_data.json`."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from heavytail.io import read_json
from heavytail.report.figures.style import OPTIMIZER_COLORS, save_figure

LINESTYLE = {"printed": ":", "proof": "-", "": "-"}


def _color(method: str) -> str:
    return OPTIMIZER_COLORS.get(method.split("_")[0], "#000000")


def _reference(ax, x, y_at_end, slope, label):
    """A dashed line of the theory slope through the last point of a curve."""
    x = np.asarray(x, dtype=np.float64)
    ax.plot(x, y_at_end * (x / x[-1]) ** slope, "k--", lw=0.8, alpha=0.6, label=label)


def _rates_panel(ax, data, alpha, noise):
    curves = [c for c in data["rates"]["curves"] if c["alpha"] == alpha and c["noise"] == noise]
    for c in curves:
        reading = c["method"].split("_", 1)[1] if "_" in c["method"] else ""
        ax.loglog(c["k"], c["mean"], LINESTYLE[reading], color=_color(c["method"]), lw=1.2,
                  label=f"{c['method']} ({c['slope']:+.2f})")
    if curves:
        ref = next(c for c in curves if c["method"] == "gclip_proof") if any(
            c["method"] == "gclip_proof" for c in curves) else curves[0]
        _reference(ax, ref["k"], ref["mean"][-1], ref["theory_slope"], f"theory {ref['theory_slope']:+.2f}")
    ax.set_title(f"{noise} noise, alpha={alpha:g}")
    ax.set_xlabel("k")
    ax.set_ylabel("E f(xbar_k) - f*")
    ax.legend(fontsize=6)


def _lower_bound_panel(ax, data):
    for c in data["lower_bound"]["curves"]:
        if c["method"] not in ("gclip_proof", "zero"):
            continue
        style = "-" if c["method"] == "gclip_proof" else ":"
        ax.loglog(c["k"], c["worst_mean"], style, marker="o", ms=3, color=f"C{int(10 * c['alpha']) % 10}",
                  label=f"{c['method']} a={c['alpha']:g} ({c['slope']:+.2f} vs {c['theory_slope']:+.2f})")
    ax.set_title("two-point lower-bound noise (Thm 6)")
    ax.set_xlabel("horizon k (eps tuned to k)")
    ax.set_ylabel("max_b E f_b(xbar_k)")
    ax.legend(fontsize=6)


def _appendix_a_panel(ax, data):
    a = data["appendix_a"]
    for name in ("sgd_const", "gclip_const", "sgd", "gclip"):
        entry = a["methods"][name]["max_error"]
        style = "-" if name.endswith("const") else "--"
        ax.loglog(a["k"], entry["q0.99"], style, color=_color(name), label=f"{name} q99")
        ax.loglog(a["k"], entry["q0.5"], style, color=_color(name), alpha=0.4, lw=0.8)
    ax.set_title(f"Appendix A: running max error, alpha={a['alpha']:g}")
    ax.set_xlabel("k")
    ax.set_ylabel("max_{j<=k} f(x_j) - f* (q99, q50 faint)")
    ax.legend(fontsize=6)


def _seed_mean_panel(ax, data):
    a = data["appendix_a"]
    for name in ("sgd", "gclip", "sgd_const", "gclip_const"):
        entry = a["methods"][name]
        ax.loglog(entry["seed_subsets"], entry["mean_over_first_seeds"], marker=".", color=_color(name),
                  ls="-" if name.endswith("const") else "--", label=name)
    ax.set_title("seed mean of f(x_K) - f* vs seeds used")
    ax.set_xlabel("seeds averaged")
    ax.legend(fontsize=6)


def _dimension_panel(ax, data):
    dim = data["dimension"]
    for c in dim["curves"]:
        reading = c["method"].split("_", 1)[1]
        ax.loglog(c["d"], c["mean"], LINESTYLE[reading], marker="o", ms=3, color=_color(c["method"]),
                  label=f"{c['method']} d^{c['slope']:.2f} (thm d^{c['theory_slope']:.2f})")
    ax.set_title(f"GClip vs CClip vs d, alpha={dim['alpha']:g}, k={dim['steps']}")
    ax.set_xlabel("d (B_i = 1)")
    ax.set_ylabel("E f(xbar_k) - f*")
    ax.legend(fontsize=6)


def _nonconvex_panel(ax, data):
    for c in data["nonconvex"]["curves"]:
        color = f"C{int(10 * c['alpha']) % 10}"
        ax.loglog(c["K"], c["mean"], "-" if c["method"] == "gclip" else ":", marker=".", color=color,
                  label=f"{c['method']} a={c['alpha']:g} ({c['slope']:+.2f} vs {c['theory_slope']:+.2f})")
        if c["method"] == "gclip":
            ax.loglog(c["K"], c["bound"], "--", color=color, lw=0.7, alpha=0.6)
    ax.set_title("non-convex (Thm 2), dashed: bound")
    ax.set_xlabel("K")
    ax.set_ylabel("(1/K) sum E||grad f||^2")
    ax.legend(fontsize=6)


def _adam_panel(ax, data):
    curve = data["adam_clipping"]["curve"]
    for eps, ratio in curve["ratio"].items():
        ax.semilogx(curve["v_over_g2"], ratio, label=f"eps/|g|={eps}")
    ax.axhline(0.5, color="k", ls="--", lw=0.8, label="claimed lower bound 1/2")
    ax.axhline(0.25, color="r", ls=":", lw=0.8, label="true minimum 1/4")
    ax.set_ylim(0.2, 0.55)
    ax.set_title(f"section 3.1: h_Adam / h_clip, beta2={curve['beta2']}")
    ax.set_xlabel("v / g^2")
    ax.legend(fontsize=6)


def table1(data_dir: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Rate curves (log-log, fitted slopes), the lower-bound family, Appendix A, GClip vs CClip vs d, Thm 2, 3.1."""
    data = read_json(Path(data_dir) / "theory_data.json")
    alphas = sorted({c["alpha"] for c in data["rates"]["curves"]})
    noise = data["rates"]["curves"][0]["noise"]
    cols = max(3, len(alphas))
    fig, axes = plt.subplots(3, cols, figsize=(4.2 * cols, 10.5), squeeze=False)
    for i, alpha in enumerate(alphas):
        _rates_panel(axes[0, i], data, alpha, noise)
    for ax in axes[0, len(alphas):]:
        ax.set_visible(False)
    _lower_bound_panel(axes[1, 0], data)
    _appendix_a_panel(axes[1, 1], data)
    _dimension_panel(axes[1, 2], data)
    _nonconvex_panel(axes[2, 0], data)
    _seed_mean_panel(axes[2, 1], data)
    _adam_panel(axes[2, 2], data)
    fig.suptitle("Table 1 checked on synthetic problems (solid: tau ~ k^(1/alpha) as in the proofs; "
                 "dotted: k^(alpha-1) as printed)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Draw Table 1's figure from the theory data folder.")
    parser.add_argument("--data", required=True, help="folder with theory_data.json (the run_theory output)")
    parser.add_argument("--out", required=True, help="PNG path (an SVG is written beside it)")
    args = parser.parse_args(argv)
    table1(args.data, args.out)


if __name__ == "__main__":
    main()
