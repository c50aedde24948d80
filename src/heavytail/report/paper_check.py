"""The verdict rules fed the paper's own values (reports/paper_values.yaml): each must reproduce, and reject the reverse.

    python -m heavytail.report.paper_check --paper reports/paper.yaml --out reports/paper_check.json

A rule that cannot pass on the paper's own numbers, or that passes on their opposite, says nothing about a
reproduction. `check` runs every claim of paper.yaml twice, on the tables the paper's values make and on their
reversal (the two groups swapped; a level's values mirrored around it; a rate moved 3 tolerances slower; a
bound's values moved outside it); the report prints the result beside the verdicts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from heavytail.io import write_json
from heavytail.report.rules import NOT_REPRODUCED, REPRODUCED
from heavytail.report.verdicts import DEFAULT_PAPER, judge_claim, load_paper, select

DEFAULT_VALUES = DEFAULT_PAPER.with_name("paper_values.yaml")
TWO_GROUP_KINDS = ("seeds", "steps", "interval", "change")


def load_values(path: str | Path = DEFAULT_VALUES) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _unit_spread(n: int) -> np.ndarray:
    """n evenly spaced offsets with mean 0 and sample standard deviation 1."""
    z = np.arange(n) - (n - 1) / 2
    return z / z.std(ddof=1) if n > 1 else z


def table_runs(spec: dict) -> list[dict]:
    """Runs rows from one of paper.yaml's tables: a printed value is one run, mean ± std over n runs n seeds."""
    stage, count = spec["stage"][0], int(spec.get("runs", 1))
    as_fraction = set(spec.get("ours_as_fraction", []))
    rows = []
    for k, (optimizer, per_size) in enumerate(spec["rows"].items()):
        for size, values in zip(spec["sizes"], per_size, strict=True):
            cells = {m: v for m, v in values.items() if v is not None}
            n = count if any(isinstance(v, list) for v in cells.values()) else 1
            for i, z in enumerate(_unit_spread(n)):
                # distinct seeds per optimizer: the paper's runs are not paired
                row = {"stage": stage, "model": size, "optimizer": optimizer, "seed": 100 * k + i, "status": "ok"}
                for metric, value in cells.items():
                    mean, sd = value if isinstance(value, list) else (value, 0.0)
                    row[spec["columns"][metric]] = (mean + sd * z) * (0.01 if metric in as_fraction else 1.0)
                rows.append(row)
    return rows


def claim_tables(claim: dict, entry: dict, paper: dict) -> dict[str, pd.DataFrame]:
    """The table the claim reads, built from the paper's values for it."""
    comp = claim["comparison"]
    if "from" in entry:
        return {comp["table"]: pd.DataFrame(table_runs(paper[entry["from"]]))}
    defaults = entry.get("defaults") or {}
    metric = _metrics(comp)[0]
    rows = [{**defaults, **row} for row in entry.get("rows", [])]
    for optimizer, values in (entry.get("runs") or {}).items():
        rows += [{**defaults, "optimizer": optimizer, "seed": i, "status": "ok", metric: v}
                 for i, v in enumerate(values)]
    for optimizer, points in (entry.get("curves") or {}).items():
        rows += [{**defaults, "optimizer": optimizer, "seed": 0, "step": s, "value": v} for s, v in points]
    return {comp["table"]: pd.DataFrame(rows)}


def _metrics(comp: dict) -> list[str]:
    metric = comp.get("metric", "value")  # a steps claim reads curves.csv's value column
    return metric if isinstance(metric, list) else [metric]


def _interval_columns(comp: dict, metric: str) -> tuple[str, str]:
    return tuple(comp["interval"]) if comp.get("interval") else (f"{metric}_lo", f"{metric}_hi")


