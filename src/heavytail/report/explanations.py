"""The later explanations' result files as tables: the batch-size sweep, the loss by frequency group, the claim rows.

    python -m heavytail.report.explanations --config <json> --out results/<scale>/tables/

Reads files; never trains. Tables (always written, with their columns, even before a run exists):
  batch_size_sweep.csv       kind run: one row per (optimizer, batch size, seed) final run (lr chosen on seed 0,
                             widened grid, on_edge flag, final loss on the whole subset); kind noise: one row per
                             batch size (noise norm, its spread, tail index with interval; zero at the full batch)
  frequency_groups.csv       every logged group loss: source (pretrain, linear_softmax, vision), run, split, step
  frequency_group_sizes.csv  each group's classes and share of the training examples (tokens; image classes)
  sweep_claims.csv,          the rows reports/paper.yaml's later-explanation claims read: quantity, point, stage,
  imbalance_claims.csv       optimizer, seed, value (heavytail.report.explanations_section judges them)
The config's `explanations` says which part (sweep or imbalance) to build and from which files.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from heavytail.config import load_job_config, resolve_job_config
from heavytail.data.frequency import frequency_groups, group_losses, group_table, token_counts
from heavytail.io import atomic_path, read_json, read_jsonl

SWEEP_KEYS = ["kind", "optimizer", "batch_size", "seed", "lr", "status", "loss", "on_edge", "widened", "grid"]
GROUP_KEYS = ["source", "model", "optimizer", "seed", "split", "step", "group", "loss"]
SIZE_KEYS = ["source", "group", "classes", "share", "min_count", "max_count"]
CLAIM_KEYS = ["quantity", "point", "stage", "model", "optimizer", "seed", "batch_size", "value", "status"]
RUN_PATH = re.compile(r"(?P<stage>pretrain|vision)/(?P<model>[^/]+)/(?P<optimizer>[^/]+)/seed(?P<seed>\d+)/metrics\.jsonl$")


def _frame(rows: list[dict], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for key in keys:
        if key not in frame.columns:
            frame[key] = pd.Series(dtype="object")
    return frame[keys + sorted(c for c in frame.columns if c not in keys)]


# --- the batch-size sweep -----------------------------------------------------------------------------------------
def sweep_rows(choices: list[str], noise_summaries: list[str], batch_sizes: list[int]) -> list[dict]:
    """Final runs of every finished cell, then the noise at every batch size (the full batch: zero noise)."""
    rows = []
    for path in map(Path, choices):
        if not path.is_file():
            continue
        choice = read_json(path)
        for run in choice["runs"]:
            rows.append({"kind": "run", "optimizer": choice["optimizer"], "batch_size": int(choice["batch_size"]),
                         "seed": int(run["seed"]), "lr": choice["hparams"]["lr"], "status": run["status"],
                         "loss": run["loss"] if run["loss"] is not None else math.nan, "on_edge": choice["on_edge"],
                         "widened": " ".join(f"{w['lr']:g}" for w in choice["widened"]),
                         "grid": " ".join(f"{x:g}" for x in choice["grid"])})
    measured = set()
    for path in map(Path, noise_summaries):
        if not path.is_file():
            continue
        summary = read_json(path)
        overall, meta = summary["overall"], summary["metadata"]
        block = overall.get("tail_index_block_sums") or {}
        gaussian = overall.get("tail_index_block_sums_gaussian") or {}
        median = overall["quantiles"]["0.5"]
        measured.add(int(meta["batch_size"]))
        rows.append({"kind": "noise", "batch_size": int(meta["batch_size"]), "status": "ok",
                     "noise_norm": overall["mean"], "gradient_norm": overall["mean_gradient_norm"],
                     "relative_noise": overall["mean"] / overall["mean_gradient_norm"],
                     "q99_over_median": overall["quantiles"]["0.99"] / median if median > 0 else math.nan,
                     "tail_index": block.get("alpha"), "tail_index_lo": block.get("lo"),
                     "tail_index_hi": block.get("hi"), "gaussian_tail_index": gaussian.get("alpha"),
                     "gaussian_tail_index_lo": gaussian.get("lo"), "gaussian_tail_index_hi": gaussian.get("hi"),
                     "n_samples": meta.get("n_samples")})
    if batch_sizes and measured:
        rows.append({"kind": "noise", "batch_size": int(batch_sizes[-1]), "status": "zero by construction",
                     "noise_norm": 0.0, "relative_noise": 0.0})
    return rows


# --- the loss by frequency group ----------------------------------------------------------------------------------
def _identity(path: Path) -> dict | None:
    match = RUN_PATH.search(path.as_posix())
    if not match:
        return None
    return {"source": match["stage"], "model": match["model"], "optimizer": match["optimizer"],
            "seed": int(match["seed"])}


def linear_runs(choices: list[str]) -> list[tuple[dict, Path]]:
    """(identity, metrics.jsonl) of each final run of the linear softmax model."""
    out = []
    for path in map(Path, choices):
        if path.is_file():
            choice = read_json(path)
            for run in choice["runs"]:
                out.append(({"source": "linear_softmax", "model": "linear_softmax", "optimizer": choice["optimizer"],
                             "seed": int(run["seed"])}, Path(run["path"]) / "metrics.jsonl"))
    return out


def group_rows(runs: list[tuple[dict, Path]]) -> list[dict]:
    """Every group loss a run logged, training rows and validation rows alike."""
    rows = []
    for ident, path in runs:
        if not path.is_file():
            continue
        for row in read_jsonl(path):
            if row.get("split") not in ("train", "validation"):
                continue
            for group, loss in group_losses(row).items():
                rows.append({**ident, "split": row["split"], "step": row["step"], "group": group, "loss": loss})
    return rows


def size_rows(mlm_data: str, manifest: str, n_groups: int) -> list[dict]:
    """The groups' composition: tokens of the MLM data and classes of the image manifest."""
    rows = []
    if n_groups and (Path(mlm_data) / "unigram_counts.npy").is_file():
        counts = token_counts(mlm_data)
        rows += [{"source": "text", **r} for r in group_table(counts, frequency_groups(counts, n_groups))]
    if n_groups and Path(manifest).is_file():
        images = read_json(manifest)
        counts = np.array([images["counts"]["train"].get(name, 0) for name in images["classes"]], dtype=float)
        rows += [{"source": "images", **r} for r in group_table(counts, frequency_groups(counts, n_groups))]
    return rows


