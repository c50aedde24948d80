"""The report's sections as plain data for the template: the paper's tables beside ours, tuning, bench."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from heavytail.io import read_json
from heavytail.report.selection import select

OPTIMIZER_ALIASES = {"adam": ("adam", "adamw"), "adam_devlin2018": ()}


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text))]


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, list | tuple):
        return f"{value[0]:.{digits}g} ± {value[1]:.2g}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _paper_mean(value):
    return value[0] if isinstance(value, list | tuple) else value


def same_units(values, paper: float | None, metric: str):
    """Accuracies in the paper's units: ours as a fraction where the paper gives percent, and vice versa."""
    if "loss" in metric or paper is None or not len(values):
        return values
    if paper > 1.5 and values.max() <= 1.0:
        return values * 100.0
    if paper <= 1.0 and values.min() > 1.5:
        return values / 100.0
    return values


def ordered_models(runs: pd.DataFrame) -> list[str]:
    """Our model names in depth order (num_layers where recorded, else the names' natural order)."""
    if runs.empty:
        return []
    depth = runs.groupby("model")["num_layers"].first() if "num_layers" in runs.columns else pd.Series(dtype=float)
    return sorted(runs["model"].astype(str).unique(), key=lambda m: (_depth_key(depth, m), _natural(m)))


def _depth_key(depth: pd.Series, model: str) -> float:
    value = pd.to_numeric(depth.get(model), errors="coerce") if model in depth.index else float("nan")
    return float(value) if pd.notna(value) else float("inf")


def paper_comparison(spec: dict, runs: pd.DataFrame, readings: dict | None = None) -> dict:
    """One paper table (table2, table3, appendix_i) beside our runs: per optimizer and size, paper, ours, delta.

    Our models are matched to the paper's sizes by depth order (the smallest of ours stands for the paper's
    smallest); `note` says when the counts differ. A paper row the spec lists under `readings` (ACClip in Tables
    2 and 3) gets one row per reading, each beside the paper's numbers and labelled with the reading it ran.
    """
    stage_runs = runs[runs["stage"].astype(str).isin(spec["stage"])] if not runs.empty else runs
    if spec.get("models"):  # Appendix I is ResNet50 only: the vision stage also trains AlexNet
        stage_runs = select(stage_runs, {"model": spec["models"]})
    readings = {name: options for name, options in (readings or {}).items() if name in spec.get("readings", [])}
    models = ordered_models(stage_runs)
    sizes = spec["sizes"]
    mapping = dict(zip(sizes, models, strict=False))
    note = ""
    if models and len(models) != len(sizes):
        note = f"we ran {len(models)} model size(s) ({', '.join(models)}) for the paper's {len(sizes)}"
    rows = []
    shown = []
    for optimizer, per_size in spec["rows"].items():
        options = (readings or {}).get(optimizer)
        for label, description in (options or {optimizer: ""}).items():
            names = (label,) if options else OPTIMIZER_ALIASES.get(optimizer, (optimizer,))
            shown.append((label, names, description, per_size))
    for size_index, size in enumerate(sizes):  # grouped by size: the paper's rows side by side
        for label, names, description, per_size in shown:
            paper_values = per_size[size_index]
            model = mapping.get(size)
            ours = stage_runs[(stage_runs["model"].astype(str) == model)
                              & stage_runs["optimizer"].astype(str).isin(names)] if model else stage_runs.iloc[0:0]
            finished = ours[ours["status"].astype(str) == "ok"] if "status" in ours.columns else ours
            cells = []
            for metric, column in spec["columns"].items():
                paper = paper_values.get(metric)
                values = pd.to_numeric(finished[column], errors="coerce").dropna() if column in finished else []
                values = same_units(values, _paper_mean(paper), metric)
                mean = float(values.mean()) if len(values) else None
                std = round(float(values.std(ddof=1)), 10) if len(values) > 1 else None
                delta = mean - _paper_mean(paper) if mean is not None and paper is not None else None
                cells.append({"metric": metric, "paper": _fmt(paper),
                              "ours": _fmt(mean) + (f" ± {std:.2g}" if std else ""), "delta": _fmt(delta, 3)})
            diverged = len(ours) - len(finished)
            rows.append({"optimizer": label, "reading": description, "size": size, "our_model": model or "–",
                         "span": len(shown) if label == shown[0][0] else 0,
                         "n": len(finished), "diverged": diverged, "cells": cells,
                         "runs": f"{len(finished)}" + (f" + {diverged} diverged" if diverged else "")})
    return {"caption": spec["caption"], "artifact": spec.get("artifact", ""), "metrics": list(spec["columns"]),
            "rows": rows, "note": note}


