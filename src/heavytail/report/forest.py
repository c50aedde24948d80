"""A claim's effect (heavytail.report.effects) as a small inline SVG forest plot: light, no matplotlib."""

from __future__ import annotations

import math
from html import escape

COLOURS = {"reproduced": "#1a7f37", "not reproduced": "#cf222e", "inconclusive": "#9a6700", "not run": "#8c959f"}
SHADES = {"reproduced": "#dcf3e1", "not reproduced": "#fbe3e3", "inconclusive": "#ececec"}
WIDTH, HEIGHT, PAD = 190, 24, 6


def _range(effect: dict) -> tuple[float, float]:
    values = [v for r in effect["rows"] for v in (r["x"], r["lo"], r["hi"]) if v is not None]
    values += [p["x"] for p in effect["paper"] if p["x"] is not None]
    values += [e for reg in effect["regions"] for e in (reg["lo"], reg["hi"]) if e is not None]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return -1.0, 1.0
    lo, hi = min(values), max(values)
    span = hi - lo or max(abs(lo), 1.0)
    return lo - 0.08 * span, hi + 0.08 * span


def svg(effect: dict, claim_id: str, verdict: str) -> str:
    """The forest plot of one claim: regions shaded, our parts as interval + dot, the paper's values as diamonds."""
    lo, hi = _range(effect)

    def px(value: float | None, open_end: float | None = None) -> float:
        value = open_end if value is None else min(max(value, lo), hi)
        return round(PAD + (value - lo) / (hi - lo) * (WIDTH - 2 * PAD), 1)

    out = [f'<svg class="forest" data-claim="{escape(claim_id)}" data-rows="{len(effect["rows"])}" width="{WIDTH}" '
           f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'aria-label="{escape(verdict)}: {escape(effect["axis"])}"><title>{escape(effect["axis"])}</title>']
    for region in effect["regions"]:
        x0, x1 = px(region["lo"], lo), px(region["hi"], hi)
        if x1 > x0:
            out.append(f'<rect class="region" x="{x0}" y="1" width="{round(x1 - x0, 1)}" height="{HEIGHT - 2}" '
                       f'fill="{SHADES[region["verdict"]]}"><title>{escape(region["verdict"])} here</title></rect>')
    for edge in sorted({e for r in effect["regions"] for e in (r["lo"], r["hi"]) if e is not None}):
        out.append(f'<line x1="{px(edge)}" x2="{px(edge)}" y1="1" y2="{HEIGHT - 1}" stroke="#57606a" '
                   f'stroke-width="0.8"/>')
    rows = effect["rows"]
    step = min(6.0, (HEIGHT - 8) / max(len(rows) - 1, 1))
    top = HEIGHT / 2 - step * (len(rows) - 1) / 2
    for i, row in enumerate(rows):
        y = round(top + i * step, 1)
        colour = COLOURS.get(row["verdict"], COLOURS["not run"])
        span = f" [{row['lo']:.3g}, {row['hi']:.3g}]" if row["lo"] is not None and row["hi"] is not None else ""
        value = f"{row['x']:.3g}" if row["x"] is not None else ""
        tip = escape(f"{row['label'] or 'ours'}: {value}{span} ({row['verdict']})")
        out.append(f'<g class="est"><title>{tip}</title>')
        if row["lo"] is not None and row["hi"] is not None:
            out.append(f'<line x1="{px(row["lo"])}" x2="{px(row["hi"])}" y1="{y}" y2="{y}" stroke="{colour}" '
                       f'stroke-width="1.6"/>')
            if row["x"] is None:  # a range without a point: ticks at its ends
                for end in (row["lo"], row["hi"]):
                    out.append(f'<line x1="{px(end)}" x2="{px(end)}" y1="{y - 3}" y2="{y + 3}" stroke="{colour}" '
                               f'stroke-width="1.6"/>')
        if row["x"] is not None:
            fill = "#fff" if row.get("hollow") else colour
            out.append(f'<circle cx="{px(row["x"])}" cy="{y}" r="2.6" fill="{fill}" stroke="{colour}" '
                       f'stroke-width="1.2"/>')
        out.append("</g>")
    for mark in effect["paper"]:
        x, y = px(mark["x"]), HEIGHT / 2
        out.append(f'<path class="paper" d="M{x} {y - 4.5}L{x + 3.5} {y}L{x} {y + 4.5}L{x - 3.5} {y}Z" '
                   f'fill="none" stroke="#24292f" stroke-width="1.3"><title>the paper: '
                   f'{escape(mark["label"])}</title></path>')
    if effect.get("paper_direction"):
        claimed = next((r for r in effect["regions"] if r["verdict"] == "reproduced"), None)
        if claimed:
            edge = px(claimed["lo"]) if claimed["lo"] is not None else px(claimed["hi"]) - 8
            out.append(f'<path class="paper-direction" d="M{edge + 2} 2L{edge + 8} 5L{edge + 2} 8Z" fill="#24292f">'
                       f'<title>{escape(effect["paper_direction"])}</title></path>')
    if not rows:
        out.append(f'<text class="none" x="{WIDTH / 2}" y="{HEIGHT / 2 + 3}" text-anchor="middle" font-size="9" '
                   f'fill="#57606a">no estimate</text>')
    out.append("</svg>")
    return "".join(out)
