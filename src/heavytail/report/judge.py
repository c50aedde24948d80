"""Judge every claim of reports/paper.yaml on one scale's aggregated tables; write the verdicts the report draws.

    python -m heavytail.report.judge --config <json> --out reports/<scale>/verdicts.json

verdicts.json holds, per claim sorted by the paper's artifact: the verdict and every part's evidence (verdicts.py),
its effect on one axis beside the paper's (effects.py), and the runs it read with their logs (evidence.py); then
the counts, ACClip's readings and the summary of the rules' check on the paper's own values (paper_check.py,
read from reports/paper_check.json when given); then the later explanations' claims, apart (explanations_section.py). verdicts.csv beside it has one row per claim.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from heavytail.config import load_job_config, resolve_job_config
from heavytail.io import atomic_path, read_json, write_json
from heavytail.report import aggregate, effects, evidence, explanations_section, paper_check, verdicts
from heavytail.report.artifacts import PAPER_ARTIFACTS, display_name

# the report job's own keys (besides the report section): artifacts, job logs, the page of all scales
JOB_KEYS = ("artifacts", "job_logs", "scales_page")
VERDICT_ORDER = (verdicts.REPRODUCED, verdicts.NOT_REPRODUCED, verdicts.INCONCLUSIVE, verdicts.NOT_RUN)


def _clean(value):
    """JSON without NaN or infinities (a browser's JSON.parse refuses them): they become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _clean(value.item())
    return value


def group_counts(judged: list[dict]) -> dict[str, int]:
    return {v: sum(j["verdict"] == v for j in judged) for v in VERDICT_ORDER}


def sample_sizes(parts: list[dict]) -> str:
    """Seeds (or estimates) per group across the decisive parts: '3 v 3', '1-3 v 3', or '4' for one group."""
    ran = [p for p in parts if p["verdict"] != verdicts.NOT_RUN] or parts

    def span(key: str) -> str:
        values = sorted({int(p[key]) for p in ran if p.get(key) is not None})
        return "" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}\u2013{values[-1]}"

    a, b = span("n_a"), span("n_b")
    return f"{a} v {b}" if a and b else a or "0"


def judge(paper: dict, tables: dict, scale: str, check: dict, results_root: str,
          job_logs: list[list[str]] | None = None) -> dict:
    """Everything the report shows of the claims at one scale, as plain data."""
    order = {name: i for i, name in enumerate(PAPER_ARTIFACTS)}
    own = {r["id"]: r for r in check.get("results", [])}
    claims = []
    for index, claim in enumerate(paper.get("claims", [])):
        judged = verdicts.judge_claim(claim, tables, scale, paper.get("readings"))
        claims.append({
            **judged, "index": index, "short": claim.get("short") or claim["sentence"],
            "artifact": judged["figure"], "artifact_name": display_name(judged["figure"]),
            "comparison": claim["comparison"], "n": sample_sizes(judged["parts"]),
            "effect": effects.effect(claim, judged, own.get(claim["id"])),
            "paper_values": {k: own[claim["id"]].get(k) for k in ("own", "reversed", "source", "expected", "why")}
            if claim["id"] in own else None,
            "runs": evidence.runs_used(claim, tables, results_root, job_logs or [], paper.get("readings")),
        })
    claims.sort(key=lambda c: (order.get(c["artifact"], len(order)), c["index"]))
    summary = {k: check.get(k) for k in ("passed", "claims", "reproduced", "rejected")}
    summary["exceptions"] = [{k: r.get(k) for k in ("id", "own", "expected", "why")} for r in check.get("exceptions", [])]
    summary["failures"] = [{k: r.get(k) for k in ("id", "own", "expected", "reversed", "problem")}
                           for r in check.get("failures", [])]
    return {"scale": scale, "claims": claims, "counts": group_counts(claims),
            "readings": verdicts.reading_summary(claims, paper.get("readings")), "paper_check": summary,
            "rules": verdicts.RULES,
            # beyond the paper: the later explanations' claims, counted apart (heavytail.report.explanations_section)
            "later_explanations": explanations_section.judge(paper, tables, scale)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or file)")
    parser.add_argument("--out", required=True, type=Path, help="verdicts.json (verdicts.csv is written beside it)")
    parser.add_argument("--tables", type=Path, help="aggregated tables (default results/<scale>/tables)")
    parser.add_argument("--paper", type=Path, default=verdicts.DEFAULT_PAPER, help="the paper's claims (YAML)")
    parser.add_argument("--paper-check", type=Path, help="paper_check.json (default: run the check here)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cfg = resolve_job_config(load_job_config(args.config), "report", JOB_KEYS)
    scale = cfg["scale"]
    paper = verdicts.load_paper(args.paper)
    check = read_json(args.paper_check) if args.paper_check else paper_check.check(
        paper, paper_check.load_values(args.paper.with_name("paper_values.yaml")))
    tables = aggregate.read_tables(args.tables or Path("results") / scale / "tables")
    result = judge(paper, tables, scale, check, f"results/{scale}", cfg.get("job_logs"))
    write_json(args.out, _clean(result))
    with atomic_path(args.out.with_suffix(".csv")) as tmp:
        verdicts.verdict_table(result["claims"]).to_csv(tmp, index=False)
    for c in result["claims"]:
        print(f"claim {c['id']:48s} {c['label']}", flush=True)
    counts = ", ".join(f"{n} {v}" for v, n in result["counts"].items())
    print(f"{len(result['claims'])} claims at {scale} scale: {counts}; judged in "
          f"{time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