def progress(groups: pd.DataFrame) -> list[dict]:
    """Per run, on its validation rows from the first (init) to the last: how much the rarest group's loss fell,
    as a share of how much the most frequent group's fell (1: alike; 0: the rarest did not move)."""
    rows = []
    validation = groups[groups["split"] == "validation"]
    if validation.empty:
        return rows
    for keys, run in validation.groupby(["source", "model", "optimizer", "seed"]):
        first, last = run["step"].min(), run["step"].max()
        if first == last:
            continue
        start = run[run["step"] == first].set_index("group")["loss"]
        end = run[run["step"] == last].set_index("group")["loss"]
        frequent, rarest = int(start.index.min()), int(start.index.max())
        fall_frequent = float(start[frequent] - end[frequent])
        fall_rarest = float(start[rarest] - end[rarest])
        value = fall_rarest / fall_frequent if fall_frequent > 0 else math.nan
        base = dict(zip(["stage", "model", "optimizer", "seed"], keys, strict=True))
        rows.append({"quantity": "rare_to_frequent_progress", "point": f"step{int(last)}", **base, "value": value,
                     "status": "ok" if math.isfinite(value) else "no progress on the frequent group",
                     "fall_rarest": fall_rarest, "fall_frequent": fall_frequent})
    return rows


