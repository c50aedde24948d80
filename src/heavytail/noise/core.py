"""Model-agnostic core of the noise entry point: measure, summarise and save one noise measurement."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from heavytail.io import atomic_path, write_json
from heavytail.noise.coordinates import CoordinateSample, coordinate_tail_indices, sample_coordinates
from heavytail.noise.groups import classify_parameters
from heavytail.noise.reference import effective_dimension, gaussian_block_sum_reference
from heavytail.noise.sampler import LossFn, NoiseNorms, sample_noise_norms
from heavytail.noise.tail_estimators import (
    TailIndexEstimate,
    default_block_size,
    recommend_sample_count,
    tail_index_of_block_sums,
    tail_index_of_norms,
)
from heavytail.noise.variance import max_relative_jump, relative_range, settles, variance_curve

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MIN_TAIL_SAMPLES = 16  # below this many norms the tail index is noise: reported as null


@dataclass
class NoiseResult:
    """Noise norms, variance curves and tail indices, overall (key "all") and per parameter group.

    `gaussian_block_reference[group]`: median and `level` interval of the block-sum estimator on simulated
    Gaussian noise measured like this one, in `effective_dims[group]` dimensions (the measured norms' spread).
    `coordinates[set]`: per-coordinate noise (minibatches x sampled coordinates) for Fig 6c, with its tail
    indices in `coordinate_tail_index` and the sampled flat indices in `coordinate_sample`.
    """

    norms: NoiseNorms
    variance_curves: dict[str, np.ndarray]
    tail_index_norms: dict[str, TailIndexEstimate | None]
    tail_index_block_sums: dict[str, TailIndexEstimate | None]
    level: float
    n_boot: int
    seed: int
    gaussian_block_reference: dict[str, TailIndexEstimate | None] = field(default_factory=dict)
    effective_dims: dict[str, float] = field(default_factory=dict)
    coordinates: dict[str, np.ndarray] = field(default_factory=dict)
    coordinate_tail_index: dict[str, dict | None] = field(default_factory=dict)
    coordinate_sample: CoordinateSample | None = None
    extra: dict = field(default_factory=dict)

    def norms_by_group(self) -> dict[str, np.ndarray]:
        return {"all": self.norms.norms, **self.norms.group_norms}

    def block_norms_by_group(self) -> dict[str, np.ndarray]:
        return {"all": self.norms.block_norms, **self.norms.group_block_norms}


def measure_noise(model: nn.Module, loss_fn: LossFn, batch_source: Iterable, *, n_mean: int, n_samples: int,
                  mode: str = "train_frozen_bn", groups: dict[str, str] | None = None, block_sums: bool = True,
                  coordinates_per_set: int = 0, coordinate_minibatches: int | None = None,
                  max_coordinate_samples: int = 100_000, n_boot: int = 200, level: float = 0.9, seed: int = 0,
                  progress_every: int = 0) -> NoiseResult:
    """Sample noise norms (see `sample_noise_norms`), then their variance curves and tail indices per group.

    With `block_sums`, the sampler also keeps one running sum of K1 = floor(sqrt(n_samples)) noise vectors for
    `tail_index_of_block_sums` (one more parameter-sized buffer). With `coordinates_per_set`, it also records
    that many sampled coordinates per set (heavytail.noise.coordinates) of the noise vectors of the first
    `coordinate_minibatches` minibatches (default: as many as fill `max_coordinate_samples` values per set).
    """
    block_size = default_block_size(n_samples) if block_sums and n_samples >= 4 else None
    groups = classify_parameters(model) if groups is None else groups
    sample = None
    if coordinates_per_set:
        sizes = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
        sample = sample_coordinates(sizes, groups, coordinates_per_set, seed)
        coordinate_minibatches = coordinate_minibatches or max(1, max_coordinate_samples // coordinates_per_set)
    sampled = sample_noise_norms(model, loss_fn, batch_source, n_mean=n_mean, n_samples=n_samples, mode=mode,
                                 groups=groups, block_size=block_size, seed=seed, progress_every=progress_every,
                                 coordinates=sample.index if sample else None,
                                 coordinate_rows=coordinate_minibatches or 0)
    result = NoiseResult(sampled, {}, {}, {}, level=level, n_boot=n_boot, seed=seed)
    blocks = result.block_norms_by_group()
    for name, norms in result.norms_by_group().items():
        result.variance_curves[name] = variance_curve(norms ** 2)
        enough = len(norms) >= MIN_TAIL_SAMPLES
        result.tail_index_norms[name] = (tail_index_of_norms(norms, n_boot=n_boot, level=level, seed=seed)
                                         if enough else None)
        result.tail_index_block_sums[name] = (
            tail_index_of_block_sums(norms, blocks[name], block_size, n_boot=n_boot, level=level, seed=seed)
            if block_size and enough else None)
        if enough:
            result.effective_dims[name] = min(effective_dimension(norms), float(sampled.dims[name]))
        result.gaussian_block_reference[name] = (
            _gaussian_level(n_samples, block_size, n_mean, round(result.effective_dims[name]), level, seed)
            if block_size and enough else None)
    if sample is not None:
        result.coordinate_sample = sample
        result.coordinates = sample.split(sampled.coordinates)
        result.coordinate_tail_index = coordinate_tail_indices(result.coordinates, n_boot=n_boot, level=level,
                                                               seed=seed, max_samples=max_coordinate_samples)
    return result


def _gaussian_level(n_samples: int, block_size: int, n_mean: int, dim: int, level: float,
                    seed: int) -> TailIndexEstimate:
    """Median and `level` interval of the block-sum estimator on Gaussian noise measured like this one."""
    alphas = gaussian_block_sum_reference(n_samples, block_size, n_mean, dim, seed=seed)
    lo, mid, hi = np.quantile(alphas, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return TailIndexEstimate(float(mid), float(lo), float(hi))


def summarise(result: NoiseResult, metadata: dict | None = None) -> dict:
    """JSON-ready summary: distribution statistics, tail indices with intervals, variance-curve endpoints."""
    norms = result.norms
    blocks = result.block_norms_by_group()
    per_group = {}
    for name, values in result.norms_by_group().items():
        mean_norm = norms.mean_gradient_norm if name == "all" else norms.group_mean_gradient_norms[name]
        per_group[name] = {**_distribution(values), "mean_gradient_norm": mean_norm,
                           "variance_curve": _curve_summary(result.variance_curves[name]),
                           "tail_index_norms": _estimate(result.tail_index_norms[name]),
                           "tail_index_block_sums": _estimate(result.tail_index_block_sums[name]),
                           "tail_index_block_sums_gaussian": _estimate(result.gaussian_block_reference.get(name)),
                           "n_block_sums": len(blocks[name]), "dim": norms.dims.get(name),
                           "effective_dim": result.effective_dims.get(name)}
    coordinate = {}
    if result.coordinates:
        first = next(iter(result.coordinates.values()))
        coordinate = {"per_coordinate": {"n_minibatches": int(len(first)), "mode": norms.mode,
                                         "coordinates": {s: int(v.shape[1]) for s, v in result.coordinates.items()},
                                         "tail_index": result.coordinate_tail_index}}
    return {
        "metadata": {**(metadata or {}), "n_mean": norms.n_mean, "n_samples": norms.n_samples, "mode": norms.mode,
                     "block_size": norms.block_size, "seed": result.seed, "interval_level": result.level,
                     "n_boot": result.n_boot},
        "overall": per_group.pop("all"),
        "groups": per_group,
        # norms are differenced in pairs, hence 2x: the count for a +-0.2 interval if the noise were Gaussian
        "n_samples_for_halfwidth_0.2": 2 * recommend_sample_count(0.2, alpha=2.0, level=result.level),
        "seconds": norms.seconds,
        **coordinate,
        **result.extra,
    }


def save_noise_result(result: NoiseResult, out_dir: str | os.PathLike, metadata: dict | None = None) -> dict:
    """Write noise.npz, per_coordinate.npz (`noise__<set>`, if recorded) and summary.json; return the summary."""
    out = Path(out_dir)
    arrays = {}
    for name, values in result.norms_by_group().items():
        arrays[f"norms__{name}"] = values
        arrays[f"variance_curve__{name}"] = result.variance_curves[name]
    for name, values in result.block_norms_by_group().items():
        arrays[f"block_norms__{name}"] = values
    with atomic_path(out / "noise.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # a file handle, because savez appends ".npz" to a bare temporary name
    if result.coordinates:
        with atomic_path(out / "per_coordinate.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **{f"noise__{s}": v.astype(np.float32) for s, v in result.coordinates.items()})
    summary = summarise(result, metadata)
    write_json(out / "summary.json", summary)
    return summary


def _distribution(values: np.ndarray) -> dict:
    x = np.asarray(values, dtype=np.float64)
    std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    centred = x - x.mean()
    kurtosis = float((centred ** 4).mean() / (centred ** 2).mean() ** 2 - 3.0) if std > 0 else None
    return {"mean": float(x.mean()), "std": std, "min": float(x.min()), "max": float(x.max()),
            "excess_kurtosis": kurtosis,
            "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES), strict=True)}}


def _curve_summary(curve: np.ndarray) -> dict:
    summary = {"first": float(curve[0]), "mid": float(curve[len(curve) // 2]), "last": float(curve[-1])}
    if len(curve) >= 4:
        summary["relative_range_last_half"] = relative_range(curve)
        summary["max_relative_jump_last_half"] = max_relative_jump(curve)
        summary["settles"] = settles(curve)
    return summary


def _estimate(estimate: TailIndexEstimate | None) -> dict | None:
    """Estimate as a dict; an infinite bound (bootstrap mean of 1/alpha <= 0) is written as null: unbounded."""
    if estimate is None:
        return None
    return {k: (float(v) if np.isfinite(v) else None) for k, v in estimate._asdict().items()}