def learning_checks(tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Did the models learn more than a trivial predictor? One line per stage that has one, from its table:
    pretraining against the context-free MLM floor (Table 2), SQuAD against its strongest trivial baseline
    (Table 3). A verdict resting on models that learned nothing says little about the optimizers."""
    checks = []
    table2 = tables.get("table2", pd.DataFrame())
    if not table2.empty and {"val_loss", "context_free_loss"} <= set(table2.columns):
        finished = table2.dropna(subset=["val_loss", "context_free_loss"])
        if len(finished):
            best = finished.loc[finished["val_loss"].idxmin()]
            margin = float(best["context_free_loss"] - best["val_loss"])
            checks.append({
                "stage": "BERT pretraining (Table 2)", "learned": margin > 0.05,
                "text": f"best final validation MLM loss {best['val_loss']:.3f} ({best['model']}, {best['optimizer']}) "
                        f"against the context-free floor {best['context_free_loss']:.3f} (the masked position's own "
                        f"token, which Devlin masking leaves visible 20 % of the time): {margin:+.3f} nats from "
                        f"context" + ("" if margin > 0.05 else "; these models learned word frequencies only")})
    table3 = tables.get("table3", pd.DataFrame())
    if not table3.empty and "method" in table3.columns:
        method = table3["method"].astype(str)
        is_baseline, is_control = method.str.startswith("baseline:"), method.str.endswith("(control)")
        ours = table3[~is_baseline & ~is_control & table3["runs"].notna()].dropna(subset=["exact_match_mean"])
        baselines = table3[is_baseline].dropna(subset=["exact_match_mean"])
        controls = table3[is_control].dropna(subset=["exact_match_mean"])
        if len(ours) and len(baselines):
            best = ours.loc[ours["exact_match_mean"].idxmax()]
            strongest = baselines.loc[baselines["exact_match_mean"].idxmax()]
            margin = float(best["exact_match_mean"] - strongest["exact_match_mean"])
            checks.append({
                "stage": "SQuAD fine-tuning (Table 3)", "learned": margin > 0,
                "text": f"best mean EM {best['exact_match_mean']:.1f} ({best['model']}, {best['method']}) against "
                        f"the strongest trivial baseline, {strongest['method'].removeprefix('baseline: ')}, at "
                        f"{strongest['exact_match_mean']:.1f} EM: {margin:+.1f} EM"
                        + ("" if margin > 0 else "; the fine-tuned models do not read beyond the answer type")})
        for _, control in controls.iterrows():  # what pretraining adds: the same fine-tuning, a random encoder
            pretrained = ours[ours["model"] == control["model"]]
            if len(pretrained):
                best = pretrained.loc[pretrained["exact_match_mean"].idxmax()]
                gain = float(best["exact_match_mean"] - control["exact_match_mean"])
                checks.append({
                    "stage": "SQuAD: what pretraining adds (Table 3)", "learned": gain > 0,
                    "text": f"mean EM {best['exact_match_mean']:.1f} ({best['model']}, {best['method']}) against "
                            f"{control['exact_match_mean']:.1f} for the same fine-tuning from a random encoder: "
                            f"{gain:+.1f} EM" + ("" if gain > 0 else "; pretraining did not transfer")})
    return checks


def diverged_runs(runs: pd.DataFrame) -> list[dict]:
    if runs.empty or "status" not in runs.columns:
        return []
    bad = runs[runs["status"].astype(str).isin(["diverged", "error"])]
    return [{"stage": r["stage"], "model": r["model"], "optimizer": r["optimizer"], "seed": r["seed"],
             "status": r["status"], "step": _fmt(r.get("diverged_at_step"))} for _, r in bad.iterrows()]


def tuning_choices(results_dir: Path) -> list[dict]:
    """Every choice.json under results/<scale>/<stage>/tune/: its chosen values and, if listed, the grid."""
    out = []
    for path in sorted(results_dir.glob("*/tune/**/choice.json")):
        choice = read_json(path)
        grids = {k: v for k, v in choice.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        scalars = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in choice.items()
                   if k not in grids}
        out.append({"name": str(path.parent.relative_to(results_dir)), "chosen": scalars,
                    "grids": {k: pd.DataFrame(v).to_html(index=False, classes="data", na_rep="–",
                                                         float_format=lambda x: f"{x:.4g}")
                              for k, v in grids.items()}})
    return out


def frame_html(frame: pd.DataFrame, columns: list[str] | None = None) -> str | None:
    if frame is None or frame.empty:
        return None
    shown = frame[[c for c in (columns or frame.columns) if c in frame.columns]]
    return shown.to_html(index=False, classes="data", na_rep="–", float_format=lambda x: f"{x:.4g}")


def bench_sections(bench: pd.DataFrame) -> list[dict]:
    """One table of scalar results per results/bench/*.json file."""
    if bench is None or bench.empty:
        return []
    return [{"file": name, "html": frame_html(group[["key", "value"]])} for name, group in bench.groupby("file")]


# Table 1's experiments, in the paper's order, with the result each row checks
TABLE1_EXPERIMENTS = {
    "strongly_convex": "strongly convex (Thms 1, 3)", "nonconvex": "non-convex (Thm 2)",
    "lower_bound": "lower bound (Thm 4)", "dimension": "exponent of d (Cor 1, Thm 3)",
}


def table1_comparison(theory: pd.DataFrame | None) -> dict | None:
    """Table 1's rates beside ours: per experiment, method, threshold and noise, the paper's exponent of k (or d),
    our fitted slope and the difference, one column group per tail index alpha."""
    if theory is None or theory.empty or "experiment" not in theory.columns:
        return None
    frame = theory[theory["experiment"].isin(TABLE1_EXPERIMENTS)].copy()
    if frame.empty:
        return None
    frame["alpha"] = pd.to_numeric(frame["alpha"], errors="coerce")
    alphas = sorted(frame["alpha"].dropna().unique())
    keys = ["experiment", "method", "threshold", "noise"]
    frame[keys] = frame[keys].astype(object).where(frame[keys].notna(), "")
    frame["order"] = frame["experiment"].map(list(TABLE1_EXPERIMENTS).index)
    rows = []
    for key, group in frame.sort_values("order", kind="stable").groupby(keys, sort=False):
        by_alpha = {float(r["alpha"]): r for _, r in group.iterrows()}
        cells = []
        for alpha in alphas:
            r = by_alpha.get(float(alpha))
            ours = pd.to_numeric(r["measured_slope"], errors="coerce") if r is not None else None
            paper = pd.to_numeric(r["theory_slope"], errors="coerce") if r is not None else None
            cells.append({"paper": "N/A" if r is not None and pd.isna(paper) else _fmt(paper, 3),
                          "ours": _fmt(ours, 3),
                          "delta": _fmt(ours - paper, 2) if r is not None and pd.notna(paper) and pd.notna(ours)
                          else "–"})
        experiment, method, threshold, noise = key
        rows.append({"experiment": TABLE1_EXPERIMENTS[experiment], "method": method,
                     "threshold": threshold or "–", "noise": noise or "–", "cells": cells, "span": 0})
    for row in rows:  # the experiment's name once, spanning its rows
        first = next(r for r in rows if r["experiment"] == row["experiment"])
        first["span"] += 1
    return {"alphas": [f"{a:g}" for a in alphas], "rows": rows}