def reverse(claim: dict, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The opposite outcome of the same measurements (see the module docstring)."""
    comp = claim["comparison"]
    kind, name = comp.get("kind", "seeds"), comp["table"]
    frame = tables[name].copy()
    metrics = _metrics(comp)
    if kind in TWO_GROUP_KINDS:
        a_rows, b_rows = select(frame, comp.get("a")).index, select(frame, comp.get("b")).index
        if a_rows.empty or b_rows.empty:  # nothing to swap: the claim reads no rows of one group
            return tables
        keys = list(dict.fromkeys([*(comp.get("a") or {}), *(comp.get("b") or {})]))
        a_id, b_id = frame.loc[a_rows[0], keys].tolist(), frame.loc[b_rows[0], keys].tolist()
        frame.loc[a_rows, keys] = [b_id] * len(a_rows)
        frame.loc[b_rows, keys] = [a_id] * len(b_rows)
    elif kind == "level":
        for check in comp["checks"]:
            rows = select(frame, check.get("where")).index
            level = check["above"] if check.get("above") is not None else check["below"]
            # a level named by a column (the estimator's own Gaussian reference) mirrors each row about its value
            mirror = frame.loc[rows, level].to_numpy(dtype=float) if isinstance(level, str) else level
            for metric in metrics:
                lo, hi = _interval_columns(comp, metric)
                frame.loc[rows, metric] = 2 * mirror - frame.loc[rows, metric]
                if lo in frame.columns and hi in frame.columns:
                    frame.loc[rows, [lo, hi]] = (2 * np.reshape(mirror, (-1, 1)) - frame.loc[rows, [hi, lo]]).to_numpy()
    elif kind == "tolerance":
        shift = 3 * float(comp["tolerance"])
        for metric in metrics:
            for column in (metric, *_interval_columns(comp, metric)):
                if column in frame.columns:
                    frame[column] = frame[column] + shift
    elif kind == "bound":
        frame[metrics] = comp["upper"] + (comp["upper"] - comp["lower"])
    return {**tables, name: frame}


def check(paper: dict, values: dict) -> dict:
    """Every claim on the paper's values (must give `expect`, default reproduced) and on their reversal."""
    results = []
    for claim in paper.get("claims", []):
        entry = values.get(claim["id"])
        if not entry:
            results.append({"id": claim["id"], "ok": False, "problem": "no entry in paper_values.yaml"})
            continue
        tables = claim_tables(claim, entry, paper)
        judged = judge_claim(claim, tables, "paper values", paper.get("readings"))
        own = judged["verdict"]
        opposite = judge_claim(claim, reverse(claim, tables), "paper values", paper.get("readings"))["verdict"]
        expected = entry.get("expect", REPRODUCED)
        results.append({"id": claim["id"], "own": own, "reversed": opposite, "expected": expected,
                        "why": " ".join(str(entry.get("why", "")).split()),
                        "source": entry.get("synthetic") and f"synthetic: {entry['synthetic']}"
                        or entry.get("source") or f"paper.yaml {entry.get('from')}",
                        # the paper's own effect, in our units; a synthetic entry shows a direction, not a size
                        "synthetic": bool(entry.get("synthetic")), "parts": judged["parts"],
                        "ok": own == expected and opposite == NOT_REPRODUCED})
    return {"passed": bool(results) and all(r["ok"] for r in results), "claims": len(results),
            "reproduced": sum(r.get("own") == REPRODUCED for r in results),
            "rejected": sum(r.get("reversed") == NOT_REPRODUCED for r in results),
            "exceptions": [r for r in results if r.get("expected", REPRODUCED) != REPRODUCED],
            "failures": [r for r in results if not r["ok"]], "results": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", type=Path, default=DEFAULT_PAPER, help="the paper's claims (paper.yaml)")
    parser.add_argument("--values", type=Path, help="the paper's values (default: paper_values.yaml beside it)")
    parser.add_argument("--out", required=True, type=Path, help="the check's JSON")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = check(load_paper(args.paper), load_values(args.values or args.paper.with_name("paper_values.yaml")))
    write_json(args.out, result)
    for r in result["results"]:
        print(f"claim {r['id']:48s} paper values: {r.get('own', '?'):15s} reversed: {r.get('reversed', '?')}")
    print(f"rules on the paper's own values: {'pass' if result['passed'] else 'FAIL'} ({result['reproduced']} of "
          f"{result['claims']} reproduced, {result['rejected']} reversed rejected) in "
          f"{time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
