"""SGD, GClip and CClip on synthetic problems, every seed a row of one float64 array.

Algorithm 1 with momentum beta = 0 and the schedules of Theorems 1 and 3:

    g_k      = grad f(x_{k-1}) + xi_k
    x_k      = x_{k-1} - eta_k clip(tau_k, g_k),      eta_k = 4 / (mu (k + 1))
    xbar_k   = sum_{j=1..k} j x_{j-1} / sum_{j=1..k} j

with GClip(tau, g) = min(tau / ||g||, 1) g and CClip(tau, g) = min(tau / |g|, 1) g element-wise.

The clipping threshold is printed as tau_k = G k^(alpha - 1) in Theorems 1 and 3, but the proofs in
Appendices D and F.2 substitute tau_k = G k^(1/alpha), which is the choice that balances the bias
G^(2 alpha) tau^(2 - 2 alpha) against the variance eta G^alpha tau^(2 - alpha) of Lemma 2. Both readings
are implemented ("printed" and "proof"); they coincide only in the exponent of the final rate at alpha = 2
(the thresholds themselves differ: G k against G sqrt(k)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from heavytail.errors import ConfigError

THRESHOLD_READINGS = ("printed", "proof")
CLIP_KINDS = ("none", "global", "coordinate", "zero")


def clip_global(g: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """GClip: min(tau / ||g||, 1) g over the last axis (a zero vector stays zero)."""
    norm = np.linalg.norm(g, axis=-1, keepdims=True)
    tau = np.asarray(tau, dtype=np.float64)
    factor = np.divide(tau, norm, out=np.ones_like(norm), where=norm > tau)
    return g * factor


def clip_coordinate(g: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """CClip: min(tau / |g|, 1) g element-wise, i.e. each coordinate clamped to [-tau_i, tau_i]."""
    tau = np.asarray(tau)
    return np.clip(g, -tau, tau)


def threshold_exponent(alpha: float, reading: str) -> float:
    """Exponent of k in tau_k: alpha - 1 as printed in Theorems 1 and 3, 1/alpha as used in their proofs."""
    if reading == "printed":
        return alpha - 1.0
    if reading == "proof":
        return 1.0 / alpha
    raise ConfigError(f"theory.threshold_readings: unknown reading {reading!r} (use printed or proof)")


def theorem1_step(k: np.ndarray | int, mu: float) -> np.ndarray:
    """eta_k = 4 / (mu (k + 1)) of Theorem 1."""
    return 4.0 / (mu * (np.asarray(k, dtype=np.float64) + 1.0))


@dataclass(frozen=True)
class Method:
    """One optimizer configuration: how it clips, which threshold reading, and its step-size schedule.

    `clip="zero"` is the trivial estimator that never moves from x0, a baseline for the lower-bound family.
    """

    name: str
    clip: str = "none"
    reading: str | None = None
    constant_step: float | None = None  # None: Theorem 1's eta_k = 4 / (mu (k + 1))
    constant_threshold: bool = False  # True: tau_k = tau_1 for every k

    def __post_init__(self):
        if self.clip not in CLIP_KINDS:
            raise ValueError(f"Method {self.name}: clip must be one of {CLIP_KINDS} (got {self.clip!r})")
        if self.clip in ("global", "coordinate") and not self.constant_threshold:
            threshold_exponent(2.0, self.reading or "")

    def step_size(self, k: int, mu: float) -> float:
        return self.constant_step if self.constant_step is not None else float(theorem1_step(k, mu))

    def threshold(self, k: int, scale: float | np.ndarray, alpha: float) -> float | np.ndarray:
        if self.constant_threshold:
            return scale
        return scale * float(k) ** threshold_exponent(alpha, self.reading)

    def direction(self, g: np.ndarray, k: int, scale: float | np.ndarray, alpha: float) -> np.ndarray:
        if self.clip == "none":
            return g
        if self.clip == "zero":
            return np.zeros_like(g)
        tau = self.threshold(k, scale, alpha)
        return clip_global(g, tau) if self.clip == "global" else clip_coordinate(g, tau)


def record_schedule(steps: int, points: int, first: int = 1) -> np.ndarray:
    """About `points` log-spaced iteration counts in [first, steps], always ending at `steps`."""
    grid = np.unique(np.round(np.geomspace(first, steps, points)).astype(int))
    return grid if grid[-1] == steps else np.append(grid, steps)


def simulate_quadratic(
    methods: list[Method],
    sample_noise: Callable[[np.random.Generator], np.ndarray],
    *,
    x0: np.ndarray,
    optimum: np.ndarray,
    mu: float,
    alpha: float,
    steps: int,
    record_at: np.ndarray,
    global_scale: float,
    coordinate_scale: np.ndarray,
    rng: np.random.Generator,
    box: tuple[float, float] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run every method on f(x) = mu/2 ||x - optimum||^2 with the same noise draws (common random numbers).

    `sample_noise(rng)` returns one (seeds, d) noise draw per step. Returns, per method, arrays of shape
    (len(record_at), seeds): `avg_error` = f(xbar_k) - f*, `last_error` = f(x_k) - f*, and `max_error` =
    max_{j <= k} f(x_j) - f* along each seed's path. `box` projects iterates onto [lo, hi] (Appendix G's domain).
    """
    x0 = np.asarray(x0, dtype=np.float64)
    optimum = np.asarray(optimum, dtype=np.float64)
    state = {m.name: x0.copy() for m in methods}
    weighted_sum = {m.name: np.zeros_like(x0) for m in methods}
    running_max = {m.name: np.zeros(x0.shape[0]) for m in methods}
    out = {m.name: {key: np.empty((len(record_at), x0.shape[0])) for key in ("avg_error", "last_error", "max_error")}
           for m in methods}
    record_index = {int(k): i for i, k in enumerate(record_at)}
    for k in range(1, steps + 1):
        noise = sample_noise(rng)
        for m in methods:
            x = state[m.name]
            weighted_sum[m.name] += k * x  # xbar_k weights x_{k-1} by k
            g = mu * (x - optimum) + noise
            x = x - m.step_size(k, mu) * m.direction(g, k, global_scale if m.clip == "global" else coordinate_scale,
                                                      alpha)
            if box is not None:
                x = np.clip(x, box[0], box[1])
            state[m.name] = x
            last = 0.5 * mu * np.sum((x - optimum) ** 2, axis=-1)
            running_max[m.name] = np.maximum(running_max[m.name], last)
            if k in record_index:
                i = record_index[k]
                xbar = weighted_sum[m.name] / (k * (k + 1) / 2)
                out[m.name]["avg_error"][i] = 0.5 * mu * np.sum((xbar - optimum) ** 2, axis=-1)
                out[m.name]["last_error"][i] = last
                out[m.name]["max_error"][i] = running_max[m.name]
    return out


