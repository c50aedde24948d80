"""The scoreboard as the templates draw it: per claim its row (chip, seeds / n, estimate, forest plot) and evidence."""

from __future__ import annotations

import math
import os

from heavytail.report import forest
from heavytail.report.outcomes import NOT_RUN

VERDICT_CLASS = {"reproduced": "ok", "not reproduced": "bad", "inconclusive": "maybe", "not run": "none"}
RULE_WORDS = {"seeds": "seeds rule", "steps": "steps-to-level rule", "interval": "interval rule",
              "change": "change rule", "level": "level rule", "tolerance": "tolerance rule", "bound": "bound rule"}


def _num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}g}".replace("-", "\u2212")


def _spec(spec) -> str:
    if spec is None:
        return "every row"
    if isinstance(spec, dict):
        if set(spec) == {"not"}:
            return f"not {_spec(spec['not'])}"
        return ", ".join(f"{k} {_spec(v)}" for k, v in spec.items())
    if isinstance(spec, list):
        return " | ".join(str(v) for v in spec)
    return str(spec)


def applied(comp: dict) -> str:
    """The claim's comparison in one line: which rows, which groups, which metric and which way."""
    kind = comp.get("kind", "seeds")
    metric = comp.get("metric", "value")
    metric = ", ".join(metric) if isinstance(metric, list) else metric
    words = [f"table {comp['table']}.csv", f"filter: {_spec(comp.get('filter'))}"]
    if comp.get("a") or comp.get("b"):
        words.append(f"a = {_spec(comp.get('a'))}; b = {_spec(comp.get('b'))}")
    for check in comp.get("checks", []):
        where = f": {_spec(check['where'])}" if check.get("where") else ""
        words.append(f"{check.get('name') or 'all'}{where} {_side(check)}")
    words.append(f"metric {metric}" + (f", {comp['better']} is better" if comp.get("better") else ""))
    if kind == "tolerance":
        words.append(f"target {comp['target']} within {comp['tolerance']}"
                     + (" (at most: one-sided upper)" if comp.get("one_sided") == "upper" else ""))
    if kind == "bound":
        words.append(f"every value in [{comp['lower']:g}, {comp['upper']:g}]")
    if comp.get("per"):
        words.append(f"judged per {', '.join(comp['per'])}, require {comp.get('require', 'all')}")
    return "; ".join(words)


def groups(comp: dict) -> str:
    """What a and b are (two-group rules), or the checks' levels, in one line for a tooltip."""
    if comp.get("a") or comp.get("b"):
        return f"a = {_spec(comp.get('a'))}; b = {_spec(comp.get('b'))}"
    return "; ".join(f"{c.get('name') or 'all'} {_side(c)}" for c in comp.get("checks", []))


def _side(check: dict) -> str:
    """'below 1.5', or 'above gaussian_tail_index_lo' for a level that names a measured field."""
    side = "below" if check.get("below") is not None else "above"
    level = check.get(side, 0)
    return f"{side} {level:g}" if isinstance(level, int | float) else f"{side} {level}"


def part_rows(parts: list[dict]) -> list[dict]:
    """Each part's evidence as table cells."""
    rows = []
    for p in parts:
        effect = _num(p.get("difference")) if p.get("difference") is not None else ""
        if p.get("lo") is not None and p.get("hi") is not None:
            effect += f" [{_num(p['lo'], 3)}, {_num(p['hi'], 3)}]"
        a, b = _num(p.get("mean_a")), _num(p.get("mean_b"))
        if p.get("interval_a"):
            a += f" [{_num(p['interval_a'][0], 3)}, {_num(p['interval_a'][1], 3)}]"
            b += f" [{_num(p['interval_b'][0], 3)}, {_num(p['interval_b'][1], 3)}]"
        n = f"{p.get('n_a', '')}" + (f" / {p['n_b']}" if p.get("n_b") is not None else "")
        rows.append({"part": p.get("part") or "all", "metric": p.get("metric", ""), "a": a, "b": b,
                     "effect": effect.strip() or "–", "n": n, "verdict": p["verdict"],
                     "class": VERDICT_CLASS[p["verdict"]], "note": p.get("note", "")})
    return rows


def claim_view(claim: dict, rules: dict[str, str], out_dir: str) -> dict:
    """One claim for the template: its row and its evidence, links relative to the report's folder."""
    effect = claim["effect"]
    runs = [{"name": r["name"],
             "links": [{"label": label, "href": os.path.relpath(path, out_dir)} for label, path in r["links"].items()]}
            for r in claim["runs"]]
    shown = [p for p in claim["parts"] if p["verdict"] != NOT_RUN] or claim["parts"][:1]
    skipped = [p.get("part") for p in claim["parts"] if p["verdict"] == NOT_RUN and p not in shown]
    evidence = [p for p in claim.get("evidence", []) if p["verdict"] != NOT_RUN]
    return {
        "id": claim["id"], "short": claim["short"], "sentence": claim["sentence"], "where": claim["where"],
        "artifact": claim["artifact"], "artifact_name": claim["artifact_name"], "verdict": claim["verdict"],
        "class": VERDICT_CLASS[claim["verdict"]], "single_seed": claim["single_seed"], "n": claim["n"],
        "reading": claim.get("reading", ""), "readings": claim.get("readings", []),
        "groups": groups(claim["comparison"]),
        "estimate": effect["headline"], "estimate_part": effect["headline_part"],
        "svg": forest.svg(effect, claim["id"], claim["verdict"]), "axis": effect["axis"],
        "paper_marked": bool(effect["paper"]), "rule_name": RULE_WORDS[claim["kind"]],
        "rule": rules.get(claim["kind"], ""), "applied": applied(claim["comparison"]),
        "parts": part_rows(shown), "skipped": [s for s in skipped if s], "evidence": part_rows(evidence),
        "paper_values": claim.get("paper_values"), "runs": runs,
    }


def grouped(views: list[dict]) -> list[dict]:
    """The views with `first` set on the first claim of each artifact (the scoreboard draws a rule there)."""
    seen = set()
    for view in views:
        view["first"] = view["artifact"] not in seen
        seen.add(view["artifact"])
    return views
