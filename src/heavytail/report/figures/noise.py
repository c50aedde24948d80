"""Noise figures (Figs 2, 4, 5, 6, 7) and the table of every noise measurement, drawn from saved measurements.

Each measurement folder holds noise.npz (`norms__<group>`, `variance_curve__<group>`), summary.json (with flat
`rows`) and, for per-coordinate runs, per_coordinate.npz (`noise__<set>`: minibatches x sampled coordinates of
g_B - grad f, set "all" uniform over the model). Tail indices in the panels are the paper's block-sum estimator,
each beside its reading on Gaussian noise measured alike (below 2 when N_mean is small). Histograms show noise norms divided
by their own median (`normalise_by_median`), measured and reference alike, in `bins` bins from the smallest value
to the `upper_quantile` (the last bin also counts everything beyond it, so a heavy tail shows as a bar at the
right edge). Measured panels that are compared (Figs 4, 5, 6) share bin edges; Fig 2's reference panels keep
their own range, as in the paper, since an alpha-stable reference spans ~100x the median.

    python -m heavytail.report.figures.noise --config <json: figure, panels, figure settings> --out <png|csv>
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.io import atomic_path, read_json
from heavytail.noise.reference import gaussian_reference_norms, normalise_by_median, stable_reference_norms
from heavytail.report.figures.style import save_figure

FIGURE_DEFAULTS = {"bins": 40, "reference_dim": 100, "reference_alpha": 1.5, "upper_quantile": 0.995}
MEASURED, REFERENCE = "#1f77b4", "#7f7f7f"
TABLE_FIRST = ["model", "data", "step", "fraction", "batch_size", "group", "mean", "std", "tail_index",
               "tail_index_lo", "tail_index_hi", "gaussian_tail_index", "paired_tail_index",
               "variance_relative_range", "name"]


class Measurement:
    """One measurement folder: norms and variance curves per group, its summary, per-coordinate noise if any."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "summary.json").is_file():
            raise ConfigError(f"noise figure: {self.path}/summary.json is missing (run its measure_noise rule)")
        self.summary = read_json(self.path / "summary.json")
        with np.load(self.path / "noise.npz") as arrays:
            self.arrays = {k: arrays[k] for k in arrays.files}
        self.meta = self.summary["metadata"]

    def norms(self, group: str = "all") -> np.ndarray:
        return self.arrays[f"norms__{group}"]

    def curve(self, group: str = "all") -> np.ndarray:
        return self.arrays[f"variance_curve__{group}"]

    def _stats(self, group: str) -> dict:
        return self.summary["overall"] if group == "all" else self.summary["groups"][group]

    def alpha(self, group: str = "all") -> dict:
        """The paper's estimator: block sums of whole noise vectors."""
        return self._stats(group)["tail_index_block_sums"] or {}

    def gaussian_alpha(self, group: str = "all") -> dict:
        """The block-sum estimator's reading on Gaussian noise of this dimension, measured alike."""
        return self._stats(group).get("tail_index_block_sums_gaussian") or {}

    def paired_alpha(self, group: str = "all") -> dict:
        return self._stats(group)["tail_index_norms"] or {}

    def groups(self) -> list[str]:
        return sorted(self.summary["groups"])

    def coordinates(self) -> dict[str, np.ndarray]:
        path = self.path / "per_coordinate.npz"
        if not path.is_file():
            raise ConfigError(f"noise figure: {path} is missing (measure {self.path} with per_coordinate)")
        with np.load(path) as arrays:
            return {k.split("__", 1)[1]: arrays[k] for k in arrays.files}

    def label(self) -> str:
        return f"{self.meta['model']} / {self.meta['data']}, step {self.meta['step']}, B={self.meta['batch_size']}"


def _interval_text(est: dict, name: str = "alpha") -> str:
    if not est or est.get("alpha") is None:
        return f"{name} n/a"
    hi = "inf" if est.get("hi") is None else f"{est['hi']:.2f}"
    lo = "?" if est.get("lo") is None else f"{est['lo']:.2f}"
    return f"{name} {est['alpha']:.2f} [{lo}, {hi}]"


def _alpha_text(m: Measurement) -> str:
    """Block-sum alpha with its interval and the Gaussian level it should be read against."""
    gaussian = m.gaussian_alpha()
    return _interval_text(m.alpha()) + ("" if gaussian.get("alpha") is None
                                        else "\nGaussian noise: " + _interval_text(gaussian))


