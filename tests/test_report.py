"""The report: verdict rules on constructed data, aggregation (a diverged run included), rendering, the budget."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from report_fixtures import TINY_DATA, make_results, write_run

from heavytail.report import aggregate, budget, render, verdicts
from heavytail.report.artifacts import PAPER_ARTIFACTS


def runs(optimizer: str, values: list[float], statuses: list[str] | None = None, seeds=None) -> pd.DataFrame:
    return pd.DataFrame({"optimizer": optimizer, "seed": seeds or list(range(len(values))),
                         "final_val_loss": values, "status": statuses or ["ok"] * len(values)})


# --- the seeds rule ---------------------------------------------------------------------------------------------
def test_clearly_better_is_reproduced():
    out = verdicts.compare_seeds(runs("acclip", [1.0, 1.01, 0.99]), runs("adam", [2.0, 2.02, 1.98]),
                                 "final_val_loss", "lower")
    assert out["verdict"] == verdicts.REPRODUCED
    assert out["paired"] and out["lo"] > 0 and out["difference"] == pytest.approx(1.0)


def test_clearly_worse_is_not_reproduced():
    out = verdicts.compare_seeds(runs("acclip", [3.0, 3.1, 2.9]), runs("adam", [2.0, 2.1, 1.9]),
                                 "final_val_loss", "lower")
    assert out["verdict"] == verdicts.NOT_REPRODUCED and out["hi"] < 0


def test_overlapping_is_inconclusive():
    out = verdicts.compare_seeds(runs("acclip", [1.0, 2.0, 1.5]), runs("adam", [1.9, 1.1, 1.5]),
                                 "final_val_loss", "lower")
    assert out["verdict"] == verdicts.INCONCLUSIVE and out["lo"] < 0 < out["hi"]


def test_higher_is_better_flips_the_direction():
    a = runs("acclip", [0.7, 0.71]).rename(columns={"final_val_loss": "acc"})
    b = runs("adam", [0.5, 0.51]).rename(columns={"final_val_loss": "acc"})
    assert verdicts.compare_seeds(a, b, "acc", "higher")["verdict"] == verdicts.REPRODUCED
    assert verdicts.compare_seeds(a, b, "acc", "lower")["verdict"] == verdicts.NOT_REPRODUCED


def test_unequal_seeds_use_the_unpaired_bootstrap():
    out = verdicts.compare_seeds(runs("a", [1.0, 1.1, 0.9]), runs("b", [2.0, 2.1], seeds=[7, 8]), "final_val_loss",
                                 "lower")
    assert out["verdict"] == verdicts.REPRODUCED and not out["paired"]


@pytest.mark.parametrize(("a", "b", "expected"), [
    (1.0, 2.0, verdicts.REPRODUCED),
    (2.0, 1.0, verdicts.NOT_REPRODUCED),
    (2.0, 2.01, verdicts.INCONCLUSIVE),  # 0.5 % apart: inside the 1 % single-seed margin
], ids=["better", "worse", "within-margin"])
def test_single_seed_uses_the_stated_fallback(a, b, expected):
    out = verdicts.compare_seeds(runs("a", [a]), runs("b", [b]), "final_val_loss", "lower")
    assert out["verdict"] == expected and out["single_seed"] and "single seed" in out["note"]


def test_a_diverged_run_counts_as_losing_with_a_note():
    # without the diverged seed, a would win on 2 of 3 seeds only weakly; its divergence makes it lose
    a = runs("sgdm", [1.0, 1.0, math.nan], statuses=["ok", "ok", "diverged"])
    b = runs("adam", [1.05, 1.04, 1.06])
    out = verdicts.compare_seeds(a, b, "final_val_loss", "lower")
    assert "counted as losing" in out["note"] and "sgdm seed 2" in out["note"]
    penalised, _ = verdicts.penalise_diverged(a, b, "final_val_loss", "lower")
    assert penalised.iloc[2] > b["final_val_loss"].max()
    # every run of a diverged: a loses to every finished run of b
    all_bad = runs("sgdm", [math.nan] * 3, statuses=["diverged"] * 3)
    assert verdicts.compare_seeds(all_bad, b, "final_val_loss", "lower")["verdict"] == verdicts.NOT_REPRODUCED
    assert verdicts.compare_seeds(b, all_bad, "final_val_loss", "lower")["verdict"] == verdicts.REPRODUCED


def test_no_runs_is_not_run():
    out = verdicts.compare_seeds(runs("a", []), runs("b", [1.0]), "final_val_loss", "lower")
    assert out["verdict"] == verdicts.NOT_RUN


# --- the other rules --------------------------------------------------------------------------------------------
def noise(alpha, lo, hi, step=0):
    return pd.DataFrame({"tail_index": [alpha], "tail_index_lo": [lo], "tail_index_hi": [hi], "step": [step]})


def test_interval_rule():
    heavy, light = noise(1.5, 1.4, 1.6), noise(2.0, 1.9, 2.1)
    assert verdicts.compare_intervals(heavy, light, "tail_index", "lower")["verdict"] == verdicts.REPRODUCED
    assert verdicts.compare_intervals(light, heavy, "tail_index", "lower")["verdict"] == verdicts.NOT_REPRODUCED
    close = noise(1.95, 1.85, 2.05)
    assert verdicts.compare_intervals(close, light, "tail_index", "lower")["verdict"] == verdicts.INCONCLUSIVE


def test_change_rule():
    moving = pd.concat([noise(1.5, 1.4, 1.6, 0), noise(1.9, 1.8, 2.0, 100)])
    still = pd.concat([noise(2.0, 1.9, 2.1, 0), noise(2.0, 1.9, 2.1, 100)])
    assert verdicts.compare_change(moving, still, "tail_index")["verdict"] == verdicts.REPRODUCED
    assert verdicts.compare_change(still, moving, "tail_index")["verdict"] == verdicts.NOT_REPRODUCED
    assert verdicts.compare_change(still, still, "tail_index")["verdict"] == verdicts.INCONCLUSIVE
    assert verdicts.compare_change(noise(1.5, 1.4, 1.6), still, "tail_index")["verdict"] == verdicts.NOT_RUN


@pytest.mark.parametrize(("slope", "lo", "hi", "expected"), [
    (-0.95, -1.0, -0.9, verdicts.REPRODUCED),
    (-0.5, -0.6, -0.4, verdicts.NOT_REPRODUCED),
    (-0.8, -0.95, -0.7, verdicts.INCONCLUSIVE),
])
def test_tolerance_rule(slope, lo, hi, expected):
    rows = pd.DataFrame({"measured_slope": [slope], "slope_lo": [lo], "slope_hi": [hi], "theory_slope": [-1.0]})
    out = verdicts.compare_tolerance(rows, "measured_slope", "theory_slope", 0.15, ("slope_lo", "slope_hi"))
    assert out["verdict"] == expected


def test_bound_rule_and_combination():
    rows = pd.DataFrame({"ratio_min": [0.25], "ratio_max": [0.5]})
    assert verdicts.compare_bound(rows, ["ratio_min", "ratio_max"], 0.5, 2)["verdict"] == verdicts.NOT_REPRODUCED
    assert verdicts.compare_bound(rows, ["ratio_min", "ratio_max"], 0.25, 2)["verdict"] == verdicts.REPRODUCED
    parts = [{"verdict": v} for v in (verdicts.REPRODUCED, verdicts.INCONCLUSIVE, verdicts.NOT_RUN)]
    assert verdicts.combine(parts, "all") == verdicts.INCONCLUSIVE
    assert verdicts.combine(parts, "any") == verdicts.REPRODUCED
    assert verdicts.combine([{"verdict": verdicts.NOT_RUN}]) == verdicts.NOT_RUN


def test_filters_support_patterns_lists_and_negation():
    frame = pd.DataFrame({"model": ["bert_l2", "bert_l2_noattn", "resnet18"], "step": [0, 0, 100]})
    assert list(verdicts.select(frame, {"model": ["bert_l*"]})["model"]) == ["bert_l2", "bert_l2_noattn"]
    assert list(verdicts.select(frame, {"model": {"not": "*noattn*"}, "step": 0})["model"]) == ["bert_l2"]
    assert verdicts.select(frame, {"missing_column": "x"}).empty


# --- aggregation ------------------------------------------------------------------------------------------------
def test_aggregation_of_a_diverged_run(tmp_path):
    results = tmp_path / "results" / "tiny"
    write_run(results, "pretrain", "bert_l2", "sgdm", 0, {"loss": 5.0, "mlm_accuracy": 0.2}, diverged_at=7)
    write_run(results, "pretrain", "bert_l2", "adam", 0, {"loss": 4.0, "mlm_accuracy": 0.3}, layers=2)
    table, curves = aggregate.collect_runs(results)
    by_opt = table.set_index("optimizer")
    assert by_opt.loc["sgdm", "status"] == "diverged" and by_opt.loc["sgdm", "diverged_at_step"] == 7
    assert pd.isna(by_opt.loc["sgdm", "final_val_loss"])  # its last evaluation predates the divergence
    assert by_opt.loc["adam", "status"] == "ok" and by_opt.loc["adam", "final_val_loss"] == 4.0
    assert by_opt.loc["adam", "final_mlm_accuracy"] == 0.3 and by_opt.loc["adam", "num_layers"] == 2
    assert set(curves["split"]) == {"train", "validation"}


def test_missing_experiments_give_empty_tables_with_columns(tmp_path):
    tables = aggregate.aggregate(tmp_path / "results" / "tiny", tmp_path / "bench", tmp_path / "benchmarks")
    aggregate.write_tables(tables, tmp_path / "tables")
    back = aggregate.read_tables(tmp_path / "tables")
    assert set(back) == {"runs", "curves", "tuning", "noise", "theory", "adam_clipping", "bench", "jobs"}
    assert all(frame.empty for frame in back.values())
    assert {"stage", "model", "optimizer", "seed", "status", "diverged_at_step"} <= set(back["runs"].columns)
    assert {"tail_index", "tail_index_lo", "tail_index_hi"} <= set(back["noise"].columns)


def test_aggregate_cli_collects_every_kind_of_file(tmp_path, monkeypatch):
    make_results(tmp_path, with_figure=False)
    monkeypatch.chdir(tmp_path)
    aggregate.main(["--config", json.dumps({"scale": "tiny"}), "--out", "results/tiny/tables"])
    tables = aggregate.read_tables(tmp_path / "results" / "tiny" / "tables")
    assert len(tables["runs"]) == 45 and (tables["runs"]["status"] == "diverged").sum() == 1
    assert len(tables["tuning"]) == 1 and len(tables["noise"]) == 7 and len(tables["theory"]) == 3
    assert tables["jobs"].loc[0, "max_rss"] == 850.5 and tables["jobs"].loc[0, "stage"] == "pretrain"
    bench = dict(zip(tables["bench"]["key"], tables["bench"]["value"], strict=True))
    assert float(bench["acclip.ms_per_step"]) == 1.5 and bench["device"] == "cpu"
    bert = tables["noise"][(tables["noise"]["model"] == "bert") & (tables["noise"]["step"] == 0)
                           & (tables["noise"]["data"] == "wiki")]
    assert list(bert[["tail_index", "tail_index_lo", "tail_index_hi"]].iloc[0]) == [1.5, 1.4, 1.6]


# --- rendering --------------------------------------------------------------------------------------------------
def test_render_gives_every_claim_a_verdict_and_lists_pending_artifacts(tmp_path, monkeypatch):
    artifacts = make_results(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = {"scale": "tiny", "data": TINY_DATA, "artifacts": artifacts}
    aggregate.main(["--config", json.dumps(cfg), "--out", "results/tiny/tables"])
    judged = render.render(cfg, tmp_path / "reports" / "tiny" / "index.html")
    html = (tmp_path / "reports" / "tiny" / "index.html").read_text()
    claims = verdicts.load_paper()["claims"]
    assert [v["id"] for v in judged] == [c["id"] for c in claims]
    for claim in claims:
        assert f'id="claim-{claim["id"]}"' in html
    by_id = {v["id"]: v for v in judged}
    # the constructed data decide these claims one way or the other
    assert by_id["adam_beats_sgdm_bert"]["verdict"] == verdicts.REPRODUCED
    assert by_id["acclip_beats_adam_squad"]["verdict"] == verdicts.NOT_REPRODUCED  # F1 is worse
    assert by_id["bert_noise_nonstationary_resnet_stationary"]["verdict"] == verdicts.REPRODUCED
    assert by_id["adam_is_clipping_factor_two"]["verdict"] == verdicts.NOT_REPRODUCED
    assert "at tiny scale" in by_id["adam_beats_sgdm_bert"]["label"]
    assert all(v["verdict"] != verdicts.NOT_RUN for v in judged)
    for name in set(PAPER_ARTIFACTS) - set(artifacts):
        assert f"<td>{name}</td>" in html  # pending artifacts are listed without a link
    assert html.count("pending: not implemented yet") == len(set(PAPER_ARTIFACTS) - set(artifacts))
    assert "<strong>diverged</strong>" in html and "sgdm" in html
    assert "1.907" in html and "76.85 ± 0.34" in html  # the paper's numbers beside ours
    assert "Scale: tiny." in html and "not SQuAD" in html
    assert (tmp_path / "reports" / "tiny" / "figures" / "fig3.png").is_file()
    assert (tmp_path / "reports" / "tiny" / "verdicts.csv").is_file()


def test_render_with_no_results_marks_every_claim_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    judged = render.render({"scale": "tiny", "data": TINY_DATA}, tmp_path / "out" / "index.html")
    assert {v["verdict"] for v in judged} == {verdicts.NOT_RUN}


# --- budget -----------------------------------------------------------------------------------------------------
def test_bert_flops_per_token_known_answer():
    # L=2, h=4, ff=16, S=8, V=10, m=0.5: 6*2*(64+128) + 12*2*8*4 + 6*0.5*(16+40) = 2304 + 768 + 168
    assert budget.bert_train_flops_per_token(2, 4, 8, 10, 0.5) == pytest.approx(3240)


def test_budget_arithmetic_uses_preset_sizes_and_measured_mfu():
    preset = {"pretrain": {"depths": [12], "hidden_size": 768, "seq_len": 128, "batch_size": 256, "steps": 1000,
                           "vocab_size": 30522, "mask_fraction": 0.15, "seeds": [0, 1]},
              "report": {"device_name": "X", "device_tflops": 100.0, "mfu": {"transformer": 0.5}}}
    rows = {r["target"]: r for r in budget.estimate("paper", preset, pd.DataFrame())}
    base = rows["pretrain depth 12 (fig1a, fig3, table2)"]
    per_step = budget.bert_train_flops_per_token(12, 768, 128, 30522, 0.15) * 256 * 128
    assert base["flops_per_step"] == pytest.approx(per_step)
    assert base["runs"] == 5 * 2  # every optimizer at the base depth, 2 seeds from the preset
    assert base["gpu_hours"] == pytest.approx(10 * 1000 * per_step / (100e12 * 0.5) / 3600)
    assert base["sizes_source"].startswith("assumed: ") and "steps" not in base["sizes_source"]
    assert base["mfu_source"] == "assumed"
    bench = pd.DataFrame({"file": ["train.json"], "key": ["bert_base.mfu"], "value": [0.25]})
    measured = {r["target"]: r for r in budget.estimate("paper", preset, bench)}
    assert measured[base["target"]]["mfu_source"] == "measured (bench)"
    assert measured[base["target"]]["gpu_hours"] == pytest.approx(2 * base["gpu_hours"])
    vision = rows["train_vision resnet50 (fig1b, fig8)"]
    assert vision["total_flops"] == pytest.approx(3 * 90 * 1_281_167 * 6 * 4.1e9)


def test_budget_table_totals_each_scale(tmp_path):
    out = tmp_path / "budget.csv"
    budget.main(["--config", json.dumps({"scale": "tiny", "budget_experiments": {"small": {}, "paper": {}}}),
                 "--bench-dir", str(tmp_path / "none"), "--out", str(out)])
    table = pd.read_csv(out)
    for scale in ("small", "paper"):
        part = table[table["scale"] == scale]
        total = part[part["target"] == "total"]["gpu_hours"].item()
        assert total == pytest.approx(part[part["target"] != "total"]["gpu_hours"].sum(), rel=1e-5)
    assert table[table["scale"] == "paper"]["gpu_hours"].max() > table[table["scale"] == "small"]["gpu_hours"].max()


def test_learning_checks_compare_against_the_trivial_predictors():
    from heavytail.report.sections import learning_checks

    table2 = pd.DataFrame({"model": ["bert_L1", "bert_L2"], "optimizer": ["adam", "adam"],
                           "val_loss": [5.88, 5.87], "context_free_loss": [5.85, 5.85]})
    table3 = pd.DataFrame({"method": ["baseline: first year", "baseline: first of asked type", "adam", "acclip"],
                           "model": ["bert_L2"] * 4, "runs": [None, None, 5, 5],
                           "exact_match_mean": [30.2, 55.6, 34.7, 32.2]})
    pretraining, squad = learning_checks({"table2": table2, "table3": table3})
    assert not pretraining["learned"] and "-0.020 nats" in pretraining["text"] and "word frequencies" in pretraining["text"]
    assert not squad["learned"] and "first of asked type, at 55.6 EM: -20.9 EM" in squad["text"]
    table2["val_loss"] = [4.9, 5.1]
    table3["exact_match_mean"] = [30.2, 55.6, 71.0, 69.0]
    pretraining, squad = learning_checks({"table2": table2, "table3": table3})
    assert pretraining["learned"] and "+0.950 nats" in pretraining["text"] and "(bert_L1, adam)" in pretraining["text"]
    assert squad["learned"] and "+15.4 EM" in squad["text"]
    assert learning_checks({}) == []
