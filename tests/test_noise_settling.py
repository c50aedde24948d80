"""The Fig 2c/f verdict `settles` on streams with a known answer: finite variance settles, infinite does not."""

from __future__ import annotations

import numpy as np
import pytest

from heavytail.noise.reference import symmetric_stable
from heavytail.noise.variance import SETTLED_RELATIVE_RANGE, relative_range, settles, variance_curve

SEEDS = range(20)


def _squared_norms(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian_d4":
        return (rng.standard_normal((n, 4)) ** 2).sum(axis=1)
    if kind == "gaussian_d1":
        return rng.standard_normal(n) ** 2
    if kind == "student_t3":  # finite variance, infinite fourth moment: the hardest finite case here
        return (rng.standard_t(3, (n, 50)) ** 2).sum(axis=1)
    alpha = {"stable_1.5": 1.5, "stable_1.2": 1.2}[kind]
    return (symmetric_stable(alpha, (n, 50), seed=rng) ** 2).sum(axis=1)


@pytest.mark.parametrize(("kind", "n"), [("gaussian_d4", 256), ("gaussian_d1", 1024), ("student_t3", 4096)])
def test_finite_variance_streams_settle(kind, n):
    settled = [settles(variance_curve(_squared_norms(kind, n, seed))) for seed in SEEDS]
    assert sum(settled) >= 19


@pytest.mark.parametrize("kind", ["stable_1.5", "stable_1.2"])
@pytest.mark.parametrize("n", [256, 4096])
def test_infinite_variance_streams_do_not_settle(kind, n):
    settled = [settles(variance_curve(_squared_norms(kind, n, seed))) for seed in SEEDS]
    assert sum(settled) <= 1


def test_only_finite_variance_ranges_shrink_with_the_stream_length():
    def median_range(kind: str, n: int) -> float:
        return float(np.median([relative_range(variance_curve(_squared_norms(kind, n, s))) for s in SEEDS]))

    assert median_range("gaussian_d1", 4096) < 0.5 * median_range("gaussian_d1", 256)
    assert median_range("stable_1.5", 4096) > 0.7 * median_range("stable_1.5", 256) > SETTLED_RELATIVE_RANGE
