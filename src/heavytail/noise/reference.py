"""Reference distributions for the noise-norm histograms (Fig 2b/e), normalised like the measured norms.

A measured noise norm is ||e|| = sqrt(sum_k e_k^2) over d coordinates. Its references are the same statistic of
a d-dimensional vector with i.i.d. standard Gaussian coordinates (a "sum of squared Gaussians", concentrated)
and with i.i.d. symmetric alpha-stable coordinates (a "sum of squared alpha-stable variables", heavy-tailed).
`squared=True` returns the sums of squares themselves, the literal wording of the paper's caption.

Every histogram, measured or reference, is divided by its own median (`normalise_by_median`): the scale of a
noise norm depends on the model and the learning problem, and the median exists even when the mean does not.

`gaussian_block_sum_reference` is the other kind of reference: what the block-sum tail-index estimator (Fig 7)
reads on Gaussian noise measured exactly as the sampler measures (same counts, same grad-f estimate), in the
`effective_dimension` of the measured norms: its median barely depends on the dimension, its spread does
(K1 = 16, K2 = 16, N_mean = 40: 90 % of replicates in [1.797, 1.798] at the 1.6M parameters of tiny AlexNet,
in [1.71, 1.91] at dimension 20, the spread of AlexNet's measured norms; an anisotropic Gaussian of
effective dimension 41 gives [1.73, 1.85], an isotropic one of dimension 41 [1.73, 1.87]).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize
from scipy.stats import chi2

from heavytail.errors import ConfigError


def symmetric_stable(alpha: float, size: int | tuple[int, ...], seed: int | np.random.Generator = 0) -> np.ndarray:
    """Standard symmetric alpha-stable samples (beta = 0, scale 1) by Chambers-Mallows-Stuck.

    X = sin(alpha V) / cos(V)^(1/alpha) * (cos(V - alpha V) / W)^((1 - alpha) / alpha), V ~ U(-pi/2, pi/2),
    W ~ Exp(1). alpha = 2 gives N(0, 2) (the stable parametrisation), alpha = 1 the standard Cauchy.
    """
    if not 0 < alpha <= 2:
        raise ConfigError(f"symmetric_stable: alpha must be in (0, 2] (got {alpha})")
    rng = np.random.default_rng(seed)
    v = rng.uniform(-np.pi / 2, np.pi / 2, size)
    w = rng.exponential(1.0, size)
    if alpha == 1.0:
        return np.tan(v)
    return (np.sin(alpha * v) / np.cos(v) ** (1 / alpha)
            * (np.cos(v - alpha * v) / w) ** ((1 - alpha) / alpha))


def normalise_by_median(values: np.ndarray) -> np.ndarray:
    """Divide by the median so measured and reference histograms share an axis."""
    x = np.asarray(values, dtype=np.float64)
    median = float(np.median(x))
    if not median > 0:
        raise ConfigError(f"normalise_by_median: median must be > 0 (got {median}); are these norms?")
    return x / median


def gaussian_reference_norms(n: int, dim: int, seed: int = 0, squared: bool = False) -> np.ndarray:
    """n median-normalised norms of dim-dimensional standard Gaussian vectors (Fig 2b)."""
    return _reference_norms(np.random.default_rng(seed).standard_normal, n, dim, squared)


def stable_reference_norms(n: int, dim: int, alpha: float, seed: int = 0, squared: bool = False) -> np.ndarray:
    """n median-normalised norms of dim-dimensional vectors with i.i.d. symmetric alpha-stable coordinates (Fig 2e)."""
    rng = np.random.default_rng(seed)
    return _reference_norms(lambda size: symmetric_stable(alpha, size, rng), n, dim, squared)


def _reference_norms(draw, n: int, dim: int, squared: bool) -> np.ndarray:
    if n < 1 or dim < 1:
        raise ConfigError(f"reference norms: n and dim must be >= 1 (got n={n}, dim={dim})")
    out = np.empty(n)
    rows = max(1, 2 ** 22 // dim)  # chunks of ~4M draws keep memory flat for large dim
    for start in range(0, n, rows):
        block = draw((min(rows, n - start), dim))
        out[start: start + len(block)] = np.einsum("ij,ij->i", block, block)
    return normalise_by_median(out if squared else np.sqrt(out))


def effective_dimension(norms: np.ndarray, upper: float = 1e9) -> float:
    """Degrees of freedom k whose chi^2_k has the quartile ratio q75/q25 of the squared norms (tails ignored).

    Gaussian noise e ~ N(0, S) has ||e||^2 close to (tr S / k) chi^2_k with k = (tr S)^2 / tr S^2; quartiles,
    unlike the variance, stay put when a heavy tail is present. Clipped to [1, upper].
    """
    x = np.asarray(norms, dtype=np.float64) ** 2
    if x.ndim != 1 or len(x) < 8 or not np.isfinite(x).all():
        raise ConfigError(f"effective_dimension: need >= 8 finite norms (got shape {x.shape})")
    q25, q75 = np.quantile(x, [0.25, 0.75])
    if not q25 > 0:
        return 1.0
    ratio = q75 / q25

    def excess(log_k: float) -> float:
        k = math.exp(log_k)
        return math.log(chi2.ppf(0.75, k) / chi2.ppf(0.25, k)) - math.log(ratio)

    if excess(0.0) <= 0:
        return 1.0
    if excess(math.log(upper)) >= 0:
        return float(upper)
    return math.exp(optimize.brentq(excess, 0.0, math.log(upper), xtol=1e-6))


def gaussian_block_sum_reference(n_samples: int, block_size: int, n_mean: int | None, dim: int,
                                 replicates: int = 200, seed: int = 0, max_draws: int = 2 ** 25) -> np.ndarray:
    """`tail_index_of_block_sums` on simulated isotropic Gaussian noise streams (one alpha_hat per replicate).

    Each stream copies the sampler: grad f is the mean of n_mean gradients, so every noise vector is
    e_i = xi_i - delta with xi_i ~ N(0, I_dim) i.i.d. and delta ~ N(0, I_dim / n_mean) shared by all of them
    (n_mean None: exact grad f, delta = 0). The estimator then sees ||e_i|| and the norms of the sums of
    K1 = block_size consecutive e_i over K2 = n_samples // K1 blocks. Since E||sum||^2 = K1 E||xi||^2
    (1 + K1 / n_mean), alpha_hat sits below 2 on Gaussian noise whenever K1 / n_mean is not small.

    Simulated exactly without dim-sized vectors: along u = delta / ||delta||, xi_i = a_i u + xi_i' with
    a_i ~ N(0, 1) and xi_i' ~ N(0, I_(dim-1)) on the complement; the K1 vectors xi_i' of a block have the Gram
    matrix of the rows of a Bartlett factor L (L_jj^2 ~ chi^2_(dim-1-j), N(0, 1) below the diagonal), so
    ||e_i||^2 = (a_i - ||delta||)^2 + ||L_i||^2 and ||sum_i e_i||^2 = (sum_i a_i - K1 ||delta||)^2 + ||sum_i L_i||^2.
    For dim <= K1 the vectors are drawn directly. Replicates are capped (not below 20) at `max_draws` random
    draws in all: at paper counts one replicate takes K2 K1^2 of them and the spread is already tiny.
    """
    k1 = int(block_size)
    k2 = int(n_samples) // max(k1, 1)
    if k1 < 2 or k2 < 2 or dim < 1 or replicates < 1 or (n_mean is not None and n_mean < 1):
        raise ConfigError(f"gaussian_block_sum_reference: need >= 2 blocks of block_size >= 2, dim >= 1, "
                          f"replicates >= 1, n_mean >= 1 or None (got n_samples={n_samples}, "
                          f"block_size={block_size}, dim={dim}, replicates={replicates}, n_mean={n_mean})")
    per_replicate = k2 * k1 * min(k1, int(dim))
    replicates = min(int(replicates), max(20, int(max_draws) // per_replicate))
    return _block_sum_reference(k1, k2, n_mean, int(dim), replicates, int(seed)).copy()


@lru_cache(maxsize=64)  # measurements of one model share counts and dimension
def _block_sum_reference(k1: int, k2: int, n_mean: int | None, dim: int, replicates: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chunk = max(1, 2 ** 22 // (k2 * k1 * (k1 if dim > k1 else dim)))
    out = []
    for start in range(0, replicates, chunk):
        reps = min(chunk, replicates - start)
        shift = np.zeros(reps) if n_mean is None else np.sqrt(rng.chisquare(dim, reps) / n_mean)
        if dim > k1:
            x_sq, y_sq = _bartlett_blocks(rng, reps, k1, k2, dim, shift)
        else:
            e = rng.standard_normal((reps, k2, k1, dim))
            if n_mean is not None:
                e -= rng.standard_normal((reps, 1, 1, dim)) / math.sqrt(n_mean)
            x_sq, y_sq = (e ** 2).sum(-1), (e.sum(axis=2) ** 2).sum(-1)
        terms = (0.5 * np.log(y_sq) - 0.5 * np.log(x_sq).mean(axis=-1)) / math.log(k1)
        out.append(1.0 / terms.mean(axis=-1))
    return np.concatenate(out)


def _bartlett_blocks(rng: np.random.Generator, reps: int, k1: int, k2: int, dim: int,
                     shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared norms of the e_i (reps, k2, k1) and of their block sums (reps, k2), via Bartlett factors."""
    below = np.tril(rng.standard_normal((reps, k2, k1, k1)), k=-1)
    diag = np.sqrt(rng.chisquare(dim - 1 - np.arange(k1), (reps, k2, k1)))
    factor = below + diag[..., None] * np.eye(k1)
    a = rng.standard_normal((reps, k2, k1))
    s = shift[:, None, None]
    x_sq = (a - s) ** 2 + (factor ** 2).sum(-1)
    y_sq = (a.sum(-1) - k1 * shift[:, None]) ** 2 + (factor.sum(axis=2) ** 2).sum(-1)
    return x_sq, y_sq
