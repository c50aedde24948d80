"""Each claim's effect on one axis for the scoreboard's forest plot: ours per part, the paper's, the decision regions.

The axis is the rule's own decision quantity, oriented so that the claimed side is where the rule reproduces:
  seeds, steps  the difference (a better > 0) with its t interval; a single seed decided at a precision p has
                an inconclusive band (-p, p)
  interval      the difference of the two estimates; its interval spans what their intervals allow, so it lies
                above 0 exactly when the intervals are disjoint in the claimed order
  change        each group's change between its first and last checkpoint, in the claimed direction (b hollow:
                the claim wants it to stay, its interval across 0)
  level         the margin past the claimed level (below 2: 2 - alpha)
  tolerance     measured - theory, the tolerance band shaded (one-sided: at most + tolerance)
  bound         the measured range against the claimed bounds, in the metric's own units
"""

from __future__ import annotations

import math

from heavytail.report.outcomes import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

OPEN = None  # a region unbounded on that side (JSON has no infinity)


def _finite(*values) -> bool:
    return all(v is not None and isinstance(v, int | float) and math.isfinite(v) for v in values)


def _num(value: float, signed: bool = False) -> str:
    text = f"{value:+.3g}" if signed else f"{value:.3g}"
    return text.replace("-", "\u2212")


def coordinates(kind: str, part: dict, better: str = "lower") -> list[dict]:
    """One part's rows on the claim's axis: [{x, lo, hi, hollow}] (x may be None: a range without a point)."""
    if part.get("verdict") == NOT_RUN:
        return []
    if kind in ("seeds", "steps"):
        x = part.get("difference")
        if not _finite(x):
            return []
        lo, hi = part.get("lo"), part.get("hi")
        return [{"x": x, "lo": lo if _finite(lo) else None, "hi": hi if _finite(hi) else None}]
    if kind == "interval":
        ia, ib, x = part.get("interval_a"), part.get("interval_b"), part.get("difference")
        if not (ia and ib and _finite(x, *ia, *ib)):
            return []
        lo, hi = (ib[0] - ia[1], ib[1] - ia[0]) if better == "lower" else (ia[0] - ib[1], ia[1] - ib[0])
        return [{"x": x, "lo": lo, "hi": hi}]
    if kind == "change":
        sign = -1.0 if part.get("direction") == "decrease" else 1.0
        rows = []
        for key, hollow in (("change_a", False), ("change_b", True)):
            mid, lo, hi = part.get(key) or (None, None, None)
            if _finite(mid, lo, hi):
                lo, hi = sorted((sign * lo, sign * hi))
                rows.append({"x": sign * mid, "lo": lo, "hi": hi, "hollow": hollow})
        return rows
    if kind == "level":
        value, lo, hi, level = part.get("mean_a"), part.get("lo"), part.get("hi"), part.get("level")
        if not _finite(value, lo, hi, level):
            return []
        if part.get("side") == "below":
            return [{"x": level - value, "lo": level - hi, "hi": level - lo}]
        return [{"x": value - level, "lo": lo - level, "hi": hi - level}]
    if kind == "tolerance":
        value, lo, hi, goal = part.get("mean_a"), part.get("lo"), part.get("hi"), part.get("mean_b")
        if not _finite(value, goal):
            return []
        return [{"x": value - goal, "lo": lo - goal if _finite(lo) else None, "hi": hi - goal if _finite(hi) else None}]
    if kind == "bound":
        lo, hi = part.get("lo"), part.get("hi")
        return [{"x": None, "lo": lo, "hi": hi}] if _finite(lo, hi) else []
    raise ValueError(f"unknown rule kind {kind!r}")


def regions(kind: str, comp: dict, parts: list[dict]) -> list[dict]:
    """Where on the axis each verdict lies: [{lo, hi, verdict}], None for an open end."""
    if kind == "tolerance":
        tol = float(comp.get("tolerance", 0.0))
        if comp.get("one_sided") == "upper":
            return [{"lo": OPEN, "hi": tol, "verdict": REPRODUCED}, {"lo": tol, "hi": OPEN, "verdict": NOT_REPRODUCED}]
        return [{"lo": OPEN, "hi": -tol, "verdict": NOT_REPRODUCED}, {"lo": -tol, "hi": tol, "verdict": REPRODUCED},
                {"lo": tol, "hi": OPEN, "verdict": NOT_REPRODUCED}]
    if kind == "bound":
        lower, upper = float(comp["lower"]), float(comp["upper"])
        return [{"lo": OPEN, "hi": lower, "verdict": NOT_REPRODUCED}, {"lo": lower, "hi": upper, "verdict": REPRODUCED},
                {"lo": upper, "hi": OPEN, "verdict": NOT_REPRODUCED}]
    precision = max((p["precision"] for p in parts if p.get("precision") and p.get("lo") is None), default=None)
    if precision:
        return [{"lo": OPEN, "hi": -precision, "verdict": NOT_REPRODUCED},
                {"lo": -precision, "hi": precision, "verdict": INCONCLUSIVE},
                {"lo": precision, "hi": OPEN, "verdict": REPRODUCED}]
    return [{"lo": OPEN, "hi": 0.0, "verdict": NOT_REPRODUCED}, {"lo": 0.0, "hi": OPEN, "verdict": REPRODUCED}]