# --- the claim rows -----------------------------------------------------------------------------------------------
def sweep_claim_rows(sweep: pd.DataFrame, batch_sizes: list[int]) -> list[dict]:
    """Final training losses per (optimizer, batch size, seed) and the paired contrasts the sweep's claims test."""
    runs = sweep[sweep["kind"] == "run"] if not sweep.empty else sweep
    if runs.empty or not batch_sizes:
        return []
    default, full = int(batch_sizes[0]), int(batch_sizes[-1])

    def point(b: int) -> str:
        return "default_batch" if b == default else "full_batch" if b == full else f"bs{b}"

    rows = [{"quantity": "final_train_loss", "point": point(int(r.batch_size)), "stage": "batch_size_sweep",
             "optimizer": r.optimizer, "seed": int(r.seed), "batch_size": int(r.batch_size), "value": r.loss,
             "status": r.status} for r in runs.itertuples()]
    loss = {(r.optimizer, int(r.batch_size), int(r.seed)): (r.loss if r.status == "ok" else math.nan)
            for r in runs.itertuples()}

    def paired(a: str, b: str, batch: int) -> dict[int, tuple[float, float]]:
        seeds = sorted({s for (o, bb, s) in loss if o == a and bb == batch} & {s for (o, bb, s) in loss
                                                                                  if o == b and bb == batch})
        return {s: (loss[(a, batch, s)], loss[(b, batch, s)]) for s in seeds}

    def add(quantity, name, batch, seed, value):
        rows.append({"quantity": quantity, "point": name, "stage": "batch_size_sweep", "seed": seed,
                     "batch_size": batch, "value": value, "status": "ok" if math.isfinite(value) else "diverged"})

    for batch in sorted({b for (_, b, _) in loss}):
        for seed, (sgdm, adam) in paired("sgdm", "adam", batch).items():
            add("sgdm_adam_gap", point(batch), batch, seed, sgdm - adam)
            if batch == default:  # the claim: the full-batch gap is at least half the default batch's
                add("sgdm_adam_gap", "half_gap_at_default_batch", batch, seed, 0.5 * (sgdm - adam))
    for seed, (sign, sgdm) in paired("sign_descent", "sgdm", full).items():
        adam = loss.get(("adam", full, seed), math.nan)
        add("sign_descent_vs_midpoint", "sign_descent", full, seed, sign)
        add("sign_descent_vs_midpoint", "sgdm_adam_midpoint", full, seed, 0.5 * (sgdm + adam))
    return rows


def aggregate(spec: dict) -> dict[str, pd.DataFrame]:
    """The tables of one part: `sweep` (the batch-size sweep) or `imbalance` (the loss by frequency group)."""
    if spec["part"] == "sweep":
        sweep = _frame(sweep_rows(spec["sweep_choices"], spec["noise_summaries"], spec["batch_sizes"]), SWEEP_KEYS)
        return {"batch_size_sweep": sweep, "sweep_claims": _frame(sweep_claim_rows(sweep, spec["batch_sizes"]),
                                                                  CLAIM_KEYS)}
    runs = [(ident, Path(p)) for p in spec["imbalance_runs"] if (ident := _identity(Path(p)))]
    groups = _frame(group_rows(runs + linear_runs(spec["linear_choices"])), GROUP_KEYS)
    return {"frequency_groups": groups,
            "frequency_group_sizes": _frame(size_rows(spec["mlm_data"], spec["manifest"], spec["groups"]), SIZE_KEYS),
            "imbalance_claims": _frame(progress(groups), CLAIM_KEYS)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or file)")
    parser.add_argument("--out", required=True, type=Path, help="the tables folder, results/<scale>/tables/")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "report", ("explanations",))
    tables = aggregate(cfg["explanations"])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        with atomic_path(args.out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        print(f"table {name:22s} rows {len(frame):6d}", flush=True)


if __name__ == "__main__":
    main()
