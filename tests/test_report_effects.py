"""The scoreboard's forest plots: each claim's effect lies where its rule's verdict says, the SVG draws all of it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from heavytail.report import effects, forest, judge, paper_check, verdicts
from heavytail.report.outcomes import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

PAPER = verdicts.load_paper()
VALUES = paper_check.load_values()
CLAIMS = PAPER["claims"]


def _regions_of(value: float, regions: list[dict]) -> set[str]:
    """The verdicts of the regions holding `value` (two at a shared boundary)."""
    found = {r["verdict"] for r in regions
             if (r["lo"] is None or value >= r["lo"]) and (r["hi"] is None or value <= r["hi"])}
    assert found, f"{value} lies in no region"
    return found


def agrees(effect: dict, verdict: str) -> bool:
    """Whether the drawn effect says what the rule said: the interval (or point) inside that verdict's region."""
    kind, rows, regions = effect["kind"], effect["rows"], effect["regions"]
    if kind == "change":
        a, b = [r for r in rows if not r["hollow"]], [r for r in rows if r["hollow"]]
        a_up, b_stays = all(r["lo"] > 0 for r in a), all(r["lo"] <= 0 <= r["hi"] for r in b)
        return {REPRODUCED: a_up and b_stays, NOT_REPRODUCED: not (a_up and b_stays)}.get(verdict, True)
    for row in rows:
        lo = row["lo"] if row["lo"] is not None else row["x"]
        hi = row["hi"] if row["hi"] is not None else row["x"]
        if kind == "tolerance" and verdict == REPRODUCED:  # the rule reads the estimate, not its interval
            lo = hi = row["x"]
        ends = (_regions_of(lo, regions), _regions_of(hi, regions))
        if verdict in (REPRODUCED, NOT_REPRODUCED) and not all(verdict in e for e in ends):
            return False
        if verdict == INCONCLUSIVE and kind in ("seeds", "steps", "interval", "level") and row["lo"] is not None \
                and ends[0] == ends[1] and INCONCLUSIVE not in ends[0]:
            return False  # an undecided interval must reach across a boundary
    return True


CASES = [(claim, reversed_) for claim in CLAIMS for reversed_ in (False, True)]


@pytest.mark.parametrize(("claim", "reversed_"), CASES,
                         ids=[f"{c['id']}-{'reversed' if r else 'paper'}" for c, r in CASES])
def test_the_effect_lies_in_the_region_of_the_verdict(claim, reversed_):
    tables = paper_check.claim_tables(claim, VALUES[claim["id"]], PAPER)
    if reversed_:
        tables = paper_check.reverse(claim, tables)
    judged = verdicts.judge_claim(claim, tables, "paper values", PAPER["readings"])
    effect = effects.effect(claim, judged)
    assert effect["rows"], judged["parts"]  # every rule draws something on the paper's values
    for part in judged["parts"]:
        assert agrees({**effect, "rows": [r for r in effect["rows"]
                                          if r["label"].startswith(part.get("part") or part.get("metric", ""))]},
                      part["verdict"]), (part, effect)


def test_known_effects_of_each_kind():
    seeds = effects.coordinates("seeds", {"verdict": REPRODUCED, "difference": 0.3, "lo": 0.1, "hi": 0.5})
    assert seeds == [{"x": 0.3, "lo": 0.1, "hi": 0.5}]
    # a lower tail index is the claim: b's interval entirely above a's means a positive gap
    interval = effects.coordinates("interval", {"verdict": REPRODUCED, "difference": 0.5, "interval_a": [1.2, 1.4],
                                                "interval_b": [1.8, 2.0]}, better="lower")
    assert interval == [{"x": 0.5, "lo": pytest.approx(0.4), "hi": pytest.approx(0.8)}]
    level = effects.coordinates("level", {"verdict": INCONCLUSIVE, "mean_a": 1.9, "lo": 1.7, "hi": 2.2,
                                          "level": 2.0, "side": "below"})
    assert level == [{"x": pytest.approx(0.1), "lo": pytest.approx(-0.2), "hi": pytest.approx(0.3)}]
    tolerance = effects.coordinates("tolerance", {"verdict": REPRODUCED, "mean_a": -0.7, "lo": -0.75, "hi": -0.65,
                                                  "mean_b": -2 / 3})
    assert tolerance[0]["x"] == pytest.approx(-0.7 + 2 / 3)
    change = effects.coordinates("change", {"verdict": REPRODUCED, "direction": "decrease",
                                            "change_a": [-0.4, -0.6, -0.2], "change_b": [0.0, -0.1, 0.1]})
    assert change == [{"x": 0.4, "lo": 0.2, "hi": 0.6, "hollow": False},
                      {"x": -0.0, "lo": -0.1, "hi": 0.1, "hollow": True}]
    assert effects.coordinates("seeds", {"verdict": NOT_RUN}) == []
    precision = effects.regions("seeds", {}, [{"precision": 0.01, "lo": None}])
    assert [(r["lo"], r["hi"], r["verdict"]) for r in precision] == [
        (None, -0.01, NOT_REPRODUCED), (-0.01, 0.01, INCONCLUSIVE), (0.01, None, REPRODUCED)]


def test_the_forest_svg_draws_regions_parts_and_the_papers_values():
    claim = next(c for c in CLAIMS if c["id"] == "acclip_loss_below_adam_every_depth")
    check = paper_check.check({**PAPER, "claims": [claim]}, VALUES)["results"][0]
    tables = paper_check.claim_tables(claim, VALUES[claim["id"]], PAPER)
    judged = verdicts.judge_claim(claim, tables, "paper values", PAPER["readings"])
    effect = effects.effect(claim, judged, check)
    svg = ET.fromstring(forest.svg(effect, claim["id"], judged["verdict"]))
    tags = [e.tag for e in svg.iter()]  # inline SVG in HTML: no namespace
    assert svg.get("data-rows") == "3" and tags.count("circle") == 3  # one per model size
    assert len([e for e in svg.iter() if e.get("class") == "paper"]) == 3  # the paper's three gaps
    # the paper prints one run per size: decided at its precision 0.001, inconclusive inside (-0.001, 0.001)
    regions = [e.find("title").text for e in svg.iter() if e.get("class") == "region"]
    assert regions == ["not reproduced here", "inconclusive here", "reproduced here"]
    xs = [float(e.get("cx")) for e in svg.iter() if e.tag == "circle"]
    assert all(0 < x < forest.WIDTH for x in xs)
    synthetic = next(r for r in paper_check.check({**PAPER, "claims": [CLAIMS[0]]}, VALUES)["results"])
    drawn = forest.svg(effects.effect(CLAIMS[0], judged, synthetic), CLAIMS[0]["id"], REPRODUCED)
    assert 'class="paper-direction"' in drawn and 'class="paper"' not in drawn


def test_sample_sizes_summarise_the_parts():
    parts = [{"verdict": REPRODUCED, "n_a": 3, "n_b": 3}, {"verdict": INCONCLUSIVE, "n_a": 1, "n_b": 3},
             {"verdict": NOT_RUN, "n_a": 0, "n_b": 0}]
    assert judge.sample_sizes(parts) == "1\u20133 v 3"
    assert judge.sample_sizes([{"verdict": REPRODUCED, "n_a": 4}]) == "4"
