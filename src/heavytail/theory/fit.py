"""Log-log slopes of mean error curves, with percentile intervals from resampling seeds."""

from __future__ import annotations

import numpy as np


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x (NaN if any y is not positive and finite)."""
    y = np.asarray(y, dtype=np.float64)
    if np.any(~np.isfinite(y)) or np.any(y <= 0):
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def bootstrap_slope(x: np.ndarray, groups: list[np.ndarray], samples: int, rng: np.random.Generator,
                    combine: str = "mean", level: float = 0.95) -> dict:
    """Slope of log(mean error) vs log x, and its percentile interval over seed resamples.

    Each group has shape (len(x), seeds_in_group) and is resampled on its own (multinomial counts over its
    seeds), so a seed that carries one of the rare huge jumps weighs in as often as chance gives it. Several
    groups (the two problems b_0, b_1 of the lower bound) are combined by `max` of their means.
    """
    def means(weights_per_group):
        curves = [w @ g.T / g.shape[1] for w, g in zip(weights_per_group, groups, strict=True)]
        return np.max(curves, axis=0) if combine == "max" else curves[0]

    point = means([np.ones((1, g.shape[1])) for g in groups])[0]
    counts = [rng.multinomial(g.shape[1], np.full(g.shape[1], 1.0 / g.shape[1]), size=samples).astype(np.float64)
              for g in groups]
    resampled = means(counts)  # (samples, len(x))
    logx = np.log(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        logy = np.log(resampled)
    ok = np.all(np.isfinite(logy), axis=1)
    design = np.vstack([logx, np.ones_like(logx)]).T
    slopes = np.linalg.lstsq(design, logy[ok].T, rcond=None)[0][0] if ok.any() else np.array([])
    tail = (1 - level) / 2
    lo, hi = np.quantile(slopes, [tail, 1 - tail]) if slopes.size else (np.nan, np.nan)
    return {"slope": loglog_slope(x, point), "slope_lo": float(lo), "slope_hi": float(hi), "mean": point}


def verdict(measured: float, theory: float, tolerance: float) -> str:
    """matches | faster | slower than the theory slope (by more than `tolerance`), or no_theory."""
    if not np.isfinite(theory):
        return "no_theory"
    if not np.isfinite(measured):
        return "not_measurable"
    if abs(measured - theory) <= tolerance:
        return "matches"
    return "faster" if measured < theory else "slower"