AXES = {
    "seeds": "difference of the group means, a better > 0",
    "steps": "steps saved reaching the common loss level, a faster > 0",
    "interval": "difference of the estimates (a heavier-tailed or better > 0) across both intervals",
    "change": "change from first to last checkpoint in the claimed direction (hollow: the group that should stay)",
    "level": "margin past the claimed level (claimed side > 0)",
    "tolerance": "measured - theory (the tolerance band shaded)",
    "bound": "measured range against the claimed bounds",
}


def headline(kind: str, part: dict) -> str:
    """Our estimate in a few words, in the metric's own units."""
    if kind in ("seeds", "steps"):
        text = f"\u0394 {_num(part['difference'], True)}"
        if _finite(part.get("lo"), part.get("hi")) and part["lo"] != part["hi"]:
            text += f" [{_num(part['lo'], True)}, {_num(part['hi'], True)}]"
        return text
    if kind == "interval":
        return f"{_num(part['mean_a'])} vs {_num(part['mean_b'])}"
    if kind == "change":
        a, b = part.get("change_a"), part.get("change_b")
        return f"a {_num(a[0], True)}, b {_num(b[0], True)}" if a and b else part.get("note", "")
    if kind == "level":
        span = f" [{_num(part['lo'])}, {_num(part['hi'])}]" if part["lo"] != part["hi"] else ""
        return f"{_num(part['mean_a'])}{span} {'<' if part.get('side') == 'below' else '>'} {part['level']:g}"
    if kind == "tolerance":
        return f"{_num(part['mean_a'])} vs {_num(part['mean_b'])}"
    if kind == "bound":
        return f"[{_num(part['lo'])}, {_num(part['hi'])}] in [{part['lower']:g}, {part['upper']:g}]"
    return ""


def _limiting(kind: str, rows: list[tuple[dict, dict]]) -> tuple[dict, dict] | None:
    """The part that limits the verdict: the one closest to (or furthest past) the wrong side."""
    if not rows:
        return None
    if kind == "tolerance":
        return max(rows, key=lambda r: abs(r[1]["x"]))
    if kind in ("bound", "change"):
        return rows[0]
    return min(rows, key=lambda r: r[1]["lo"] if r[1].get("lo") is not None else r[1]["x"])


def effect(claim: dict, judged: dict, paper_result: dict | None = None) -> dict:
    """The forest plot's data for one judged claim (ours per part, the paper's values, the regions)."""
    comp = claim["comparison"]
    kind, better = comp.get("kind", "seeds"), comp.get("better", "lower")
    rows, placed = [], []
    for part in judged["parts"]:
        for k, row in enumerate(coordinates(kind, part, better)):
            label = part.get("part") or part.get("metric", "")
            if kind == "change":
                label = f"{label} {'b' if k else 'a'}".strip()
            rows.append({**row, "label": label, "verdict": part["verdict"], "hollow": row.get("hollow", False)})
            if not row.get("hollow"):
                placed.append((part, row))
    limiting = _limiting(kind, placed)
    paper, direction = [], None
    if paper_result and not paper_result.get("synthetic"):
        for part in paper_result.get("parts", []):
            for row in coordinates(kind, part, better):
                if not row.get("hollow"):
                    paper.append({"x": row["x"] if row["x"] is not None else row["lo"],
                                  "label": part.get("part") or "paper"})
                    if kind == "bound":
                        paper.append({"x": row["hi"], "label": part.get("part") or "paper"})
    elif paper_result:
        direction = "the paper shows the effect on the claimed side but prints no number for it"
    return {"kind": kind, "axis": AXES[kind], "rows": rows, "regions": regions(kind, comp, judged["parts"]),
            "paper": paper, "paper_direction": direction,
            "headline": headline(kind, limiting[0]) if limiting else "",
            "headline_part": (limiting[0].get("part") or "") if limiting else ""}
