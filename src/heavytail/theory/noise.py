"""Heavy-tailed gradient-noise samplers with known alpha-moments, and the two-point lower-bound noise.

Every symmetric sampler returns noise normalised to a unit alpha-moment per coordinate, E|xi_i|^alpha = 1,
so that scaling coordinate i by B_i gives exactly Assumption 2 with constants B_i. Noise with a finite
alpha-moment needs a tail index above alpha: the samplers use tail index alpha + tail_margin (capped at 2
for alpha-stable noise, whose index 2 is the Gaussian).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heavytail.errors import ConfigError

SYMMETRIC_NOISES = ("pareto", "stable", "gaussian")


def pareto_abs_moment(order: float, tail_index: float) -> float:
    """E|xi|^order for the symmetric Pareto with P(|xi| > t) = t^-tail_index, t >= 1 (infinite if order >= tail)."""
    return math.inf if order >= tail_index else tail_index / (tail_index - order)


def stable_abs_moment(order: float, stability: float) -> float:
    """E|X|^order of the standard symmetric alpha-stable law, characteristic function exp(-|t|^stability).

    E|X|^p = 2^p Gamma((1+p)/2) Gamma(1 - p/a) / (sqrt(pi) Gamma(1 - p/2)) for -1 < p < a < 2; at a = 2 the
    law is N(0, 2) and the Gamma ratio is 1.
    """
    if stability >= 2.0:
        return 2.0**order * math.gamma((1 + order) / 2) / math.sqrt(math.pi)
    if order >= stability:
        return math.inf
    return (2.0**order * math.gamma((1 + order) / 2) * math.gamma(1 - order / stability)
            / (math.sqrt(math.pi) * math.gamma(1 - order / 2)))


def gaussian_abs_moment(order: float) -> float:
    """E|Z|^order for Z ~ N(0, 1)."""
    return 2.0 ** (order / 2) * math.gamma((order + 1) / 2) / math.sqrt(math.pi)


def sample_symmetric_pareto(rng: np.random.Generator, shape: tuple[int, ...], tail_index: float) -> np.ndarray:
    """Random sign times a Pareto(tail_index) magnitude >= 1, by inversion."""
    magnitude = rng.random(shape) ** (-1.0 / tail_index)
    return np.where(rng.random(shape) < 0.5, -magnitude, magnitude)


def sample_symmetric_stable(rng: np.random.Generator, shape: tuple[int, ...], stability: float) -> np.ndarray:
    """Standard symmetric alpha-stable draws (Chambers-Mallows-Stuck), characteristic function exp(-|t|^a)."""
    angle = rng.uniform(-math.pi / 2, math.pi / 2, shape)
    expo = rng.exponential(1.0, shape)
    if stability == 1.0:
        return np.tan(angle)
    a = stability
    return (np.sin(a * angle) / np.cos(angle) ** (1 / a)
            * (np.cos((1 - a) * angle) / expo) ** ((1 - a) / a))


@dataclass(frozen=True)
class SymmetricNoise:
    """Symmetric noise of a given kind whose alpha-moment is finite and normalised to 1 per coordinate."""

    kind: str
    alpha: float
    tail_margin: float = 0.1

    def __post_init__(self):
        if self.kind not in SYMMETRIC_NOISES:
            raise ConfigError(f"theory.symmetric_noises: unknown noise {self.kind!r} (use one of "
                              f"{', '.join(SYMMETRIC_NOISES)})")
        if not 1.0 < self.alpha <= 2.0:
            raise ConfigError(f"theory.alphas: alpha must be in (1, 2] (got {self.alpha})")
        if self.tail_margin <= 0:
            raise ConfigError(f"theory.tail_margin must be > 0 (got {self.tail_margin})")

    @property
    def tail_index(self) -> float:
        """The index above which absolute moments are infinite."""
        if self.kind == "pareto":
            return self.alpha + self.tail_margin
        if self.kind == "stable" and self.stability < 2.0:
            return self.stability
        return math.inf

    @property
    def stability(self) -> float:
        """Index of the alpha-stable law (2 = Gaussian, all moments finite)."""
        return min(self.alpha + self.tail_margin, 2.0)

    def raw_abs_moment(self, order: float) -> float:
        """E|xi|^order of the un-normalised draw."""
        if self.kind == "pareto":
            return pareto_abs_moment(order, self.tail_index)
        if self.kind == "stable":
            return stable_abs_moment(order, self.stability)
        return gaussian_abs_moment(order)

    @property
    def scale(self) -> float:
        """Divisor that makes E|xi|^alpha = 1."""
        return self.raw_abs_moment(self.alpha) ** (1.0 / self.alpha)

    def abs_moment(self, order: float) -> float:
        """E|xi|^order of the normalised noise."""
        return self.raw_abs_moment(order) / self.scale**order

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.kind == "pareto":
            raw = sample_symmetric_pareto(rng, shape, self.tail_index)
        elif self.kind == "stable":
            raw = sample_symmetric_stable(rng, shape, self.stability)
        else:
            raw = rng.standard_normal(shape)
        return raw / self.scale


@dataclass(frozen=True)
class TwoPointInstance:
    """Theorem 6 (Appendix G): f_b(x) = (x - b)^2 / 2 on [0, 1/2], g(x) = x - 1/(2 gamma) w.p. p_nu, else x.

    gamma = (4 eps)^(1/(alpha-1)), p_nu = gamma^alpha - 2 nu gamma eps, b_nu = (2 - nu) eps, so that
    E[g(x)] = x - b_nu and E|g(x)|^alpha <= 1 for x in [0, 1/2]. Telling nu = 0 from nu = 1 needs about
    1/p samples, which forces an error of order eps^2.
    """

    alpha: float
    eps: float

    def __post_init__(self):
        if not 0 < self.eps <= 0.125:
            raise ValueError(f"two-point noise needs eps in (0, 1/8] (got {self.eps}); use a longer horizon")

    @property
    def gamma(self) -> float:
        return (4 * self.eps) ** (1 / (self.alpha - 1))

    @property
    def jump(self) -> float:
        """Size of the rare gradient jump, 1/(2 gamma)."""
        return 1 / (2 * self.gamma)

    def jump_probability(self, nu: np.ndarray | int) -> np.ndarray:
        return self.gamma**self.alpha - 2 * np.asarray(nu) * self.gamma * self.eps

    def optimum(self, nu: np.ndarray | int) -> np.ndarray:
        return (2 - np.asarray(nu, dtype=np.float64)) * self.eps

    def sample_noise(self, rng: np.random.Generator, nu: np.ndarray) -> np.ndarray:
        """g(x) - grad f_b(x) = b_nu - jump * Bernoulli(p_nu), one draw per entry of nu."""
        hit = rng.random(nu.shape) < self.jump_probability(nu)
        return self.optimum(nu) - self.jump * hit


def two_point_for_horizon(alpha: float, horizon: int, expected_jumps: float = 1.0) -> TwoPointInstance:
    """The instance whose rare jump happens `expected_jumps` times in `horizon` draws: the hardest eps for k."""
    # p_0 = (4 eps)^(alpha/(alpha-1)) = expected_jumps / horizon
    eps = 0.25 * (expected_jumps / horizon) ** ((alpha - 1) / alpha)
    return TwoPointInstance(alpha=alpha, eps=eps)
