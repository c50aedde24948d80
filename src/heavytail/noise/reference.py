"""Reference distributions for the noise-norm histograms (Fig 2b/e), normalised like the measured norms.

A measured noise norm is ||e|| = sqrt(sum_k e_k^2) over d coordinates. Its references are the same statistic of
a d-dimensional vector with i.i.d. standard Gaussian coordinates (a "sum of squared Gaussians", concentrated)
and with i.i.d. symmetric alpha-stable coordinates (a "sum of squared alpha-stable variables", heavy-tailed).
`squared=True` returns the sums of squares themselves, the literal wording of the paper's caption.

Every histogram, measured or reference, is divided by its own median (`normalise_by_median`): the scale of a
noise norm depends on the model and the learning problem, and the median exists even when the mean does not.
"""

from __future__ import annotations

import numpy as np

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
