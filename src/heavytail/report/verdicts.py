"""Each claim of reports/paper.yaml -> reproduced / not reproduced / inconclusive, by a stated mechanical rule.

A claim names a table, filters, two groups (or checks), a metric and its rule (`kind`, see RULES and rules.py).
`per` judges it per value of some columns and `require` combines the parts; `evidence_per` also judges it per
value of columns its filter fixes (parameter groups), shown as evidence only; `readings` judges it once per
reading of an optimizer (ACClip's printed rule and its normalised variant) and says which reproduces.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from heavytail.report.rules import (
    INCONCLUSIVE,
    LEVEL,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    compare_bound,
    compare_change,
    compare_intervals,
    compare_level,
    compare_seeds,
    compare_tolerance,
    pooled_spread,
    steps_to_level,
)
from heavytail.report.selection import select, snap

__all__ = ["INCONCLUSIVE", "NOT_REPRODUCED", "NOT_RUN", "REPRODUCED", "RULES", "judge_all", "judge_claim", "select"]

_ONE_SIDED = f"one-sided at {LEVEL:.0%}: the {2 * LEVEL - 1:.0%} two-sided interval"
RULES = {key: " ".join(text.split()) for key, text in (line.split(":", 1) for line in (
    f"seeds: one value per run. Student t on the seeds, {_ONE_SIDED} of the difference lying on the claimed "
    "side of 0 means reproduced, on the other side not reproduced, across 0 inconclusive; paired by seed where "
    "both groups ran the same seeds, else Welch. A group with a single run borrows the seed spread pooled over "
    "the claim's groups that have >= 2 runs (same part first, then the whole claim); where no group has two, "
    "the difference must be at least the paper's reported precision (one unit of its last printed digit: "
    "printed values that far apart are ordered whatever the rounding), else inconclusive. Diverged runs lose "
    "to every finished run.",
    "steps: steps to reach a loss level. The level is the worse of the two groups' mean best validation value, "
    "so the slower group reaches it on average; each run's first evaluation at or past the level is compared by "
    "the seeds rule (fewer steps is better; a run that never reaches it loses); single seeds without a seed "
    "spread must differ by at least the widest gap between evaluations.",
    "interval: each group's estimate carries its own interval (tail index: bootstrap over noise samples); "
    "disjoint intervals in the claimed order mean reproduced, in the other order not reproduced, overlap "
    "inconclusive.",
    "change: a group changes when its intervals at the first and last checkpoint are disjoint. Reproduced when "
    "the first group changes in the claimed direction and the second stays; not reproduced when the first "
    "changes the other way or the second changes; otherwise inconclusive.",
    "level: the estimate's interval entirely on the claimed side of a stated level means reproduced, entirely "
    "on the other side not reproduced, across it inconclusive; an estimate without an interval is compared as a "
    "point.",
    "tolerance: the measured value within the stated tolerance of the theory (for a rate that is an upper bound: "
    "at most the bound plus the tolerance, i.e. at least as fast) means reproduced; its interval entirely "
    "outside that band means not reproduced; otherwise inconclusive.",
    "bound: every measured value inside the claimed bounds means reproduced, otherwise not reproduced.",
    "parts: a claim judged per value of some columns (model, batch size, checkpoint) combines its parts: "
    "require all (default): all reproduced is reproduced, any not reproduced is not reproduced; require any: "
    "any reproduced is reproduced, all not reproduced is not reproduced; otherwise inconclusive. A claim with "
    "readings (ACClip's two) is reproduced when some reading reproduces it, and says which.",
))}
KINDS = ("seeds", "steps", "interval", "change", "level", "tolerance", "bound")
RUN_KEYS = ("stage", "model", "optimizer")
DEFAULT_PAPER = Path(__file__).resolve().parents[3] / "reports" / "paper.yaml"


def load_paper(path: str | Path = DEFAULT_PAPER) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _parts(frame: pd.DataFrame, per: list[str]) -> list[tuple[str, pd.DataFrame]]:
    per = [c for c in per if c in frame.columns and frame[c].notna().any()]
    if not per or frame.empty:
        return [("", frame)]
    return [(", ".join(f"{c}={v}" for c, v in zip(per, key if isinstance(key, tuple) else (key,), strict=True)), g)
            for key, g in frame.groupby(per, dropna=False, sort=True)]


# --- judging --------------------------------------------------------------------------------------------------
def combine(parts: list[dict], require: str = "all") -> str:
    verdicts = [p["verdict"] for p in parts if p["verdict"] != NOT_RUN]
    if not verdicts:
        return NOT_RUN
    if require == "any":
        return REPRODUCED if REPRODUCED in verdicts else NOT_REPRODUCED \
            if all(v == NOT_REPRODUCED for v in verdicts) else INCONCLUSIVE
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else REPRODUCED \
        if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


def _pair(group: pd.DataFrame, frame: pd.DataFrame, comp: dict, metric: str, keys: list[str]) -> dict:
    """One part of a two-group comparison."""
    kind, better = comp["kind"], comp.get("better", "lower")
    a, b = select(group, comp.get("a")), select(group, comp.get("b"))
    interval = tuple(comp["interval"]) if comp.get("interval") else None
    if kind == "seeds":
        single = min(len(a), len(b)) < 2  # only a single-seed group needs the spread of others
        spread = (pooled_spread(group, metric, keys) or pooled_spread(frame, metric, keys)) if single else None
        return compare_seeds(a, b, metric, better, comp.get("replicate", "seed"), spread,
                             (comp.get("precision") or {}).get(metric))
    if kind == "steps":
        run_keys = [*RUN_KEYS, comp.get("replicate", "seed")]
        ra, rb, level, resolution = steps_to_level(a, b, better, run_keys)
        single = min(len(ra), len(rb)) < 2
        pooled = pooled_spread(pd.concat([ra, rb]), "steps_to_level", list(RUN_KEYS)) if single and len(ra) else None
        out = compare_seeds(ra, rb, "steps_to_level", "lower", comp.get("replicate", "seed"), pooled, resolution,
                            "the widest gap between evaluations,")
        if math.isfinite(level):
            out["note"] = f"level {level:.4g} (a run that never reaches it counts as losing); " + out.get("note", "")
        return out
    if kind == "interval":
        return compare_intervals(a, b, metric, better, interval)
    if kind == "change":
        return compare_change(a, b, metric, comp.get("direction"))
    raise ValueError(f"reports/paper.yaml: unknown comparison kind {kind!r} (kinds: {', '.join(KINDS)})")


def judge_comparison(comp: dict, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Every part of one comparison, with its verdict and evidence."""
    kind = comp.get("kind", "seeds")
    frame = snap(select(tables.get(comp["table"], pd.DataFrame()), comp.get("filter")), comp.get("snap"))
    metric = comp.get("metric", "value")  # a steps claim reads curves.csv's value column
    metrics = metric if isinstance(metric, list) else [metric]
    per = comp.get("per", [])
    interval = tuple(comp["interval"]) if comp.get("interval") else None
    if kind == "bound":
        return [{"part": "", "metric": ", ".join(metrics),
                 **compare_bound(frame, metrics, comp["lower"], comp["upper"])}]
    parts = []
    if kind in ("level", "tolerance"):
        checks = comp.get("checks") or [{"name": "", "where": {}}]
        for check in checks:
            for label, group in _parts(select(frame, check.get("where")), per):
                for metric in metrics:
                    if kind == "level":
                        result = compare_level(group, metric, check.get("above"), check.get("below"), interval)
                    else:
                        result = compare_tolerance(group, metric, comp["target"], float(comp["tolerance"]),
                                                   interval, comp.get("one_sided"))
                    name = ", ".join(x for x in (check.get("name", ""), label) if x)
                    parts.append({"part": name, "metric": metric, **result})
        return parts
    keys = list(dict.fromkeys([c for c in RUN_KEYS if c in frame.columns] + per
                              + list(comp.get("a") or {}) + list(comp.get("b") or {})))
    for label, group in _parts(frame, per):
        for metric in metrics:
            shown = "steps_to_level" if kind == "steps" else metric
            parts.append({"part": label, "metric": shown, **_pair(group, frame, comp, metric, keys)})
    return parts


