"""Theory checks: noise moments, clipping ops, Theorem 1's schedule and averaging, section 3.1, the entry point."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_job
from hypothesis import given, settings
from hypothesis import strategies as st

from heavytail.config import resolve_job_config
from heavytail.errors import ConfigError
from heavytail.theory import adam_clipping, experiments
from heavytail.theory.methods import (
    Method,
    clip_coordinate,
    clip_global,
    simulate_quadratic,
    threshold_exponent,
)
from heavytail.theory.noise import (
    SymmetricNoise,
    TwoPointInstance,
    gaussian_abs_moment,
    sample_symmetric_pareto,
    sample_symmetric_stable,
    stable_abs_moment,
    two_point_for_horizon,
)
from heavytail.theory.run import main


def resolve_theory_config(overrides: dict) -> dict:
    return resolve_job_config(tiny_job("theory", overrides), "theory")

# --- noise samplers: known moments --------------------------------------------------------------------------


def test_stable_moment_formula_matches_closed_forms():
    # Cauchy (stability 1): E|X|^p = 1 / cos(pi p / 2); stability 2 is N(0, 2)
    for p in (0.2, 0.5, 0.8):
        assert stable_abs_moment(p, 1.0) == pytest.approx(1 / math.cos(math.pi * p / 2), rel=1e-12)
    assert stable_abs_moment(2.0, 2.0) == pytest.approx(2.0, rel=1e-12)
    assert stable_abs_moment(1.0, 2.0) == pytest.approx(math.sqrt(2) * gaussian_abs_moment(1.0), rel=1e-12)
    assert math.isinf(stable_abs_moment(1.5, 1.5))


@pytest.mark.parametrize("stability", [1.3, 1.7, 2.0])
def test_stable_sampler_matches_its_moment(stability):
    draws = sample_symmetric_stable(np.random.default_rng(0), (400_000,), stability)
    # order 0.4 keeps |X|^0.4 with a finite variance, so the Monte Carlo error is about 0.3%
    assert np.mean(np.abs(draws) ** 0.4) == pytest.approx(stable_abs_moment(0.4, stability), rel=0.02)
    assert abs(np.median(draws)) < 0.01


def test_pareto_sampler_matches_its_moment_and_tail():
    tail = 1.3
    draws = sample_symmetric_pareto(np.random.default_rng(1), (400_000,), tail)
    assert np.min(np.abs(draws)) >= 1.0
    assert np.mean(np.abs(draws) ** 0.5) == pytest.approx(tail / (tail - 0.5), rel=0.02)
    assert np.mean(np.abs(draws) > 10.0) == pytest.approx(10.0**-tail, rel=0.05)  # P(|xi| > t) = t^-tail


@pytest.mark.parametrize("kind", ["pareto", "stable", "gaussian"])
@pytest.mark.parametrize("alpha", [1.2, 1.5, 2.0])
def test_symmetric_noise_has_unit_alpha_moment(kind, alpha):
    noise = SymmetricNoise(kind, alpha, 0.1)
    assert noise.abs_moment(alpha) == pytest.approx(1.0, rel=1e-12)
    assert noise.tail_index > alpha
    draws = noise.sample(np.random.default_rng(2), (300_000,))
    order = min(0.5, noise.tail_index / 3)
    assert np.mean(np.abs(draws) ** order) == pytest.approx(noise.abs_moment(order), rel=0.03)


def test_symmetric_noise_rejects_bad_alpha():
    with pytest.raises(ConfigError, match="alpha"):
        SymmetricNoise("pareto", 2.5)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 2.0])
def test_two_point_noise_is_unbiased_with_alpha_moment_at_most_one(alpha):
    inst = two_point_for_horizon(alpha, 4096, expected_jumps=1.0)
    assert 4096 * inst.jump_probability(0) == pytest.approx(1.0, rel=1e-12)
    for nu in (0, 1):
        p = inst.jump_probability(nu)
        # E[g(x)] = x - p / (2 gamma) = x - b_nu
        assert p * inst.jump == pytest.approx(inst.optimum(nu), rel=1e-12)
        x = np.linspace(0, 0.5, 101)
        moment = p * np.abs(x - inst.jump) ** alpha + (1 - p) * np.abs(x) ** alpha
        assert np.all(moment <= 1.0)
    nu = np.zeros(2_000_000, dtype=int)
    draws = inst.sample_noise(np.random.default_rng(3), nu)
    assert set(np.unique(draws)) == {inst.optimum(0), inst.optimum(0) - inst.jump}
    assert np.mean(draws == inst.optimum(0) - inst.jump) == pytest.approx(inst.jump_probability(0), rel=0.1)
    with pytest.raises(ValueError, match="eps"):
        TwoPointInstance(alpha, 0.2)


# --- clipping ops and Theorem 1 ------------------------------------------------------------------------------


def test_clip_global_matches_definition():
    rng = np.random.default_rng(4)
    g = rng.standard_normal((50, 7)) * rng.exponential(3.0, (50, 1))
    g[0] = 0.0
    tau = 2.0
    expected = np.stack([min(tau / np.linalg.norm(row), 1.0) * row if np.any(row) else row for row in g])
    out = clip_global(g, tau)
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    assert np.all(np.linalg.norm(out, axis=1) <= tau * (1 + 1e-15))
    cos = np.sum(out[1:] * g[1:], axis=1) / (np.linalg.norm(out[1:], axis=1) * np.linalg.norm(g[1:], axis=1))
    np.testing.assert_allclose(cos, 1.0, rtol=1e-14)  # direction preserved


def test_clip_coordinate_matches_definition():
    rng = np.random.default_rng(5)
    g = rng.standard_normal((40, 5)) * 3
    g[0, 0] = 0.0
    tau = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    with np.errstate(divide="ignore"):
        expected = np.where(g == 0, 0.0, np.minimum(tau / np.abs(g), 1.0) * g)
    np.testing.assert_allclose(clip_coordinate(g, tau), expected, rtol=1e-15)


def test_threshold_readings():
    assert threshold_exponent(1.5, "printed") == pytest.approx(0.5)
    assert threshold_exponent(1.5, "proof") == pytest.approx(2 / 3)
    m = Method("gclip_printed", clip="global", reading="printed")
    assert m.threshold(16, 3.0, 1.5) == pytest.approx(3.0 * 16**0.5)
    with pytest.raises(ConfigError):
        threshold_exponent(1.5, "typo")


def test_noiseless_sgd_follows_theorem1_steps_and_weighted_average():
    # eta_k = 4/(k+1): x_1 - a = -(x0 - a), x_2 - a = (x0 - a)/3, x_3 = a; xbar_2 = (1 x0 + 2 x1)/3
    x0, a = np.array([[2.0, -1.0]]), np.array([0.5, 0.5])
    out = simulate_quadratic([Method("sgd")], lambda r: np.zeros((1, 2)), x0=x0, optimum=a, mu=1.0, alpha=2.0,
                             steps=4, record_at=np.array([1, 2, 3, 4]), global_scale=1.0,
                             coordinate_scale=np.ones(2), rng=np.random.default_rng(0))["sgd"]
    d0 = 0.5 * np.sum((x0 - a) ** 2)
    np.testing.assert_allclose(out["last_error"][:, 0], [d0, d0 / 9, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(out["avg_error"][:2, 0], [d0, d0 / 9], rtol=1e-14)
    # xbar_3 = (x0 + 2 x1 + 3 x2)/6: (1 - 2 + 1)/6 = 0 offset
    assert out["avg_error"][2, 0] == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(out["max_error"][:, 0], [d0, d0, d0, d0], rtol=1e-14)


def test_gclip_slope_at_alpha_2_is_minus_one():
    cfg = resolve_theory_config({"alphas": [2.0], "symmetric_noises": ["stable"], "bootstrap_samples": 20,
                                 "rates": {"dim": 5, "seeds": 200, "steps": 1000, "fit_min_step": 50}})
    rows, _, _ = experiments.strongly_convex_rates(cfg, np.random.default_rng(0), log=lambda line: None)
    gclip = [r for r in rows if r["method"] == "gclip"]
    assert {r["threshold"] for r in gclip} == {"printed", "proof"}
    for r in gclip:
        assert abs(r["measured_slope"] - (-1.0)) <= 0.15, r
        assert r["slope_lo"] <= r["measured_slope"] <= r["slope_hi"]


# --- section 3.1: Adam as adaptive clipping ------------------------------------------------------------------

g_values = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))
v_values = st.one_of(st.just(0.0), st.floats(1e-12, 1e6))
beta2_values = st.one_of(st.just(0.0), st.floats(1e-4, 0.9999))
eps_values = st.one_of(st.just(0.0), st.floats(1e-12, 10.0))


@settings(max_examples=400, deadline=None)
@given(g=g_values, v=v_values, beta2=beta2_values, eps=eps_values)
def test_adam_clipping_bound_holds_above_and_fails_below_exactly_off_the_trivial_set(g, v, beta2, eps):
    if eps == 0 and beta2 * v == 0:
        return  # both effective steps are 0/0 there
    ratio = float(adam_clipping.step_ratio(g, v, beta2, eps))
    # the printed upper claim h_Adam <= 2 h_clip holds; in fact h_Adam <= h_clip / 2 ...
    assert ratio <= 0.5 * (1 + 1e-12)
    # ... and the true lower bound is h_clip / 4, not h_clip / 2
    assert ratio >= 0.25 * (1 - 1e-12)
    # the printed lower claim h_Adam >= h_clip / 2 fails exactly when g != 0 and (eps > 0 or beta2 v > 0)
    deficit = float(adam_clipping.lower_claim_deficit(g, v, beta2, eps))
    assert (deficit > 0) == bool(adam_clipping.lower_claim_fails(g, v, beta2, eps))
    denom = 2 * (eps + math.hypot(math.sqrt(beta2 * v), math.sqrt(1 - beta2) * abs(g)))
    assert ratio == pytest.approx(0.5 - deficit / denom, rel=1e-9, abs=1e-12)
    # without the factor 2 in eta the two-sided factor-2 statement holds
    unit = float(adam_clipping.step_ratio(g, v, beta2, eps, step_factor=1.0))
    assert 0.5 * (1 - 1e-12) <= unit <= 1.0 * (1 + 1e-12)


def test_adam_clipping_worst_case_is_one_quarter():
    case = adam_clipping.counterexample(beta2=0.999, g=1.0)
    assert case["ratio"] == pytest.approx(0.25, rel=1e-12)
    assert case["h_adam"] < 0.5 * case["h_clip"]
    grid = adam_clipping.grid_check(9)
    assert grid["ratio_min"] == pytest.approx(0.25, rel=1e-9)
    assert grid["upper_claim_holds_everywhere"]
    assert grid["lower_claim_fails_share_exact"] == 1.0  # the grid has g = 1 and eps > 0 everywhere


# --- entry point ---------------------------------------------------------------------------------------------


def test_resolve_config_fills_defaults_and_rejects_unknown_keys():
    cfg = resolve_theory_config({"rates": {"seeds": 8}})
    assert cfg["rates"]["seeds"] == 8 and cfg["rates"]["steps"] == 3000 and cfg["alphas"] == [1.2, 1.5, 2.0]
    with pytest.raises(ConfigError, match="rates.stepz"):
        resolve_theory_config({"rates": {"stepz": 10}})


def test_entry_point_writes_table_and_data(tmp_path):
    cfg = tiny_job("theory", {
        "alphas": [1.5, 2.0], "symmetric_noises": ["pareto"], "bootstrap_samples": 10, "threshold_readings": ["proof"],
        "rates": {"dim": 2, "seeds": 20, "steps": 200, "record_points": 8, "fit_min_step": 10},
        "lower_bound": {"seeds": 20, "horizons": [16, 32, 64]}, "appendix_a": {"seeds": 200, "steps": 100},
        "dimension_sweep": {"dims": [1, 2, 4], "seeds": 10, "steps": 100},
        "nonconvex": {"dim": 2, "seeds": 10, "horizons": [20, 40, 80]}, "adam_grid": {"points": 5}})
    main(["--config", json.dumps(cfg), "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "table1.csv")
    assert {"method", "noise", "alpha", "measured_slope", "slope_lo", "slope_hi", "theory_slope", "agrees",
            "notes"} <= set(table.columns)
    assert set(table["experiment"]) == {"strongly_convex", "lower_bound", "appendix_a", "dimension", "nonconvex"}
    assert "two_point" in set(table["noise"])
    sc = table[(table.experiment == "strongly_convex") & (table.method == "gclip")]
    np.testing.assert_allclose(sc["theory_slope"], [-2 * (a - 1) / a for a in sc["alpha"]], rtol=1e-5)
    assert (tmp_path / "theory_data.json").is_file() and (tmp_path / "run.json").is_file()
    from heavytail.report.figures.theory import table1

    written = table1(tmp_path, tmp_path / "fig" / "table1.png")
    assert all(p.stat().st_size > 0 for p in written)
