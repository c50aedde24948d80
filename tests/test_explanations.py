"""The later explanations' plan, fair tuning with grid widening, aggregation into claim rows, and the claims."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO

from heavytail.config import load_config, resolve_job_config
from heavytail.constraints import check_explanations
from heavytail.io import read_json, write_json
from heavytail.plan import artifacts as plan_artifacts
from heavytail.plan import explanations as plan
from heavytail.plan.pretrain import pretrain_job
from heavytail.plan.vision import vision_job
from heavytail.report import explanations as aggregate
from heavytail.report import paper_check, verdicts
from heavytail.report.explanations_section import explanation_status, judge, section
from heavytail.train.sweep import WIDEN_LIMIT, tune_then_repeat

TINY = load_config(REPO / "config.yaml")
PAPER = load_config(REPO / "config.yaml", {"scale": "paper"})
LATER = verdicts.load_paper()["later_explanations"]


# --- the plan -----------------------------------------------------------------------------------------------------
def test_sweep_cells_noise_and_linear_jobs_of_each_scale():
    for experiment in (TINY, PAPER):
        sweep = experiment["explanations"]["batch_size_sweep"]
        cells = plan.sweep_cells(experiment)
        assert len(cells) == len(sweep["optimizers"]) * len(sweep["batch_sizes"])
        assert plan.noise_batch_sizes(experiment) == sweep["batch_sizes"][:-1]  # the full batch has no noise
        assert plan.full_batch(experiment) == sweep["batch_sizes"][-1]
    job = plan.sweep_job(TINY, "tiny", "sign_descent", 64)
    assert job["optimizer_setting"]["name"] == "sign_descent"  # from explanations.optimizers
    assert plan.sweep_job(TINY, "tiny", "sgdm", 32)["optimizer_setting"] == TINY["pretrain"]["optimizers"]["sgdm"]
    assert job["sweep"]["subset"] == 128 and job["sweep"]["seeds"] == [0, 1, 2] and job["batch_size"] == 64
    assert "tune" not in job and "optimizers" not in job  # a new Fig 3 grid does not rerun the sweep
    from heavytail.train.batch_sweep import JOB_KEYS as SWEEP_KEYS
    from heavytail.train.linear_softmax import JOB_KEYS as LINEAR_KEYS

    for raw, keys in ((job, SWEEP_KEYS), (plan.noise_job(TINY), SWEEP_KEYS),
                      (plan.linear_job(TINY, "tiny", "adam"), LINEAR_KEYS)):
        resolved = resolve_job_config(raw, "pretrain", keys, omitted=plan.PRETRAIN_OMITTED)
        assert resolved["base_model"] == TINY["pretrain"]["base_model"]


def test_the_base_models_runs_and_every_vision_run_log_frequency_groups():
    base = TINY["pretrain"]["base_model"]
    other = next(m for m in TINY["pretrain"]["models"] if m != base)
    assert pretrain_job(TINY, "tiny", base, "sgdm", 0)["frequency_groups"] == 10
    assert "frequency_groups" not in pretrain_job(TINY, "tiny", other, "adam", 0)  # Table 2's other depths unchanged
    assert vision_job(TINY, "tiny", "resnet", "sgdm", 0)["frequency_groups"] == 10
    runs = plan.imbalance_runs(TINY)
    assert all(f"pretrain/{base}/" in r or "/vision/" in r for r in runs) and len(runs) == len(set(runs))


def test_without_the_section_nothing_is_planned():
    bare = {k: v for k, v in TINY.items() if k != "explanations"}
    assert plan.sweep_cells(bare) == [] and plan.linear_labels(bare) == [] and plan.imbalance_runs(bare) == []
    assert plan.frequency_groups_for(bare, "pretrain", TINY["pretrain"]["base_model"]) is None
    assert not set(plan.FIGURES) & set(plan_artifacts.artifacts(bare))
    assert set(plan.FIGURES) <= set(plan_artifacts.artifacts(TINY))
    assert check_explanations(bare) == [] and check_explanations(TINY) == []


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s["batch_size_sweep"]["lr_grid"].update(adam=[1e-3, 2e-3]), "grids of different sizes"),
    (lambda s: s["batch_size_sweep"].update(batch_sizes=[32, 48, 128]), "do not divide the full batch 128"),
    (lambda s: s["batch_size_sweep"].update(batch_sizes=[64, 32, 128]), "must increase"),
    (lambda s: s["batch_size_sweep"]["optimizers"].append("lion"), "names 'lion'"),
    (lambda s: s["batch_size_sweep"]["lr_grid"].pop("gclip"), "has no entry 'gclip'"),
], ids=["unequal-grids", "non-dividing", "unsorted", "unknown-label", "untuned-label"])
def test_check_explanations_names_the_key_and_the_fix(edit, expected):
    experiment = copy.deepcopy(TINY)
    edit(experiment["explanations"])
    problems = check_explanations(experiment)
    assert any(expected in p for p in problems), problems


def test_cost_counts_every_grid_point_and_seed():
    rows = plan.cost(PAPER)
    sweep = [r for r in rows if r["rule"] == "sweep_batch_size"]
    assert len(sweep) == 16 and all(r["runs"] == 3 + 2 for r in sweep)  # 3 lrs on seed 0, then seeds 1 and 2
    assert {r["examples_per_step"] for r in sweep} == {256, 1024, 4096, 8192}
    from heavytail.report.budget import budget_table

    table = budget_table({"paper": PAPER}, pd.DataFrame())
    hours = table.set_index("target")["gpu_hours"]
    assert hours["batch_size_sweep (sweep_batch_size)"] > hours["class_imbalance linear model (train_linear_softmax)"] > 0


# --- fair tuning: the grid widens where its best is on an edge ----------------------------------------------------
def _fake_run(best_lr: float, diverge_above: float = math.inf):
    calls = []

    def run(lr, seed, folder):
        calls.append((lr, seed))
        if lr > diverge_above:
            return {"status": "diverged", "loss": math.nan}
        return {"status": "ok", "loss": (math.log(lr) - math.log(best_lr)) ** 2 + 0.01 * seed}

    return run, calls


def test_an_interior_best_is_kept_and_the_seeds_follow_it(tmp_path):
    run, calls = _fake_run(best_lr=0.1)
    choice = tune_then_repeat(run, [0.03, 0.1, 0.3], [0, 1, 2], tmp_path, {"optimizer": "sgdm"})
    assert choice["hparams"] == {"lr": 0.1} and choice["widened"] == [] and not choice["on_edge"]
    assert calls[3:] == [(0.1, 1), (0.1, 2)]
    assert read_json(tmp_path / "choice.json")["runs"][0]["seed"] == 0


def test_an_edge_best_widens_the_grid_and_one_still_on_the_edge_is_flagged(tmp_path):
    run, _ = _fake_run(best_lr=0.4)
    choice = tune_then_repeat(run, [0.1, 0.3], [0], tmp_path / "a")
    assert [w["lr"] for w in choice["widened"]] == pytest.approx([0.9])  # one step of x3: 0.3 is now bracketed
    assert choice["hparams"]["lr"] == 0.3 and not choice["on_edge"]
    run, _ = _fake_run(best_lr=100.0)
    choice = tune_then_repeat(run, [0.1, 0.3], [0], tmp_path / "b")
    assert len(choice["widened"]) == WIDEN_LIMIT and choice["on_edge"]
    run, _ = _fake_run(best_lr=1.0, diverge_above=0.3)  # a diverged neighbour brackets the best
    choice = tune_then_repeat(run, [0.1, 0.3, 1.0], [0], tmp_path / "c")
    assert choice["hparams"]["lr"] == 0.3 and choice["widened"] == [] and not choice["on_edge"]
    run, _ = _fake_run(best_lr=1.0, diverge_above=0.0)  # everything diverges: widen down, keep the smallest
    choice = tune_then_repeat(run, [0.1, 0.3], [0], tmp_path / "d")
    assert choice["on_edge"] and choice["hparams"]["lr"] == min(p["lr"] for p in choice["points"])
    assert all(p["side"] == "low" for p in choice["widened"])


# --- aggregation into the claim rows, and the claims' verdicts ------------------------------------------------
def _write_sweep(root: Path, losses: dict[tuple[str, int], list[float]]) -> list[str]:
    paths = []
    for (optimizer, batch), per_seed in losses.items():
        path = root / optimizer / f"bs{batch}" / "choice.json"
        write_json(path, {"optimizer": optimizer, "batch_size": batch, "hparams": {"lr": 0.1}, "grid": [0.1, 0.3],
                          "widened": [], "on_edge": False,
                          "runs": [{"seed": s, "status": "ok", "loss": v} for s, v in enumerate(per_seed)]})
        paths.append(str(path))
    return paths


def _sweep_tables(tmp_path, gap_at_full: float) -> dict[str, pd.DataFrame]:
    losses = {("sgdm", 32): [2.1, 2.2, 2.15], ("adam", 32): [1.7, 1.75, 1.72], ("gclip", 32): [1.9, 1.95, 1.92],
              ("sign_descent", 32): [1.8, 1.8, 1.85], ("adam", 128): [0.2, 0.25, 0.22],
              ("sgdm", 128): [0.2 + gap_at_full + d for d in (0.0, 0.02, 0.01)],
              ("sign_descent", 128): [0.1, 0.12, 0.11], ("gclip", 128): [1.0, 1.1, 1.05]}
    spec = {"part": "sweep", "sweep_choices": _write_sweep(tmp_path / str(gap_at_full), losses),
            "noise_summaries": [], "batch_sizes": [32, 64, 128]}
    return aggregate.aggregate(spec)


def _claim(claim_id: str) -> dict:
    return next(c for c in LATER["claims"] if c["id"] == claim_id)


def test_the_gap_and_sign_descent_claims_pass_and_fail_on_constructed_sweeps(tmp_path):
    grows = _sweep_tables(tmp_path, gap_at_full=1.5)
    vanishes = _sweep_tables(tmp_path, gap_at_full=0.0)
    gap = _claim("sgdm_adam_gap_persists_at_full_batch")
    assert verdicts.judge_claim(gap, grows, "test")["verdict"] == verdicts.REPRODUCED
    assert verdicts.judge_claim(gap, vanishes, "test")["verdict"] == verdicts.NOT_REPRODUCED
    sign = _claim("sign_descent_closes_gap_at_full_batch")
    assert verdicts.judge_claim(sign, grows, "test")["verdict"] == verdicts.REPRODUCED
    gclip = verdicts.judge_claim(_claim("gclip_narrows_gap_at_small_batch"), grows, "test")
    assert gclip["verdict"] == verdicts.REPRODUCED and gclip["parts"][0]["paired"]
    rows = grows["sweep_claims"]
    half = rows[(rows["quantity"] == "sgdm_adam_gap") & (rows["point"] == "half_gap_at_default_batch")]
    assert half["value"].tolist() == pytest.approx([0.2, 0.225, 0.215])


def _group_rows(source: str, optimizer: str, seed: int, rare_end: float) -> list[dict]:
    base = {"source": source, "model": "m", "optimizer": optimizer, "seed": seed, "split": "validation"}
    return [{**base, "step": 0, "group": 0, "loss": 7.6}, {**base, "step": 0, "group": 1, "loss": 7.6},
            {**base, "step": 100, "group": 0, "loss": 3.6}, {**base, "step": 100, "group": 1, "loss": rare_end}]


def test_rare_to_frequent_progress_and_its_claim():
    rows = [r for s in range(3) for r in _group_rows("pretrain", "sgdm", s, 7.4 - 0.1 * s)
            + _group_rows("pretrain", "adam", s, 5.6 - 0.1 * s)]
    progress = pd.DataFrame(aggregate.progress(pd.DataFrame(rows)))
    sgdm = progress[progress["optimizer"] == "sgdm"].sort_values("seed")["value"]
    assert sgdm.tolist() == pytest.approx([0.05, 0.075, 0.1])  # (7.6 - 7.4) / (7.6 - 3.6), ...
    claim = _claim("rare_tokens_fall_slower_under_sgdm")
    assert verdicts.judge_claim(claim, {"imbalance_claims": progress}, "test")["verdict"] == verdicts.REPRODUCED
    swapped = progress.replace({"optimizer": {"sgdm": "adam", "adam": "sgdm"}})
    assert verdicts.judge_claim(claim, {"imbalance_claims": swapped}, "test")["verdict"] == verdicts.NOT_REPRODUCED


def test_the_later_claims_reproduce_the_reported_values_and_reject_their_reversal():
    check = paper_check.check({"claims": LATER["claims"]}, LATER["reported_values"])
    assert check["passed"], check["failures"]
    assert check["claims"] == len(LATER["claims"]) >= 4


def test_each_explanation_is_supported_contradicted_or_undecided():
    predicts = {"a": "reproduced", "b": "not reproduced"}

    def judged(va, vb):
        return {"a": {"verdict": va, "parts": [{"verdict": va, "difference": 1.0, "lo": 0.5, "hi": 1.5}]},
                "b": {"verdict": vb, "parts": []}}

    assert explanation_status(predicts, judged("reproduced", "not reproduced"))[0] == "supported"
    assert explanation_status(predicts, judged("reproduced", "reproduced"))[0] == "contradicted"
    assert explanation_status(predicts, judged("reproduced", "inconclusive"))[0] == "undecided"
    status, lines = explanation_status(predicts, {})
    assert status == "undecided" and all(line["verdict"] == "not run" for line in lines)
    assert explanation_status(predicts, judged("reproduced", "not reproduced"))[1][0]["lo"] == 0.5


def test_the_section_judges_every_later_claim_and_copies_the_figures(tmp_path):
    tables = _sweep_tables(tmp_path, gap_at_full=1.5)
    png = tmp_path / "figures" / "batch_size_sweep.png"
    from heavytail.report.figures.explanations import batch_size_sweep, class_imbalance

    for name, frame in tables.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    batch_size_sweep(tmp_path, png)
    class_imbalance(tmp_path, tmp_path / "figures" / "class_imbalance.png")
    judged = judge(verdicts.load_paper(), tables, "tiny")
    out = section(json.loads(json.dumps(judged)), tables, tmp_path / "report", {"batch_size_sweep": str(png)})
    assert [v["id"] for v in out["verdicts"]] == [c["id"] for c in LATER["claims"]]
    assert (tmp_path / "report" / "figures" / "batch_size_sweep.png").is_file()
    status = {e["name"]: e["status"] for e in out["summary"]}
    assert status["sign_descent"] == "supported" and status["heavy_tailed_noise"] == "contradicted"
    assert status["class_imbalance"] == "undecided"  # its runs are not in these tables
    assert out["sweep"][0]["batch_size"] == 32 and out["check"]["passed"]
