"""Gradient-noise measurement: noise norms, variance curves, per-coordinate noise, tail index, references.

Model-agnostic: everything takes a model, a loss and batches; only `python -m heavytail.noise.measure` builds
models and data. The noise of a minibatch gradient g is e = g - grad f(x), with grad f(x) estimated by the mean
of N_mean minibatch gradients.

Measure and save (core.py)
    result = measure_noise(model, loss_fn, batches, n_mean=..., n_samples=..., mode="train_frozen_bn")
    summary = save_noise_result(result, out_dir, metadata={"model": ..., "step": ..., "batch_size": ...})
  `loss_fn(model, batch) -> scalar loss`; `batches` is re-iterable (a shuffling DataLoader). Writes
  `noise.npz` (`norms__<group>`, `block_norms__<group>`, `variance_curve__<group>`, group "all" = whole model)
  and `summary.json` (mean, std, quantiles, excess kurtosis, tail indices with bootstrap intervals and the
  block-sum estimator's Gaussian reference level, variance-curve endpoints and settling statistics, overall and
  per parameter group). With `coordinates_per_set=k` also `per_coordinate.npz` (Fig 6c).

Building blocks
  sampler.py         sample_noise_norms, gradient_mode: two passes, O(d) memory (hooks free each gradient as
                     backward produces it); modes "train_frozen_bn" (default: dropout on, batch statistics,
                     frozen BN running stats), "train", "eval"; optionally records sampled coordinates of
                     the noise vectors.
  variance.py        variance_curve (running mean of ||e||^2, float64), StreamingVariance (vector Welford),
                     relative_range / max_relative_jump: how far a curve is from settling; settles (range
                     below SETTLED_RELATIVE_RANGE), the Fig 2c/f verdict.
  coordinates.py     sample_coordinates, coordinate_tail_indices: Fig 6c's coordinates of g_B - grad f, one row
                     per minibatch, sets "all" (uniform over the model) and one per parameter group.
  tail_estimators.py tail_index (Mohammadi et al. 2015), tail_index_interval (bootstrap over orders and blocks),
                     tail_index_of_block_sums (the paper's Fig 7: Simsekli's estimator on whole noise
                     vectors, from streamed block sums), tail_index_of_norms (paired differences of norms,
                     Fig 7's second line), tail_index_per_coordinate (Simsekli's own use), recommend_sample_count.
  groups.py          classify_parameters: token_embedding (incl. tied decoder), embedding, attention,
                     feed_forward, layer_norm, batch_norm, convolution, head, other.
  reference.py       gaussian_reference_norms / stable_reference_norms (Fig 2b/e), symmetric_stable sampler,
                     normalise_by_median (apply to measured norms too), gaussian_block_sum_reference (Fig 7)
                     in the measured norms' effective_dimension.
  memory.py          peak_extra_bytes: peak tensor memory a callable adds (CPU profiler events or CUDA stats).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "measure_noise": "core", "save_noise_result": "core", "summarise": "core", "NoiseResult": "core",
    "sample_noise_norms": "sampler", "gradient_mode": "sampler", "NoiseNorms": "sampler", "MODES": "sampler",
    "variance_curve": "variance", "StreamingVariance": "variance", "relative_range": "variance",
    "max_relative_jump": "variance", "settles": "variance", "SETTLED_RELATIVE_RANGE": "variance",
    "sample_coordinates": "coordinates", "coordinate_tail_indices": "coordinates",
    "CoordinateSample": "coordinates",
    "tail_index": "tail_estimators", "tail_index_interval": "tail_estimators",
    "tail_index_of_norms": "tail_estimators", "tail_index_of_block_sums": "tail_estimators",
    "tail_index_per_coordinate": "tail_estimators", "recommend_sample_count": "tail_estimators",
    "TailIndexEstimate": "tail_estimators",
    "classify_parameters": "groups", "classify_parameter": "groups", "GROUPS": "groups",
    "gaussian_reference_norms": "reference", "stable_reference_norms": "reference",
    "symmetric_stable": "reference", "normalise_by_median": "reference",
    "gaussian_block_sum_reference": "reference", "effective_dimension": "reference",
    "peak_extra_bytes": "memory", "parameter_bytes": "memory",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # lazy, so that the numpy-only parts (tail_estimators, reference) load without importing torch. No module
    # may share a name with an export: importing it would set the package attribute and shadow this hook.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
