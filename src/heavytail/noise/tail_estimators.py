"""Tail index of symmetric alpha-stable samples: the Mohammadi et al. (2015) estimator, with bootstrap intervals.

Estimator (Mohammadi, Mohammadpour & Ogata 2015, Cor. 2.4; the `alpha_estimator` of Simsekli et al. 2019).
Take K = K1 * K2 i.i.d. samples X_1..X_K and form K2 block sums Y_j = X_{(j-1)K1+1} + ... + X_{j K1}. For a
strictly symmetric alpha-stable law, Y_j has the law of K1^(1/alpha) X_1, hence

    1 / alpha_hat = ( mean_j log|Y_j| - mean_i log|X_i| ) / log K1 .

Rows of a 2-D array are treated as vectors and |.| is their Euclidean norm (Simsekli's multivariate form).

Which samples (Appendix H of the paper). Simsekli et al. feed every coordinate of every noise vector as a
scalar (their `alpha_estimator(m, noise.view(-1, 1))`, grad f the mean of the same minibatches); the paper
treats "the noise as a high dimensional random vector" and applies Simsekli's estimator to it: the N x d
matrix of noise vectors e_i = g_i - grad f, i.e. the norms ||e_i|| and the norms of block sums, which is
`tail_index_of_block_sums` (the Fig 7 estimator here). Feeding the positive scalar norms themselves would give
about 1 for any concentrated law (a sum of K1 positive values grows like K1), which is why the paired
differences of `tail_index_of_norms` exist as a second reading. Here grad f is the mean of N_mean other
minibatches, so every e_i carries the same error and block sums grow by (1 + K1 / N_mean): the estimator
then reads below 2 on Gaussian noise (`reference.gaussian_block_sum_reference` simulates that level).

Assumptions, and what happens when they fail:
  * i.i.d. samples. Dependent or sorted samples bias the block sums; shuffle first if order carries structure
    (coordinates of a flattened gradient are ordered by layer).
  * Symmetric and centred. A sum of non-centred samples grows like K1 * mean, which drives alpha_hat to 1 for
    any law with a finite mean. Noise norms are positive, so `tail_index_of_norms` first symmetrises them by
    differencing disjoint random pairs: ||e_a|| - ||e_b|| is symmetric with the same tail index as ||e||.
  * Exact stability. For laws merely in a stable domain of attraction the estimate is biased towards 2 for
    small K1; light-tailed data gives values near (and sometimes above) 2, which means "no heavy tail".

Uncertainty (`tail_index_interval`): the estimator is a mean over blocks of D_j = (log|Y_j| - mean_{i in j}
log|X_i|) / log K1, so each bootstrap replicate draws a fresh random order (which re-forms the blocks) and then
resamples the K2 blocks with replacement. The interval is the percentile interval of the replicates; it covers
both the dependence on the order that the paper's single estimate hides and the sampling error.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from heavytail.errors import ConfigError

_EPS = float(np.finfo(np.float64).tiny)  # only guards log(0) on exact zeros


class TailIndexEstimate(NamedTuple):
    """Point estimate (on the samples in their given order) and a bootstrap interval at `level`."""

    alpha: float
    lo: float
    hi: float


def default_block_size(n: int) -> int:
    """K1 = floor(sqrt(n)), as in Simsekli et al.: equal weight to the number and the size of blocks."""
    return max(2, math.isqrt(n))


def tail_index(samples: np.ndarray, block_size: int | None = None) -> float:
    """Mohammadi estimate of alpha from i.i.d. symmetric samples (1-D scalars or 2-D rows of vectors)."""
    return _alpha_from_blocks(_block_terms(_as_samples(samples), block_size))


def tail_index_interval(samples: np.ndarray, n_boot: int = 200, level: float = 0.9, seed: int = 0,
                        block_size: int | None = None) -> TailIndexEstimate:
    """(alpha_hat, lo, hi): estimate in the given order plus a bootstrap over random orders and blocks."""
    x = _as_samples(samples)
    alpha = _alpha_from_blocks(_block_terms(x, block_size))
    rng = np.random.default_rng(seed)
    inverse = np.empty(n_boot)
    for b in range(n_boot):
        terms = _block_terms(x[rng.permutation(len(x))], block_size)
        inverse[b] = terms[rng.integers(0, len(terms), len(terms))].mean()
    return TailIndexEstimate(alpha, *_percentile_interval(inverse, level))


def tail_index_of_norms(norms: np.ndarray, n_boot: int = 200, level: float = 0.9,
                        seed: int = 0) -> TailIndexEstimate:
    """Tail index of the distribution of noise norms ||g_i - grad f|| from paired differences (Fig 7's second line).

    Norms are positive, so they are symmetrised first: a random permutation (from `seed`) pairs them and the
    estimator runs on the n // 2 differences, which share the norms' tail index. Each bootstrap replicate
    re-pairs them. Concentrated norms (ResNet-like) give about 2; heavy-tailed norms give alpha < 2.
    """
    x = _as_samples(norms)
    if x.ndim != 1:
        raise ConfigError(f"tail_index_of_norms: norms must be 1-D (got shape {x.shape})")
    rng = np.random.default_rng(seed)
    alpha = tail_index(_paired_differences(x, rng))
    inverse = np.empty(n_boot)
    for b in range(n_boot):
        terms = _block_terms(_paired_differences(x, rng), None)
        inverse[b] = terms[rng.integers(0, len(terms), len(terms))].mean()
    return TailIndexEstimate(alpha, *_percentile_interval(inverse, level))


def tail_index_per_coordinate(noise: np.ndarray, n_boot: int = 200, level: float = 0.9, seed: int = 0,
                              max_samples: int | None = 1_000_000) -> TailIndexEstimate:
    """Simsekli et al.'s use: every coordinate of every noise vector is one scalar sample of a symmetric law.

    The coordinates are shuffled (seeded) before blocking because a flattened gradient is ordered by layer and
    neighbouring coordinates share a scale; at most `max_samples` of them are used to bound the cost. Exact
    zeros are dropped: they are coordinates no example touched (embedding rows of absent tokens, unused
    positions), structural rather than draws from the noise law, and log 0 would swamp the estimate.
    """
    flat = np.asarray(noise, dtype=np.float64).reshape(-1)
    flat = _as_samples(flat[flat != 0])
    rng = np.random.default_rng(seed)
    flat = flat[rng.permutation(len(flat))[: max_samples or len(flat)]]
    return tail_index_interval(flat, n_boot=n_boot, level=level, seed=seed + 1)


def tail_index_of_block_sums(norms: np.ndarray, block_sum_norms: np.ndarray, block_size: int,
                             n_boot: int = 200, level: float = 0.9, seed: int = 0) -> TailIndexEstimate:
    """Simsekli's estimator on whole noise vectors (the paper's Fig 7), from norms streamed by the sampler.

    `norms[i] = ||e_i||` and `block_sum_norms[j] = ||e_{jK1+1} + ... + e_{(j+1)K1}||` with K1 = block_size (the
    sampler keeps one running block sum, so no noise vector is stored). This is what feeding the N x d noise
    matrix to Simsekli's `alpha_estimator` computes. The order is fixed by the stream, so the interval only
    resamples blocks (each with its own K1 norms).
    """
    x = np.asarray(norms, dtype=np.float64)
    y = np.asarray(block_sum_norms, dtype=np.float64)
    if block_size < 2 or len(y) < 2 or len(x) < len(y) * block_size:
        raise ConfigError(f"tail_index_of_block_sums: need >= 2 blocks of block_size >= 2 and "
                          f"len(norms) >= blocks * block_size (got {len(x)} norms, {len(y)} blocks of {block_size})")
    log_x = np.log(x[: len(y) * block_size] + _EPS).reshape(len(y), block_size).mean(axis=1)
    terms = (np.log(y + _EPS) - log_x) / math.log(block_size)
    rng = np.random.default_rng(seed)
    inverse = np.array([terms[rng.integers(0, len(terms), len(terms))].mean() for _ in range(n_boot)])
    return TailIndexEstimate(_alpha_from_blocks(terms), *_percentile_interval(inverse, level))


def recommend_sample_count(halfwidth: float, alpha: float = 2.0, level: float = 0.9) -> int:
    """Smallest n (K1 = K2 = sqrt n) whose predicted interval for alpha has the given half-width.

    Uses Var log|X| = (pi^2 / 6) (1 / alpha^2 + 1 / 2) for a symmetric alpha-stable X, so that
    sd(1 / alpha_hat) ~ sqrt(Var log|X| / K2) / log K1 and sd(alpha_hat) ~ alpha^2 sd(1 / alpha_hat).
    For `tail_index_of_norms` double the count (it uses n // 2 differences).
    """
    if halfwidth <= 0 or not 0 < alpha <= 2:
        raise ConfigError(f"recommend_sample_count: need halfwidth > 0 and 0 < alpha <= 2 "
                          f"(got {halfwidth}, {alpha})")
    z = _normal_quantile((1 + level) / 2)
    sd_log = math.sqrt(math.pi ** 2 / 6 * (1 / alpha ** 2 + 0.5))
    n = 16
    while z * alpha ** 2 * sd_log / (math.sqrt(math.isqrt(n)) * math.log(math.isqrt(n))) > halfwidth:
        n = int(n * 1.25) + 1
    return n


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _paired_differences(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    perm = rng.permutation(len(x))
    half = len(x) // 2
    return x[perm[:half]] - x[perm[half: 2 * half]]


def _as_samples(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim not in (1, 2) or len(x) < 8:
        raise ConfigError(f"tail index: samples must be a 1-D or 2-D array with >= 8 rows (got shape {x.shape})")
    if not np.isfinite(x).all():
        raise ConfigError("tail index: samples contain NaN or inf; drop non-finite gradients before estimating")
    return x


def _block_terms(x: np.ndarray, block_size: int | None) -> np.ndarray:
    """Per-block D_j = (log|Y_j| - mean_{i in block j} log|X_i|) / log K1; alpha_hat = 1 / mean_j D_j."""
    k1 = block_size or default_block_size(len(x))
    k2 = len(x) // k1
    if k1 < 2 or k2 < 2:
        raise ConfigError(f"tail index: need at least 2 blocks of size >= 2 (got n={len(x)}, block_size={k1})")
    blocks = x[: k1 * k2].reshape(k2, k1, *x.shape[1:])
    sums = blocks.sum(axis=1)
    mag_y = np.abs(sums) if x.ndim == 1 else np.linalg.norm(sums, axis=-1)
    mag_x = np.abs(blocks) if x.ndim == 1 else np.linalg.norm(blocks, axis=-1)
    return (np.log(mag_y + _EPS) - np.log(mag_x + _EPS).mean(axis=1)) / math.log(k1)


def _percentile_interval(inverse: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of alpha from bootstrap values of 1 / alpha (finite even where alpha is not)."""
    if not 0 < level < 1:
        raise ConfigError(f"tail index interval: level must be in (0, 1) (got {level})")
    lo_inv, hi_inv = np.quantile(inverse, [(1 - level) / 2, (1 + level) / 2])
    return (1.0 / hi_inv if hi_inv > 0 else math.inf), (1.0 / lo_inv if lo_inv > 0 else math.inf)


def _alpha_from_blocks(terms: np.ndarray) -> float:
    inv = float(terms.mean())
    return 1.0 / inv if inv > 0 else math.inf