def with_reading(comp: dict, name: str, label: str) -> dict:
    """The comparison with the optimizer `name` in its groups replaced by one of its readings, `label`."""

    def swap(spec):
        spec = dict(spec or {})
        value = spec.get("optimizer")
        if value == name:
            spec["optimizer"] = label
        elif isinstance(value, list):
            spec["optimizer"] = [label if v == name else v for v in value]
        return spec

    return {**comp, "a": swap(comp.get("a")), "b": swap(comp.get("b"))}


def judge_claim(claim: dict, tables: dict[str, pd.DataFrame], scale: str, readings: dict | None = None) -> dict:
    """One claim's verdict at `scale`, with every part's evidence (and one verdict per reading, if it has any)."""
    comp = claim["comparison"]
    kind = comp.get("kind", "seeds")
    if kind not in KINDS:
        raise ValueError(f"reports/paper.yaml: claim {claim['id']}: unknown comparison kind {kind!r} "
                         f"(kinds: {', '.join(KINDS)})")
    name = claim.get("readings")
    options = (readings or {}).get(name) if name else None
    if name and not options:
        raise ValueError(f"reports/paper.yaml: claim {claim['id']}: readings {name!r} is not a key of `readings`")
    judged = []
    for label, description in (options or {"": ""}).items():
        reading = with_reading(comp, name, label) if label else comp
        parts = judge_comparison(reading, tables)
        judged.append({"label": label, "description": description, "parts": parts,
                       "verdict": combine(parts, comp.get("require", "all"))})
    verdict = combine(judged, "any")
    decisive = next((j for j in judged if j["verdict"] == verdict), judged[0])
    evidence = []
    if comp.get("evidence_per"):
        cols = comp["evidence_per"]
        wide = {**comp, "filter": {k: v for k, v in (comp.get("filter") or {}).items() if k not in cols},
                "per": [*comp.get("per", []), *cols]}
        evidence = judge_comparison(with_reading(wide, name, decisive["label"]) if decisive["label"] else wide,
                                    tables)
    single = any(p.get("single_seed") for p in decisive["parts"] if p["verdict"] != NOT_RUN)
    by = f" by {decisive['label']}" if decisive["label"] and verdict == REPRODUCED else ""
    return {"id": claim["id"], "sentence": claim["sentence"], "where": claim.get("where", ""),
            "figure": claim.get("figure", ""), "kind": kind, "scale": scale, "verdict": verdict,
            "single_seed": single, "rule": RULES[kind], "parts": decisive["parts"], "evidence": evidence,
            "reading": decisive["label"] if verdict == REPRODUCED else "",
            "readings": [{k: j[k] for k in ("label", "description", "verdict")} for j in judged if j["label"]],
            "label": f"{verdict}{' (single seed)' if single else ''}{by} at {scale} scale"}


def judge_all(paper: dict, tables: dict[str, pd.DataFrame], scale: str) -> list[dict]:
    return [judge_claim(claim, tables, scale, paper.get("readings")) for claim in paper.get("claims", [])]


def reading_summary(judged: list[dict], readings: dict | None) -> list[dict]:
    """Per reading of an optimizer: which of the claims that name it it reproduces, of those it ran."""
    out = []
    for name, options in (readings or {}).items():
        for label, description in options.items():
            mine = [(v["id"], r["verdict"]) for v in judged for r in v["readings"] if r["label"] == label]
            ran = [(i, x) for i, x in mine if x != NOT_RUN]
            out.append({"name": name, "label": label, "description": description, "claims": len(mine),
                        "ran": len(ran), "reproduced": [i for i, x in ran if x == REPRODUCED]})
    return out


def verdict_table(verdicts: list[dict]) -> pd.DataFrame:
    """One row per claim (for results/<scale>/tables/verdicts.csv)."""
    keys = ("id", "scale", "verdict", "single_seed", "reading", "kind", "figure", "sentence")
    return pd.DataFrame([{k: v[k] for k in keys} for v in verdicts], columns=list(keys))
