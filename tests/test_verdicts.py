"""Verdict rules on constructed data with known answers: each rule can pass, fail and stay undecided."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from heavytail.report import rules, verdicts
from heavytail.report.rules import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED


def runs(optimizer: str, values: list[float], statuses: list[str] | None = None, seeds=None,
         metric: str = "final_val_loss") -> pd.DataFrame:
    return pd.DataFrame({"optimizer": optimizer, "seed": seeds or list(range(len(values))), metric: values,
                         "status": statuses or ["ok"] * len(values)})


# --- seeds --------------------------------------------------------------------------------------------------------
def test_paired_seeds_give_the_t_interval_of_the_differences():
    a, b = runs("acclip", [1.0, 1.02, 0.97]), runs("adam", [2.0, 2.01, 1.99])
    out = rules.compare_seeds(a, b, "final_val_loss", "lower")
    d = np.array([1.0, 0.99, 1.02])  # b - a per seed: > 0 favours a (lower is better)
    lo, hi = stats.t.interval(0.90, 2, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(3))
    assert out["verdict"] == REPRODUCED and out["paired"] and "paired t over 3 seeds" in out["note"]
    assert (out["lo"], out["hi"]) == pytest.approx((lo, hi))


def test_unpaired_seeds_use_welch_and_agree_with_scipys_one_sided_test():
    a, b = runs("a", [1.0, 1.3, 0.8, 1.1]), runs("b", [1.4, 1.2, 1.9], seeds=[7, 8, 9])
    out = rules.compare_seeds(a, b, "final_val_loss", "lower")
    p = stats.ttest_ind(b["final_val_loss"], a["final_val_loss"], equal_var=False, alternative="greater").pvalue
    assert not out["paired"] and "Welch" in out["note"]
    assert (out["verdict"] == REPRODUCED) == (p < 0.05) and out["lo"] < out["difference"] < out["hi"]


@pytest.mark.parametrize(("a", "b", "better", "expected"), [
    ([3.0, 3.1, 2.9], [2.0, 2.1, 1.9], "lower", NOT_REPRODUCED),
    ([1.0, 2.0, 1.5], [1.9, 1.1, 1.5], "lower", INCONCLUSIVE),
    ([0.7, 0.71], [0.5, 0.52], "higher", REPRODUCED),
    ([0.7, 0.71], [0.5, 0.52], "lower", NOT_REPRODUCED),
], ids=["worse", "overlapping", "higher-is-better", "direction-flipped"])
def test_seeds_rule_directions(a, b, better, expected):
    assert rules.compare_seeds(runs("a", a), runs("b", b), "final_val_loss", better)["verdict"] == expected


def test_pooled_spread_known_answer():
    frame = pd.concat([runs("a", [1.0, 2.0, 3.0]), runs("b", [10.0, 12.0]), runs("c", [5.0])])
    spread = rules.pooled_spread(frame, "final_val_loss", ["optimizer"])
    assert spread == {"sd": pytest.approx(math.sqrt(4 / 3)), "df": 3, "groups": 2}
    assert rules.pooled_spread(runs("c", [5.0]), "final_val_loss", ["optimizer"]) is None


@pytest.mark.parametrize(("b", "expected"), [(1.05, REPRODUCED), (1.02, INCONCLUSIVE), (0.95, NOT_REPRODUCED)])
def test_single_seed_borrows_the_seed_spread(b, expected):
    # sd 0.01 on 4 degrees of freedom: half-width t(0.95, 4) * 0.01 * sqrt(2) = 0.0302
    spread = {"sd": 0.01, "df": 4, "groups": 2}
    out = rules.compare_seeds(runs("a", [1.0]), runs("b", [b]), "final_val_loss", "lower", spread=spread)
    assert out["verdict"] == expected and out["single_seed"] and "borrowed" in out["note"]
    assert out["hi"] - out["lo"] == pytest.approx(2 * stats.t.ppf(0.95, 4) * 0.01 * math.sqrt(2))


@pytest.mark.parametrize(("a", "b", "precision", "expected"), [
    (63.85, 63.45, 0.01, REPRODUCED),  # Table 2's 6-layer accuracies: the old 1 % margin said inconclusive
    (63.45, 63.85, 0.01, NOT_REPRODUCED),
    (63.455, 63.45, 0.01, INCONCLUSIVE),  # closer than the printed digit
    (63.85, 63.45, None, INCONCLUSIVE),  # no seed spread and no stated precision: nothing decides
])
def test_without_any_seed_spread_the_reported_precision_decides(a, b, precision, expected):
    out = rules.compare_seeds(runs("a", [a], metric="acc"), runs("b", [b], metric="acc"), "acc", "higher",
                              precision=precision)
    assert out["verdict"] == expected and out["single_seed"]


def test_a_diverged_run_counts_as_losing_with_a_note():
    a = runs("sgdm", [1.0, 1.0, math.nan], statuses=["ok", "ok", "diverged"])
    b = runs("adam", [1.05, 1.04, 1.06])
    out = rules.compare_seeds(a, b, "final_val_loss", "lower")
    assert "counted as losing" in out["note"] and "sgdm seed 2" in out["note"]
    penalised, _ = rules.penalise_diverged(a, b, "final_val_loss", "lower")
    assert penalised.iloc[2] > b["final_val_loss"].max()
    all_bad = runs("sgdm", [math.nan] * 3, statuses=["diverged"] * 3)
    assert rules.compare_seeds(all_bad, b, "final_val_loss", "lower")["verdict"] == NOT_REPRODUCED
    assert rules.compare_seeds(b, all_bad, "final_val_loss", "lower")["verdict"] == REPRODUCED
    assert rules.compare_seeds(runs("a", []), b, "final_val_loss", "lower")["verdict"] == NOT_RUN


# --- steps to a loss level ----------------------------------------------------------------------------------------
def curve(optimizer: str, seed: int, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"stage": "pretrain", "model": "m", "optimizer": optimizer, "seed": seed,
                         "step": [0, 100, 200, 300, 400][:len(values)], "value": values})


def test_steps_to_level_known_answer():
    a = pd.concat([curve("adam", s, [7.0, 3.0, 2.0, 1.9, 1.8]) for s in (0, 1, 2)])
    b = pd.concat([curve("sgdm", s, [7.0, 5.0, 4.0, 3.0, 2.2 if s == 1 else 2.0]) for s in (0, 1, 2)])
    ra, rb, level, gap = rules.steps_to_level(a, b, "lower", ["stage", "model", "optimizer", "seed"])
    assert level == pytest.approx(6.2 / 3) and gap == 100  # sgdm's mean best: (2.0 + 2.2 + 2.0) / 3
    assert list(ra["steps_to_level"]) == [200.0] * 3
    assert rb["steps_to_level"].iloc[0] == 400 and math.isnan(rb["steps_to_level"].iloc[1])  # seed 1 never
    out = rules.compare_seeds(ra, rb, "steps_to_level", "lower")
    assert out["verdict"] == REPRODUCED and "never" not in out["note"] and "counted as losing" in out["note"]


# --- intervals, change, level, tolerance, bound -------------------------------------------------------------------
def noise(alpha, lo, hi, step=0, **extra):
    return pd.DataFrame({"tail_index": [alpha], "tail_index_lo": [lo], "tail_index_hi": [hi], "step": [step],
                         **{k: [v] for k, v in extra.items()}})


def test_interval_rule():
    heavy, light, close = noise(1.5, 1.4, 1.6), noise(2.0, 1.9, 2.1), noise(1.95, 1.85, 2.05)
    assert rules.compare_intervals(heavy, light, "tail_index", "lower")["verdict"] == REPRODUCED
    assert rules.compare_intervals(light, heavy, "tail_index", "lower")["verdict"] == NOT_REPRODUCED
    assert rules.compare_intervals(close, light, "tail_index", "lower")["verdict"] == INCONCLUSIVE
    slopes = pd.DataFrame({"s": [1.0, 1.6], "s_lo": [0.9, 1.5], "s_hi": [1.1, 1.7]})
    assert rules.compare_intervals(slopes.iloc[:1], slopes.iloc[1:], "s", "lower", ("s_lo", "s_hi"))["verdict"] \
        == REPRODUCED


def test_change_rule_checks_the_claimed_direction():
    rising = pd.concat([noise(1.5, 1.4, 1.6, 0), noise(1.9, 1.8, 2.0, 100)])
    falling = pd.concat([noise(1.9, 1.8, 2.0, 0), noise(1.5, 1.4, 1.6, 100)])
    still = pd.concat([noise(2.0, 1.9, 2.1, 0), noise(2.0, 1.9, 2.1, 100)])
    assert rules.compare_change(rising, still, "tail_index", "increase")["verdict"] == REPRODUCED
    assert rules.compare_change(falling, still, "tail_index", "increase")["verdict"] == NOT_REPRODUCED
    assert rules.compare_change(falling, still, "tail_index")["verdict"] == REPRODUCED  # no direction claimed
    assert rules.compare_change(rising, falling, "tail_index", "increase")["verdict"] == NOT_REPRODUCED
    assert rules.compare_change(still, still, "tail_index", "increase")["verdict"] == INCONCLUSIVE
    assert rules.compare_change(noise(1.5, 1.4, 1.6), still, "tail_index")["verdict"] == NOT_RUN


@pytest.mark.parametrize(("row", "kwargs", "expected"), [
    (noise(1.5, 1.4, 1.6), {"below": 2.0}, REPRODUCED),
    (noise(2.3, 2.1, 2.5), {"below": 2.0}, NOT_REPRODUCED),
    (noise(1.9, 1.7, 2.2), {"below": 2.0}, INCONCLUSIVE),
    (noise(2.0, 1.9, 2.6), {"above": 1.8}, REPRODUCED),
    (noise(1.5, 1.4, 1.6), {"above": 1.8}, NOT_REPRODUCED),
    (pd.DataFrame({"tail_index": [0.3]}), {"above": 0.05}, REPRODUCED),  # no interval: a point
], ids=["below", "not-below", "straddles", "above", "not-above", "point"])
def test_level_rule(row, kwargs, expected):
    assert rules.compare_level(row, "tail_index", **kwargs)["verdict"] == expected


@pytest.mark.parametrize(("slope", "lo", "hi", "target", "one_sided", "expected"), [
    (-0.95, -1.0, -0.9, -1.0, None, REPRODUCED),
    (-0.5, -0.6, -0.4, -1.0, None, NOT_REPRODUCED),
    (-0.8, -0.95, -0.7, -1.0, None, INCONCLUSIVE),
    (-0.9, -0.95, -0.85, -0.5, "upper", REPRODUCED),  # faster than a rate that is an upper bound: fine
    (-0.9, -0.95, -0.85, -0.5, None, NOT_REPRODUCED),  # ... but not within 0.15 of it
    (-0.2, -0.25, -0.15, -0.5, "upper", NOT_REPRODUCED),
    (-0.3, -0.4, -0.2, -0.5, "upper", INCONCLUSIVE),
])
def test_tolerance_rule(slope, lo, hi, target, one_sided, expected):
    rows = pd.DataFrame({"measured_slope": [slope], "slope_lo": [lo], "slope_hi": [hi], "theory_slope": [target]})
    out = rules.compare_tolerance(rows, "measured_slope", "theory_slope", 0.15, ("slope_lo", "slope_hi"), one_sided)
    assert out["verdict"] == expected


def test_bound_rule_and_combination():
    rows = pd.DataFrame({"ratio_min": [0.25], "ratio_max": [0.5]})
    assert rules.compare_bound(rows, ["ratio_min", "ratio_max"], 0.5, 2)["verdict"] == NOT_REPRODUCED
    assert rules.compare_bound(rows, ["ratio_min", "ratio_max"], 0.25, 2)["verdict"] == REPRODUCED
    parts = [{"verdict": v} for v in (REPRODUCED, INCONCLUSIVE, NOT_RUN)]
    assert verdicts.combine(parts, "all") == INCONCLUSIVE and verdicts.combine(parts, "any") == REPRODUCED
    assert verdicts.combine([{"verdict": NOT_RUN}]) == NOT_RUN


def test_filters_patterns_and_snapping():
    frame = pd.DataFrame({"model": ["bert_l2", "bert_l2_noattn", "resnet18"], "step": [0, 0, 100],
                          "fraction": [0.0, 0.098, 0.1]})
    assert list(verdicts.select(frame, {"model": ["bert_l*"]})["model"]) == ["bert_l2", "bert_l2_noattn"]
    assert list(verdicts.select(frame, {"model": {"not": "*noattn*"}, "step": 0})["model"]) == ["bert_l2"]
    assert verdicts.select(frame, {"missing_column": "x"}).empty
    assert list(verdicts.snap(frame, {"fraction": 0.05})["fraction"]) == [0.0, 0.1, 0.1]


# --- claims -------------------------------------------------------------------------------------------------------
def noise_rows(model, data, values, group="all", fraction=0.0):
    return [{"model": model, "data": data, "group": group, "batch_size": 32, "step": 0, "fraction": fraction,
             "tail_index": a, "tail_index_lo": a - 0.05, "tail_index_hi": a + 0.05, "block_tail_index": a,
             "block_tail_index_lo": a - 0.05, "block_tail_index_hi": a + 0.05} for a in values]


def claim(claim_id: str) -> dict:
    return next(c for c in verdicts.load_paper()["claims"] if c["id"] == claim_id)


def test_noise_claims_decide_on_the_whole_vector_and_keep_groups_as_evidence():
    rows = (noise_rows("bert", "wikipedia", [1.3]) + noise_rows("resnet", "fashion_mnist", [1.9])
            # one parameter group goes the other way: evidence, not a veto (the paper compares whole vectors)
            + noise_rows("bert", "wikipedia", [2.0], group="layer_norm")
            + noise_rows("resnet", "fashion_mnist", [1.5], group="layer_norm"))
    out = verdicts.judge_claim(claim("bert_noise_heavier_than_resnet"), {"noise": pd.DataFrame(rows)}, "tiny")
    assert out["verdict"] == REPRODUCED and [p["part"] for p in out["parts"]] == ["batch_size=32"]
    evidence = {p["part"]: p["verdict"] for p in out["evidence"]}
    assert evidence == {"batch_size=32, group=all": REPRODUCED, "batch_size=32, group=layer_norm": NOT_REPRODUCED}


def test_fig7_pairs_checkpoints_by_fraction_and_ignores_alexnet():
    rows = []
    for fraction, bert, resnet in ((0.0, 1.3, 1.9), (0.1, 1.4, 1.9), (1.0, 1.5, 1.9)):
        rows += noise_rows("bert", "wikipedia", [bert], fraction=fraction)
        rows += noise_rows("resnet", "fashion_mnist", [resnet], fraction=0.098 if fraction == 0.1 else fraction)
    rows += noise_rows("alexnet", "fashion_mnist", [1.0])  # lighter than BERT: counted in, it would flip the verdict
    out = verdicts.judge_claim(claim("bert_tail_index_below_imagenet_through_training"),
                               {"noise": pd.DataFrame(rows)}, "tiny")
    assert out["verdict"] == REPRODUCED
    assert [p["part"] for p in out["parts"]] == [f"batch_size=32, fraction={f}" for f in (0.0, 0.1, 1.0)]
    rows += noise_rows("bert", "wikipedia", [2.1], fraction=0.5) + noise_rows("resnet", "fashion_mnist", [1.9],
                                                                              fraction=0.5)
    out = verdicts.judge_claim(claim("bert_tail_index_below_imagenet_through_training"),
                               {"noise": pd.DataFrame(rows)}, "tiny")
    assert out["verdict"] == NOT_REPRODUCED  # one checkpoint above ImageNet's


def test_a_claim_with_readings_says_which_reading_reproduces():
    paper = verdicts.load_paper()
    table = pd.concat([runs("adam", [1.0, 1.01, 0.99]), runs("acclip", [1.2, 1.21, 1.19]),
                       runs("acclip_normalized", [0.8, 0.81, 0.79])]).assign(stage="pretrain", model="bert_L2")
    out = verdicts.judge_claim(claim("acclip_loss_below_adam_every_depth"), {"runs": table}, "tiny",
                               paper["readings"])
    assert out["verdict"] == REPRODUCED and out["reading"] == "acclip_normalized"
    assert out["label"] == "reproduced by acclip_normalized at tiny scale"
    assert {r["label"]: r["verdict"] for r in out["readings"]} == {"acclip": NOT_REPRODUCED,
                                                                   "acclip_normalized": REPRODUCED}
    summary = verdicts.reading_summary([out], paper["readings"])
    assert [(s["label"], s["reproduced"]) for s in summary] == [("acclip", []), ("acclip_normalized",
                                                                                 ["acclip_loss_below_adam_every_depth"])]
    with pytest.raises(ValueError, match="unknown comparison kind"):
        verdicts.judge_claim({"id": "x", "sentence": "", "comparison": {"kind": "vibes", "table": "runs"}}, {}, "t")
