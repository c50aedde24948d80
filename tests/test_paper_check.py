"""The paper's own numbers as a test: every verdict rule reproduces them and rejects their reversal."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

from heavytail.report import paper_check, verdicts
from heavytail.report.artifacts import PAPER_ARTIFACTS
from heavytail.report.rules import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

PAPER = verdicts.load_paper()
VALUES = paper_check.load_values()
CLAIMS = PAPER["claims"]


def test_every_claim_names_its_figure_rule_and_paper_values():
    ids = [c["id"] for c in CLAIMS]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
    for claim in CLAIMS:
        assert claim["figure"] in PAPER_ARTIFACTS and claim["where"], claim["id"]
        assert claim["comparison"]["kind"] in verdicts.KINDS and claim["comparison"]["kind"] in verdicts.RULES
        assert VALUES.get(claim["id"]), f"{claim['id']} has no entry in paper_values.yaml"


@pytest.mark.parametrize("claim", CLAIMS, ids=[c["id"] for c in CLAIMS])
def test_the_rule_reproduces_the_paper_and_rejects_its_reversal(claim):
    entry = VALUES[claim["id"]]
    tables = paper_check.claim_tables(claim, entry, PAPER)
    own = verdicts.judge_claim(claim, tables, "paper", PAPER["readings"])
    opposite = verdicts.judge_claim(claim, paper_check.reverse(claim, tables), "paper", PAPER["readings"])
    assert own["verdict"] == entry.get("expect", REPRODUCED), own["parts"]
    assert opposite["verdict"] == NOT_REPRODUCED, opposite["parts"]


def test_the_one_recorded_exception_is_the_papers_own_12_layer_exact_match():
    result = paper_check.check(PAPER, VALUES)
    assert result["passed"] and result["claims"] == len(CLAIMS) and result["rejected"] == len(CLAIMS)
    assert [(e["id"], e["own"]) for e in result["exceptions"]] == [("acclip_beats_adam_squad_em", INCONCLUSIVE)]
    # the recorded reason is scipy's one-sided Welch test on Table 3's printed mean, std and 5 runs
    p = stats.ttest_ind_from_stats(81.62, 0.18, 5, 81.42, 0.16, 5, equal_var=False, alternative="greater").pvalue
    assert p == pytest.approx(0.0505, abs=5e-5) and "p = 0.0505" in result["exceptions"][0]["why"]
    em = next(c for c in CLAIMS if c["id"] == "acclip_beats_adam_squad_em")
    parts = verdicts.judge_claim(em, paper_check.claim_tables(em, VALUES[em["id"]], PAPER), "paper",
                                 PAPER["readings"])["parts"]
    assert {p["part"]: p["verdict"] for p in parts} == {"model=BERT-base 12 layers": INCONCLUSIVE,
                                                        "model=BERT-base 6 layers": REPRODUCED,
                                                        "model=BERT-large 24 layers": REPRODUCED}


def test_table_runs_carry_the_printed_mean_and_std():
    rows = paper_check.table_runs(PAPER["table3"])
    em = np.array([r["final_exact_match"] for r in rows
                   if r["optimizer"] == "acclip" and r["model"] == "BERT-base 12 layers"])
    assert len(em) == 5 and em.mean() == pytest.approx(81.62) and em.std(ddof=1) == pytest.approx(0.18)
    table2 = paper_check.table_runs(PAPER["table2"])
    assert [r["final_mlm_accuracy"] for r in table2 if r["optimizer"] == "adam"] == pytest.approx(
        [0.6345, 0.6644, 0.7056])  # percent in the paper, a fraction in our runs table
    seeds = {o: {r["seed"] for r in rows if r["optimizer"] == o} for o in ("adam", "acclip")}
    assert not seeds["adam"] & seeds["acclip"]  # the paper's runs are not paired by seed


def test_the_check_fails_a_rule_that_cannot_pass_or_cannot_fail():
    broken = copy.deepcopy(PAPER)
    by_id = {c["id"]: c for c in broken["claims"]}
    by_id["acclip_mlm_accuracy_above_adam_every_depth"]["comparison"]["better"] = "lower"  # reads the table upside down
    by_id["bert_noise_heavier_than_resnet"]["comparison"]["b"] = {"model": "resent*"}  # a typo: matches nothing
    fig5 = by_id["bert_noise_nonstationary_resnet_stationary"]["comparison"]
    fig5["b"] = fig5["a"]  # a group compared with itself can neither pass nor fail
    result = paper_check.check(broken, VALUES)
    assert not result["passed"]
    failed = {f["id"]: (f["own"], f["reversed"]) for f in result["failures"]}
    assert set(failed) == {"acclip_mlm_accuracy_above_adam_every_depth", "bert_noise_heavier_than_resnet",
                           "bert_noise_nonstationary_resnet_stationary"}
    assert failed["acclip_mlm_accuracy_above_adam_every_depth"] == (NOT_REPRODUCED, REPRODUCED)
    assert failed["bert_noise_heavier_than_resnet"] == ("not run", "not run")
    assert failed["bert_noise_nonstationary_resnet_stationary"][0] != REPRODUCED
    missing = paper_check.check(PAPER, {k: v for k, v in VALUES.items() if k != "adam_is_clipping_factor_two"})
    assert not missing["passed"] and missing["failures"][0]["problem"] == "no entry in paper_values.yaml"
