"""Gradient-noise measurement: noise norms, variance curves, per-coordinate noise, tail index, references.

Model-agnostic: everything takes a model, a loss and batches; only `python -m heavytail.noise.measure` builds
models and data. The noise of a minibatch gradient g is e = g - grad f(x), with grad f(x) estimated by the mean
of N_mean minibatch gradients.

Measure and save (core.py)
    result = measure_noise(model, loss_fn, batches, n_mean=..., n_samples=..., mode="train_frozen_bn")
    summary = save_noise_result(result, out_dir, metadata={"model": ..., "step": ..., "batch_size": ...})
  `loss_fn(model, batch) -> scalar loss`; `batches` is re-iterable (a shuffling DataLoader). Writes
  `noise.npz` (`norms__<group>`, `block_norms__<group>`, `variance_curve__<group>`, group "all" = whole model)
  and `summary.json` (mean, std, quantiles, excess kurtosis, tail indices with bootstrap intervals,
  variance-curve endpoints and settling statistics, overall and per parameter group).

Building blocks
  sampler.py         sample_noise_norms, gradient_mode: two passes, O(d) memory (hooks free each gradient as
                     backward produces it); modes "train_frozen_bn" (default: dropout on, batch statistics,
                     frozen BN running stats), "train", "eval".
  variance.py        variance_curve (running mean of ||e||^2, float64), StreamingVariance (vector Welford),
                     relative_range / max_relative_jump: how far a curve is from settling.
  per_coordinate.py  per_coordinate_noise: per-example gradients minus the minibatch mean at sampled
                     coordinates per group (torch.func vmap, loop fallback) for Fig 6c.
  tail_index.py      tail_index (Mohammadi et al. 2015), tail_index_interval (bootstrap over orders and blocks),
                     tail_index_of_norms (paper's use, on symmetrised norms), tail_index_of_block_sums
                     (Simsekli's vector form from streamed block sums), tail_index_per_coordinate (Simsekli's
                     use), recommend_sample_count.
  groups.py          classify_parameters: token_embedding (incl. tied decoder), embedding, attention,
                     feed_forward, layer_norm, batch_norm, convolution, head, other.
  reference.py       gaussian_reference_norms / stable_reference_norms (Fig 2b/e), symmetric_stable sampler,
                     normalise_by_median (apply to measured norms too).
  memory.py          peak_extra_bytes: peak tensor memory a callable adds (CPU profiler events or CUDA stats).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "measure_noise": "core", "save_noise_result": "core", "summarise": "core", "NoiseResult": "core",
    "sample_noise_norms": "sampler", "gradient_mode": "sampler", "NoiseNorms": "sampler", "MODES": "sampler",
    "variance_curve": "variance", "StreamingVariance": "variance", "relative_range": "variance",
    "max_relative_jump": "variance",
    "per_coordinate_noise": "per_coordinate", "PerCoordinateNoise": "per_coordinate",
    "tail_index": "tail_index", "tail_index_interval": "tail_index", "tail_index_of_norms": "tail_index",
    "tail_index_of_block_sums": "tail_index", "tail_index_per_coordinate": "tail_index",
    "recommend_sample_count": "tail_index", "TailIndexEstimate": "tail_index",
    "classify_parameters": "groups", "classify_parameter": "groups", "GROUPS": "groups",
    "gaussian_reference_norms": "reference", "stable_reference_norms": "reference",
    "symmetric_stable": "reference", "normalise_by_median": "reference",
    "peak_extra_bytes": "memory", "parameter_bytes": "memory",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # lazy, so that the numpy-only parts (tail_index, reference) load without importing torch
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
