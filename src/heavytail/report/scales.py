"""The page of every scale with results, side by side: reports/index.html, one column of verdicts per scale.

    python -m heavytail.report.scales --out reports/index.html reports/tiny/verdicts.json reports/small/verdicts.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jinja2

from heavytail.config import SCALES
from heavytail.io import atomic_path, read_json
from heavytail.report import forest
from heavytail.report.outcomes import VERDICTS
from heavytail.report.render import TEMPLATES, visible_words
from heavytail.report.scoreboard import VERDICT_CLASS


def scale_order(scale: str) -> int:
    return list(SCALES).index(scale) if scale in SCALES else len(SCALES)


def columns(verdict_files: list[Path], out_dir: Path) -> list[dict]:
    """One column per scale: its counts, its report and each claim's chip and forest plot."""
    out = []
    for path in verdict_files:
        judged = read_json(path)
        report = os.path.relpath(path.parent / "index.html", out_dir)
        cells = {c["id"]: {"verdict": c["verdict"], "class": VERDICT_CLASS[c["verdict"]], "n": c["n"],
                           "estimate": c["effect"]["headline"], "href": f"{report}#claim-{c['id']}",
                           "svg": forest.svg(c["effect"], c["id"], c["verdict"])} for c in judged["claims"]}
        out.append({"scale": judged["scale"], "counts": judged["counts"], "report": report, "cells": cells,
                    "claims": judged["claims"], "paper_check": judged["paper_check"]})
    return sorted(out, key=lambda col: scale_order(col["scale"]))


def claim_rows(cols: list[dict]) -> list[dict]:
    """Every claim any scale judged, in the first scale's order (by artifact), with the rule on each artifact."""
    rows, seen, artifacts = [], set(), set()
    for col in cols:
        for c in col["claims"]:
            if c["id"] not in seen:
                seen.add(c["id"])
                rows.append({"id": c["id"], "short": c["short"], "sentence": c["sentence"],
                             "artifact": c["artifact"], "artifact_name": c["artifact_name"],
                             "first": c["artifact"] not in artifacts})
                artifacts.add(c["artifact"])
    return rows


def render_scales(verdict_files: list[Path], out_path: Path) -> dict:
    cols = columns(verdict_files, out_path.parent)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(),
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("scales.html.j2").render(columns=cols, rows=claim_rows(cols), verdict_order=VERDICTS,
                                                      verdict_class=VERDICT_CLASS)
    with atomic_path(out_path) as tmp:
        tmp.write_text(html)
    return {"scales": [c["scale"] for c in cols], "words": visible_words(html)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the page, reports/index.html")
    parser.add_argument("verdicts", nargs="+", type=Path, help="reports/<scale>/verdicts.json of each scale")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    done = render_scales(args.verdicts, args.out)
    print(f"{args.out}: scales {', '.join(done['scales'])} side by side, {done['words']} words, "
          f"rendered in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
