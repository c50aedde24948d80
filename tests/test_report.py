"""The report: aggregation, the paper's tables beside ours, the scoreboard and its evidence, provenance, budget."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import build_report, make_results, paper_check_json, write_run

from heavytail.io import read_json, write_json
from heavytail.report import aggregate, budget, evidence, provenance, render, scales, sections, verdicts
from heavytail.report.artifacts import PAPER_ARTIFACTS, display_name


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


@pytest.mark.parametrize("order", ["loss first", "mlm_loss first"])
def test_with_nsp_the_compared_loss_is_the_mlm_loss_in_any_key_order(tmp_path, order):
    # with NSP on, the validation row's loss is MLM + NSP; Table 2 and every verdict compare the MLM loss
    final = {"loss": 4.7, "mlm_loss": 4.0, "nsp_loss": 0.7, "mlm_accuracy": 0.3}
    if order == "mlm_loss first":
        final = dict(reversed(list(final.items())))
    write_run(tmp_path, "pretrain", "bert_l2", "adam", 0, final)
    table, curves = aggregate.collect_runs(tmp_path)
    row = table.iloc[0]
    assert row["final_val_loss"] == 4.0 and row["final_total_loss"] == 4.7 and row["final_nsp_loss"] == 0.7
    last = curves[(curves["split"] == "validation") & (curves["step"] == 20)]
    assert sorted(last["metric"]) == ["loss", "mlm_accuracy", "mlm_loss", "nsp_loss"]  # one row each, no alias clash
    vision = aggregate.final_validation([{"split": "validation", "step": 3, "val_loss": 0.9, "top1": 0.7}])
    assert vision == {"final_step": 3, "final_val_loss": 0.9, "final_top1": 0.7}


def test_paper_tables_show_one_row_per_acclip_reading():
    from heavytail.report.sections import paper_comparison

    paper = verdicts.load_paper()
    ours = pd.DataFrame({"stage": "pretrain", "model": ["bert_L1", "bert_L1", "bert_L1"], "num_layers": 1,
                         "optimizer": ["adam", "acclip", "acclip_normalized"], "status": "ok",
                         "final_val_loss": [5.0, 5.2, 4.9], "final_mlm_accuracy": [0.1, 0.09, 0.12]})
    table = paper_comparison(paper["table2"], ours, paper["readings"])
    rows = {(r["optimizer"], r["size"]): r for r in table["rows"]}
    assert [r["optimizer"] for r in table["rows"][:3]] == ["adam", "acclip", "acclip_normalized"]  # per size
    normalised = rows[("acclip_normalized", "BERT-base 6 layers")]
    assert normalised["reading"] == "normalised variant, at the paper's lr 1e-4" and normalised["n"] == 1
    assert [c["ours"] for c in normalised["cells"]] == ["4.9", "12"]  # beside the paper's ACClip: 1.877, 63.85
    assert [c["paper"] for c in normalised["cells"]] == ["1.877", "63.85"]
    vision = pd.DataFrame({"stage": "vision", "model": ["alexnet", "resnet"], "num_layers": None,
                           "optimizer": "sgdm", "status": "ok", "final_top1": [0.5, 0.8]})
    appendix = paper_comparison(paper["appendix_i"], vision, paper["readings"])
    assert appendix["rows"][0]["our_model"] == "resnet" and len(appendix["rows"]) == 3  # no readings, no AlexNet


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
    assert len(tables["tuning"]) == 1 and len(tables["noise"]) == 16 and len(tables["theory"]) == 16
    assert tables["jobs"].loc[0, "max_rss"] == 850.5 and tables["jobs"].loc[0, "stage"] == "pretrain"
    bench = dict(zip(tables["bench"]["key"], tables["bench"]["value"], strict=True))
    assert float(bench["acclip.ms_per_step"]) == 1.5 and bench["device"] == "cpu"
    bert = tables["noise"][(tables["noise"]["model"] == "bert") & (tables["noise"]["step"] == 0)
                           & (tables["noise"]["data"] == "wiki") & (tables["noise"]["group"] == "all")]
    assert list(bert[["tail_index", "tail_index_lo", "tail_index_hi"]].iloc[0]) == [1.5, 1.4, 1.6]


# --- rendering --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """The report of the constructed results, built once for the tests below (aggregate, judge, render)."""
    root = tmp_path_factory.mktemp("report")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        done = build_report(root)
    finally:
        os.chdir(cwd)
    html = (root / "reports" / "tiny" / "index.html").read_text()
    return {"root": root, "html": html, "verdicts": read_json(root / "reports" / "tiny" / "verdicts.json"), **done}


def test_render_gives_every_claim_a_verdict_and_lists_pending_artifacts(tiny_report):
    html, judged = tiny_report["html"], tiny_report["verdicts"]["claims"]
    claims = verdicts.load_paper()["claims"]
    assert sorted(v["id"] for v in judged) == sorted(c["id"] for c in claims)
    for claim in claims:
        assert f'id="claim-{claim["id"]}"' in html
    by_id = {v["id"]: v for v in judged}
    # the constructed data decide these claims one way or the other
    assert by_id["adam_beats_sgdm_bert"]["verdict"] == verdicts.REPRODUCED
    assert by_id["acclip_beats_adam_squad_f1"]["verdict"] == verdicts.NOT_REPRODUCED  # F1 is worse on every seed
    assert by_id["bert_noise_nonstationary_resnet_stationary"]["verdict"] == verdicts.REPRODUCED
    assert by_id["adam_is_clipping_factor_two"]["verdict"] == verdicts.NOT_REPRODUCED
    assert by_id["acclip_loss_below_adam_every_depth"]["label"] == "reproduced by acclip at tiny scale"
    assert by_id["per_coordinate_noise_heavy_tailed"]["verdict"] == verdicts.REPRODUCED
    assert by_id["variance_settles_resnet_not_bert"]["verdict"] == verdicts.REPRODUCED
    # decided on the whole noise vector; the parameter group shows as evidence only
    noise_claim = by_id["bert_noise_heavier_than_resnet"]
    assert [p["part"] for p in noise_claim["parts"]] == ["batch_size=32"]
    assert {p["part"] for p in noise_claim["evidence"]} == {"batch_size=32, group=all",
                                                            "batch_size=32, group=attention"}
    assert all(v["verdict"] != verdicts.NOT_RUN for v in judged), [v["id"] for v in judged if v["verdict"] == "not run"]
    counts = tiny_report["verdicts"]["counts"]
    assert sum(counts.values()) == len(claims) and f"{counts['reproduced']} reproduced</span>" in html
    assert 'the rules on the paper\'s own numbers: <a href="#paper-check">pass</a>' in html
    assert "acclip_normalized" in html and "printed rule, at its tuned lr" in html  # Table 2/3 rows per reading
    for name in set(PAPER_ARTIFACTS) - set(tiny_report["cfg"]["artifacts"]) - {"table2", "table3"}:
        assert f'<figure id="{name}">' in html or f'<section id="{name}">' in html
    assert html.count("pending: needs the") == len({n for n in PAPER_ARTIFACTS if n.startswith("fig")}
                                                   - set(tiny_report["cfg"]["artifacts"]))
    assert "bert_l2/sgdm/seed2</code> diverged at step 7" in html
    assert "1.907" in html and "76.85 ± 0.34" in html  # the paper's numbers beside ours
    assert "tiny scale</strong>" in html and "not SQuAD" in html
    out = tiny_report["root"] / "reports" / "tiny"
    for name in ("figures/fig3.png", "tables/table1.csv", "verdicts.csv", "provenance.json", "report_config.json"):
        assert (out / name).is_file(), name


def test_the_scoreboard_is_sorted_by_artifact_and_draws_every_claim(tiny_report):
    html = tiny_report["html"]
    ids = re.findall(r'<details class="claim[^"]*" id="claim-([\w]+)"', html)
    order = list(PAPER_ARTIFACTS)
    by_id = {c["id"]: c for c in verdicts.load_paper()["claims"]}
    ranks = [order.index(by_id[i]["figure"]) for i in ids]
    assert ranks == sorted(ranks) and len(ids) == len(by_id)
    assert html.count('<svg class="forest"') == len(ids)
    for claim in by_id.values():
        assert claim["short"] in html and len(claim["short"].split()) <= 10, claim["id"]


def test_every_caption_names_the_papers_panel_and_what_it_shows(tiny_report):
    for name in PAPER_ARTIFACTS:
        text = (Path(render.CAPTIONS) / f"{name}.rst").read_text()
        first = text.split("; ", 1)
        assert text.startswith(f"**Paper's {display_name(name)}** ("), name
        assert len(first) == 2 and re.match(r"the paper's (panels?|table) (shows?|gives)", first[1]), name
        assert f"Paper's {display_name(name)}</strong>" in tiny_report["html"]  # the same text in the HTML report


def test_outside_details_the_page_stays_short(tiny_report):
    assert tiny_report["words"] == render.visible_words(tiny_report["html"]) <= 2500


def test_visible_words_count_summaries_but_not_closed_details():
    html = ("<html><head><title>two words</title><style>a { b }</style></head><body><p>one two three</p>"
            "<details><summary>four five</summary><p>hidden words here</p><details><summary>hidden too</summary>"
            "</details></details><svg><title>tooltip</title><text>six</text></svg><br>seven</body></html>")
    assert render.visible_words(html) == 7


def test_evidence_links_the_runs_logs_and_configs(tiny_report):
    claim = next(c for c in tiny_report["verdicts"]["claims"] if c["id"] == "adam_beats_sgdm_bert")
    runs = {r["name"]: r["links"] for r in claim["runs"]}
    assert len(runs) == 9 + 3  # every adam run and every sgdm run the claim's groups read
    assert runs["pretrain/bert_l2/sgdm/seed0"] == {
        "log": "logs/tiny/pretrain/bert_l2/sgdm/seed0.log",
        "resolved_config.json": "results/tiny/pretrain/bert_l2/sgdm/seed0/resolved_config.json",
        "run.json": "results/tiny/pretrain/bert_l2/sgdm/seed0/run.json"}
    html = tiny_report["html"]
    assert 'href="../../logs/tiny/pretrain/bert_l2/sgdm/seed0.log"' in html
    noise = next(c for c in tiny_report["verdicts"]["claims"] if c["id"] == "bert_noise_nonstationary_resnet_stationary")
    assert {r["name"]: r["links"].get("log") for r in noise["runs"]}["noise/bert/wiki/step0/summary.json"] == \
        "logs/tiny/noise/measure_noise_bert.log"


def test_log_of_fills_the_rules_templates():
    logs = [["results/{scale,tiny}/squad/{model}/{optimizer}/seed0/scores.json", "logs/{scale}/squad/{model}/{optimizer}.log"],
            ["results/tiny/noise/bert/x/summary.json", "logs/tiny/noise/measure_noise_bert.log"],
            ["results/{scale}/theory/table1.csv", "logs/{scale}/theory/{name}.log"]]
    assert evidence.log_of("results/tiny/squad/bert_L1/adam/seed0", logs) == "logs/tiny/squad/bert_L1/adam.log"
    assert evidence.log_of("results/tiny/noise/bert/x/summary.json", logs) == "logs/tiny/noise/measure_noise_bert.log"
    assert evidence.log_of("results/tiny/theory/table1.csv", logs) is None  # the log names a wildcard it lacks
    assert evidence.log_of("results/tiny/vision/resnet/adam/seed0", logs) is None


def test_provenance_names_the_resolved_revisions_or_what_ships_the_data(tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    data = tmp_path / "data"
    write_json(data / "corpus" / "stats.json", {"source": {
        "kind": "hf_wikipedia_bookcorpus", "wikipedia": {"path": "wikimedia/wikipedia", "revision": sha, "local": False},
        "bookcorpus": {"path": "/data/bookcorpus", "revision": None, "local": True}}})
    write_json(data / "tokenizer" / "tokenizer_stats.json", {"kind": "pretrained", "source": {
        "path": "bert-base-uncased", "revision": sha[::-1], "local": False}})
    write_json(data / "qa" / "stats.json", {"source": {"kind": "squad_v1", "path": "rajpurkar/squad", "revision": sha}})
    rows = {r["data"]: r["source"] for r in provenance.data_revisions(tmp_path, {})}
    assert rows == {"text: wikipedia": f"wikimedia/wikipedia @ {sha}",
                    "text: bookcorpus": "local folder /data/bookcorpus (not a git checkout)",
                    "tokenizer": f"bert-base-uncased @ {sha[::-1]}", "QA": f"rajpurkar/squad @ {sha}"}
    write_json(data / "corpus" / "stats.json", {"source": {"kind": "gensim_wiki"}})
    write_json(data / "images" / "manifest.json", {"source": {"kind": "fashion_mnist"}})
    tiny = {r["data"]: r["source"] for r in provenance.data_revisions(tmp_path, {"gensim": "4.4.0"})}
    assert tiny["text"].startswith("shipped in package gensim 4.4.0") and "dataset-fashion-mnist" in tiny["images"]


def test_provenance_table_counts_commits_and_stage_times(tiny_report):
    root = tiny_report["root"]
    jobs = provenance.record(root / "results" / "tiny")
    table = provenance.summary(root / "results" / "tiny", jobs)
    assert table["commits"] == [{"commit": "abc123def456", "jobs": len(jobs)}]
    assert table["packages"] == {"torch": "2.14.1"} and table["hardware"]["cpu"] == "Test CPU"
    stages = {s["stage"]: s for s in table["stages"]}
    assert stages["pretrain"]["jobs"] == 9 * 2 + 3 * 2 and stages["pretrain"]["seconds"] == pytest.approx(12.5 * 24)
    assert all("config" not in j for j in jobs)  # the full record links configs, it does not repeat them
    html = tiny_report["html"]
    assert '<a href="provenance.json">provenance.json</a>' in html and "<pre>" not in html


def test_table1_puts_the_papers_rate_ours_and_the_difference_side_by_side():
    theory = pd.DataFrame({"experiment": ["strongly_convex", "strongly_convex", "strongly_convex", "appendix_a"],
                           "method": ["gclip", "gclip", "sgd", "sgd"], "threshold": ["proof", "proof", None, None],
                           "noise": "pareto", "alpha": [1.5, 2.0, 1.5, 1.2],
                           "measured_slope": [-0.70, -0.98, -0.4, 0.2], "theory_slope": [-2 / 3, -1.0, None, None]})
    table = sections.table1_comparison(theory)
    assert table["alphas"] == ["1.5", "2"]
    gclip, sgd = table["rows"]
    assert (gclip["method"], gclip["threshold"], gclip["span"], sgd["span"]) == ("gclip", "proof", 2, 0)
    assert gclip["cells"][0] == {"paper": "-0.667", "ours": "-0.7", "delta": "-0.033"}
    assert sgd["cells"][0]["paper"] == "N/A" and sgd["cells"][1] == {"paper": "–", "ours": "–", "delta": "–"}


def test_the_page_of_all_scales_puts_their_scoreboards_side_by_side(tiny_report, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = tiny_report["verdicts"]
    small = {**tiny, "scale": "small", "claims": [{**c, "verdict": verdicts.INCONCLUSIVE} for c in tiny["claims"]]}
    write_json(tmp_path / "reports" / "tiny" / "verdicts.json", tiny)
    write_json(tmp_path / "reports" / "small" / "verdicts.json", small)
    done = scales.render_scales([Path("reports/small/verdicts.json"), Path("reports/tiny/verdicts.json")],
                                Path("reports/index.html"))
    assert done["scales"] == ["tiny", "small"]  # in the order of the scales, not of the arguments
    html = (tmp_path / "reports" / "index.html").read_text()
    claims = verdicts.load_paper()["claims"]
    assert html.count('<td class="cell">') == 2 * len(claims) and html.count('<svg class="forest"') == 2 * len(claims)
    assert html.index("<th>tiny</th>") < html.index("<th>small</th>")
    row = html[html.index('id="claim-adam_beats_sgdm_bert"'):]
    row = row[:row.index("</tr>")]
    assert row.index('href="tiny/index.html#claim-adam_beats_sgdm_bert"') < row.index(">reproduced<") \
        < row.index('href="small/index.html#claim-adam_beats_sgdm_bert"') < row.index(">inconclusive<")


def test_with_no_results_every_claim_is_not_run_and_the_report_still_renders(tmp_path, monkeypatch):
    from report_fixtures import TINY_DATA

    from heavytail.report import judge

    monkeypatch.chdir(tmp_path)
    cfg = json.dumps({"scale": "tiny", "data": TINY_DATA})
    (tmp_path / "paper_check.json").write_text(paper_check_json())
    judge.main(["--config", cfg, "--paper-check", "paper_check.json", "--out", "out/verdicts.json"])
    assert {c["verdict"] for c in read_json(tmp_path / "out" / "verdicts.json")["claims"]} == {verdicts.NOT_RUN}
    done = render.render(json.loads(cfg), tmp_path / "out" / "index.html")
    html = (tmp_path / "out" / "index.html").read_text()
    assert done["claims"] == len(verdicts.load_paper()["claims"]) and html.count("no estimate") == done["claims"]
    assert "No theory results at this scale yet" in html and "no job yet" in html


def test_the_paper_check_cli_writes_each_claims_own_parts():
    check = json.loads(paper_check_json())
    assert check["passed"] and len(check["results"]) == len(verdicts.load_paper()["claims"])
    table2 = next(r for r in check["results"] if r["id"] == "acclip_loss_below_adam_every_depth")
    # the paper's Table 2 gaps (Adam - ACClip) at 12, 6 and 24 layers: the ◇ marks of the claim's forest plot
    assert not table2["synthetic"] and [round(p["difference"], 3) for p in table2["parts"]] == [0.103, 0.03, 0.019]
    assert next(r for r in check["results"] if r["id"] == "adam_beats_sgdm_bert")["synthetic"]


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
    # the random-encoder control is no candidate for "best", and gets its own line: what pretraining adds
    control = {"method": "adam, random encoder (control)", "model": "bert_L2", "runs": 3, "exact_match_mean": 80.0}
    with_control = pd.concat([table3, pd.DataFrame([control])], ignore_index=True)
    _, squad, adds = learning_checks({"table2": table2, "table3": with_control})
    assert "+15.4 EM" in squad["text"] and "(control)" not in squad["text"]
    assert not adds["learned"] and "71.0 (bert_L2, adam) against 80.0" in adds["text"] and "-9.0 EM" in adds["text"]
    assert learning_checks({}) == []