@dataclass(frozen=True)
class CosineWell:
    """Smooth non-convex f(x) = sum_i x_i^2 / 2 + c cos(x_i): L = 1 + c, non-convex where c cos(x_i) > 1."""

    curvature: float = 2.0

    @property
    def smoothness(self) -> float:
        return 1.0 + self.curvature

    def value(self, x: np.ndarray) -> np.ndarray:
        return np.sum(0.5 * x**2 + self.curvature * np.cos(x), axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return x - self.curvature * np.sin(x)

    def minimum(self, dim: int) -> float:
        """f* = d min_t (t^2/2 + c cos t), by a fine grid then Newton steps on t = c sin t."""
        t = np.linspace(0.0, 4.0 + self.curvature, 200001)
        t0 = float(t[np.argmin(0.5 * t**2 + self.curvature * np.cos(t))])
        for _ in range(50):
            t0 -= (t0 - self.curvature * np.sin(t0)) / (1 - self.curvature * np.cos(t0))
        return dim * float(0.5 * t0**2 + self.curvature * np.cos(t0))


def theorem2_schedule(gap: float, big_g: float, smoothness: float, alpha: float, horizon: int) -> tuple[float, float]:
    """Theorem 2's constant step eta and threshold tau for horizon K."""
    eta = ((gap / (big_g**2 * (horizon + 1))) ** (alpha / (3 * alpha - 2))
           / smoothness ** ((2 * alpha - 2) / (3 * alpha - 2)))
    tau = big_g / (eta * smoothness) ** (1 / alpha)
    return eta, tau


def simulate_nonconvex(
    problem: CosineWell,
    sample_noise: Callable[[np.random.Generator], np.ndarray],
    *,
    x0: np.ndarray,
    horizon: int,
    step: float,
    threshold: float | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """(1/K) sum_{k=1..K} ||grad f(x_{k-1})||^2 per seed for GClip (threshold) or SGD (threshold None)."""
    x = np.asarray(x0, dtype=np.float64).copy()
    total = np.zeros(x.shape[0])
    for _ in range(horizon):
        grad = problem.grad(x)
        total += np.sum(grad**2, axis=-1)
        g = grad + sample_noise(rng)
        x = x - step * (g if threshold is None else clip_global(g, threshold))
    return total / horizon