def shared_bins(samples: list[np.ndarray], bins: int, upper_quantile: float) -> np.ndarray:
    """Bin edges shared by panels: from the smallest value to the largest upper quantile among them."""
    lo = min(float(np.min(x)) for x in samples)
    hi = max(float(np.quantile(x, upper_quantile)) for x in samples)
    return np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)


def _histogram(ax, values: np.ndarray, edges: np.ndarray, color: str, title: str, note: str = "") -> None:
    clipped = np.clip(values, edges[0], edges[-1])  # the last bin counts everything beyond the shared range
    ax.hist(clipped, bins=edges, color=color, alpha=0.85)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("noise norm / median")
    ax.set_ylabel("count")
    text = f"max/median {values.max():.2f}" + (f"\n{note}" if note else "")
    ax.text(0.97, 0.95, text, transform=ax.transAxes, ha="right", va="top", fontsize=7)


def _variance_panel(ax, m: Measurement, title: str) -> None:
    curve = m.curve()
    n = np.arange(1, len(curve) + 1)
    ax.plot(n, curve, color=MEASURED, lw=1.2)
    ax.axhline(curve[-1], color="k", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("number of sampled minibatches")
    ax.set_ylabel("running mean of ||g - grad f||^2")
    stats = m.summary["overall"]["variance_curve"]
    rng = stats.get("relative_range_last_half")
    ax.set_title(title, fontsize=8)
    if rng is not None:
        ax.text(0.97, 0.95, f"last-half range {100 * rng:.1f}% of final", transform=ax.transAxes, ha="right",
                va="top", fontsize=7)


def fig2(image: str | Path, bert: str | Path, out_png: str | Path, settings: dict | None = None) -> list[Path]:
    """Fig 2: image-model and BERT noise histograms at init, the two reference sums, both variance curves."""
    s = {**FIGURE_DEFAULTS, **(settings or {})}
    img, txt = Measurement(image), Measurement(bert)
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.4))
    rows = [(img, gaussian_reference_norms(len(img.norms()), int(s["reference_dim"]), seed=0),
             f"sum of {int(s['reference_dim'])} squared Gaussians (sqrt)"),
            (txt, stable_reference_norms(len(txt.norms()), int(s["reference_dim"]), float(s["reference_alpha"]),
                                         seed=0),
             f"sum of {int(s['reference_dim'])} squared {s['reference_alpha']}-stable (sqrt)")]
    for r, (m, reference, ref_title) in enumerate(rows):
        measured = normalise_by_median(m.norms())
        letters = "abc" if r == 0 else "def"
        # each histogram spans its own range (as in the paper): a stable reference would squash a measured bell
        for col, (values, color, title, note) in enumerate((
                (measured, MEASURED, f"({letters[0]}) {m.label()}", _alpha_text(m)),
                (reference, REFERENCE, f"({letters[1]}) {ref_title}", ""))):
            edges = shared_bins([values], int(s["bins"]), float(s["upper_quantile"]))
            _histogram(axes[r, col], values, edges, color, title, note)
        _variance_panel(axes[r, 2], m, f"({letters[2]}) variance vs sample size: {m.meta['model']}")
    fig.suptitle("Gradient-noise norms at initialisation (median-normalised; last bin = overflow)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png)


def fig4(panels: dict[str, str | Path], out_png: str | Path, settings: dict | None = None) -> list[Path]:
    """Fig 4: noise histograms of Attention vs ResNet-like BERT on text vs Gaussian input (keys a, b, c, d)."""
    s = {**FIGURE_DEFAULTS, **(settings or {})}
    order = [("a", "Attention + text"), ("b", "Attention + Gaussian input"), ("c", "ResNet-like + text"),
             ("d", "ResNet-like + Gaussian input")]
    ms = {key: Measurement(panels[key]) for key, _ in order}
    values = {key: normalise_by_median(m.norms()) for key, m in ms.items()}
    edges = shared_bins(list(values.values()), int(s["bins"]), float(s["upper_quantile"]))
    fig, axes = plt.subplots(2, 2, figsize=(8, 6))
    for ax, (key, title) in zip(axes.ravel(), order, strict=True):
        _histogram(ax, values[key], edges, MEASURED, f"({key}) {title}: {ms[key].label()}",
                   _alpha_text(ms[key]))
    fig.suptitle("Noise norms by architecture and input (median-normalised, shared bins)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png)


def fig5(bert: list[str | Path], image: list[str | Path], out_png: str | Path,
         settings: dict | None = None) -> list[Path]:
    """Fig 5: noise histograms at several points of training, BERT (top) and the image model (bottom)."""
    s = {**FIGURE_DEFAULTS, **(settings or {})}
    rows = [[Measurement(p) for p in bert], [Measurement(p) for p in image]]
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(2, cols, figsize=(2.9 * cols, 5.6), squeeze=False)
    for r, ms in enumerate(rows):
        values = [normalise_by_median(m.norms()) for m in ms]
        edges = shared_bins(values, int(s["bins"]), float(s["upper_quantile"]))
        for c in range(cols):
            ax = axes[r, c]
            if c >= len(ms):
                ax.axis("off")
                continue
            m = ms[c]
            pct = 100 * (m.meta.get("fraction") or 0.0)
            _histogram(ax, values[c], edges, MEASURED, f"{m.meta['model']}: {pct:.0f}% (step {m.meta['step']})",
                       _alpha_text(m))
    fig.suptitle("Noise norms during training (median-normalised, shared bins per row)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png)


def fig6(init: str | Path, trained: str | Path, out_png: str | Path, settings: dict | None = None) -> list[Path]:
    """Fig 6: AlexNet noise norms at init and after training; per-coordinate noise of one minibatch at init."""
    s = {**FIGURE_DEFAULTS, **(settings or {})}
    a, b = Measurement(init), Measurement(trained)
    values = [normalise_by_median(a.norms()), normalise_by_median(b.norms())]
    edges = shared_bins(values, int(s["bins"]), float(s["upper_quantile"]))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, m, v, letter in zip(axes[:2], (a, b), values, "ab", strict=True):
        _histogram(ax, v, edges, MEASURED, f"({letter}) {m.label()}", _alpha_text(m))
    _coordinate_panel(axes[2], a, int(s["bins"]))
    fig.tight_layout()
    return save_figure(fig, out_png)


def _coordinate_panel(ax, m: Measurement, bins: int) -> None:
    """Fig 6c: the sampled coordinates of one minibatch's noise vector g_B - grad f, against a Gaussian."""
    coords = m.coordinates()
    if "all" not in coords:
        raise ConfigError(f"noise figure: {m.path}/per_coordinate.npz has no noise__all (measured before Fig 6c "
                          "became g_B - grad f; measure it again)")
    row = coords["all"][0].astype(np.float64)
    row = row[row != 0]
    scale = max(float(np.median(np.abs(row))), 1e-30)
    values = row / scale
    edge = float(np.quantile(np.abs(values), 0.999))
    edges = np.linspace(-edge, edge, 2 * bins + 1)
    clipped = np.clip(values, -edge, edge)
    ax.hist(clipped, bins=edges, density=True, color=MEASURED, alpha=0.85, label="measured")
    sigma = 1.4826  # a Gaussian whose median |x| is 1, the scale the coordinates were divided by
    x = np.linspace(-edge, edge, 400)
    ax.plot(x, np.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi)), "k--", lw=0.8,
            label="Gaussian, same median |x|")
    ax.set_yscale("log")
    counts, _ = np.histogram(clipped, bins=edges, density=True)
    ax.set_ylim(0.3 * counts[counts > 0].min(), 3 * counts.max())
    ax.set_xlabel("coordinate of g_B - grad f / its median |value|")
    ax.set_ylabel("density")
    info = m.summary.get("per_coordinate") or {}
    est = info.get("tail_index", {}).get("all") or {}
    ax.set_title(f"(c) {len(row)} sampled coordinates of one minibatch's noise (B={m.meta['batch_size']}), "
                 f"step {m.meta['step']}", fontsize=8)
    lines = [f"this minibatch: alpha {_number(est.get('first_minibatch'))}",
             f"{info.get('n_minibatches', '?')} minibatches: median {_number(est.get('minibatch_median'))} "
             f"[{_number(est.get('minibatch_q05'))}, {_number(est.get('minibatch_q95'))}]",
             "pooled: " + _interval_text(est)]
    ax.text(0.03, 0.95, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=6)
    ax.legend(fontsize=6, loc="upper right")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _column(estimates: list[dict], key: str, missing: float = np.nan) -> np.ndarray:
    return np.array([e.get(key) if e.get(key) is not None else missing for e in estimates], dtype=float)


def fig7(image: list[str | Path], bert: list[str | Path], out_png: str | Path,
         settings: dict | None = None) -> list[Path]:
    """Fig 7: block-sum tail index (the paper's) and paired differences across training, with the Gaussian level."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, paths, title in ((axes[0], image, "image model"), (axes[1], bert, "BERT")):
        ms = sorted((Measurement(p) for p in paths), key=lambda m: m.meta["step"])
        if not ms:
            continue
        x = np.array([100 * (m.meta.get("fraction") or 0.0) for m in ms])
        gaussian = [m.gaussian_alpha() for m in ms]
        if any(g.get("alpha") is not None for g in gaussian):
            # what the block-sum estimator returns on Gaussian noise of the same counts and dimension
            ax.fill_between(x, _column(gaussian, "lo"), _column(gaussian, "hi"), color=REFERENCE, alpha=0.25, lw=0)
            ax.plot(x, _column(gaussian, "alpha"), color=REFERENCE, ls="--", lw=0.8,
                    label=f"block sums of Gaussian noise measured alike (K1={ms[0].meta['block_size']}, "
                          f"N_mean={ms[0].meta['n_mean']})")
        for offset, getter, label, style in ((0.0, Measurement.alpha, "block sums of noise vectors (paper)", "s-C0"),
                                             (1.2, Measurement.paired_alpha, "norms, paired differences", "o-C1")):
            est = [getter(m) for m in ms]
            alpha, lo, hi = _column(est, "alpha"), _column(est, "lo"), _column(est, "hi", 4.0)
            err = np.vstack([np.clip(alpha - lo, 0, None), np.clip(hi - alpha, 0, None)])
            ax.errorbar(x + offset, alpha, yerr=err, fmt=style, ms=4, capsize=3, lw=1, label=label)
        ax.axhline(2.0, color="k", ls=":", lw=0.8)
        ax.set_ylim(0, 3.5)
        ax.set_xlabel("% of training")
        ax.set_title(f"{title}: {ms[0].meta['model']} / {ms[0].meta['data']}, B={ms[0].meta['batch_size']}, "
                     f"{ms[0].meta['n_samples']} samples", fontsize=8)
    axes[0].set_ylabel("tail index alpha (2 = Gaussian)")
    axes[1].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out_png)


def noise_table(folders: list[str | Path]) -> pd.DataFrame:
    """One row per (measurement, parameter group): the summary rows, quantiles and intervals flattened."""
    rows = []
    for folder in folders:
        for row in read_json(Path(folder) / "summary.json")["rows"]:
            flat = {k: v for k, v in row.items() if k not in ("quantiles", "tail_index")}
            flat.update({f"q{k}": v for k, v in row["quantiles"].items()})
            est = row.get("tail_index") or {}
            flat.update(tail_index=est.get("alpha"), tail_index_lo=est.get("lo"), tail_index_hi=est.get("hi"))
            rows.append(flat)
    frame = pd.DataFrame(rows)
    first = [c for c in TABLE_FIRST if c in frame.columns]
    return frame[first + sorted(c for c in frame.columns if c not in first)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON: figure (fig2..fig7 or table), panels, settings")
    parser.add_argument("--out", required=True, help="PNG (SVG beside it) or, for table, the CSV")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "noise", ("figure", "panels"))
    figure, panels, settings = cfg["figure"], cfg["panels"], cfg["figures"]
    if figure == "table":
        frame = noise_table(panels)
        with atomic_path(args.out) as tmp:
            frame.to_csv(tmp, index=False)
        print(f"noise table: {len(frame)} rows from {len(panels)} measurements", flush=True)
        return
    drawers = {"fig2": lambda: fig2(panels["image"], panels["bert"], args.out, settings),
               "fig4": lambda: fig4(panels, args.out, settings),
               "fig5": lambda: fig5(panels["bert"], panels["image"], args.out, settings),
               "fig6": lambda: fig6(panels["init"], panels["trained"], args.out, settings),
               "fig7": lambda: fig7(panels["image"], panels["bert"], args.out, settings)}
    if figure not in drawers:
        raise ConfigError(f"noise figure: figure must be one of {', '.join(drawers)} or table (got {figure!r})")
    for path in drawers[figure]():
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
