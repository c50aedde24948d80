"""Collect every result file of one scale into tidy CSV tables (one per experiment). Reads files; never trains.

    python -m heavytail.report.aggregate --config <json> --out results/<scale>/tables/

Tables (always written, with their columns, even when an experiment has not run yet):
  runs.csv       one row per training run: stage, model, optimizer, seed, status, final validation metrics, cost
  curves.csv     every metrics row of every run (train and validation), long format
  tuning.csv     every tuning run under results/<scale>/<stage>/tune/, with its final validation metrics
  noise.csv      one row per noise measurement summary (mean, std, quantiles, tail index and its interval)
  theory.csv     the theory stage's table1.csv rows;  adam_clipping.csv: the section 3.1 grid check
  bench.csv      every numeric leaf of results/bench/*.json, long format
  jobs.csv       one row per Snakemake benchmark TSV under benchmarks/<scale>/ (wall time, peak memory)
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from heavytail.config import load_job_config, resolve_job_config
from heavytail.io import atomic_path, read_json, read_jsonl

RUN_KEYS = ["stage", "model", "optimizer", "seed", "status", "diverged_at_step", "steps", "num_layers",
            "wall_time_s", "peak_rss_mb", "git_commit", "path"]
CURVE_KEYS = ["stage", "model", "optimizer", "seed", "split", "step", "metric", "value"]
TUNING_KEYS = ["stage", "optimizer", "setting", "status", "diverged_at_step", "lr", "path"]
NOISE_KEYS = ["model", "data", "step", "batch_size", "group", "mean", "std", "tail_index", "tail_index_lo",
              "tail_index_hi", "path"]
THEORY_KEYS = ["experiment", "method", "noise", "alpha", "threshold", "measured_slope", "slope_lo", "slope_hi",
               "theory_slope", "verdict", "path"]
ADAM_KEYS = ["ratio_min", "ratio_max", "grid_points", "path"]
BENCH_KEYS = ["file", "key", "value"]
JOB_KEYS = ["job", "stage", "s", "max_rss", "max_uss", "cpu_time", "mean_load", "path"]
VALIDATION_SPLITS = ("validation", "val", "eval", "dev")
# metric names other stages may use for the same quantity -> the name the report uses. mlm_loss is not an alias
# of loss: with NSP on, loss = MLM + NSP, and the report compares the MLM loss (Table 2's "Val. loss").
METRIC_ALIASES = {"em": "exact_match", "acc": "accuracy", "top1_accuracy": "top1", "top5_accuracy": "top5",
                  "mlm_acc": "mlm_accuracy", "val_loss": "loss"}
COMPARED_LOSS = ("mlm_loss", "loss")  # final_val_loss: the first of these a validation row has
SEED_DIR = re.compile(r"seed(\d+)$")


def _table(rows: list[dict], keys: list[str]) -> pd.DataFrame:
    """A frame with the fixed leading columns (present even when empty), then any extra columns found."""
    frame = pd.DataFrame(rows)
    for key in keys:
        if key not in frame.columns:
            frame[key] = pd.Series(dtype="object")
    return frame[keys + sorted(c for c in frame.columns if c not in keys)]


def find_key(tree, names: tuple[str, ...]):
    """The first value of any of `names` found depth-first in a nested dict (config layouts differ per stage)."""
    if isinstance(tree, dict):
        for name in names:
            if name in tree and not isinstance(tree[name], dict | list):
                return tree[name]
        for value in tree.values():
            found = find_key(value, names)
            if found is not None:
                return found
    return None


def _status_of(run_dir: Path, rows: list[dict]) -> tuple[str, int | None, dict]:
    """Status from run.json, result.json and the metrics' own status row; 'diverged' wins over 'ok'."""
    run = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    result = read_json(run_dir / "result.json") if (run_dir / "result.json").is_file() else {}
    status_rows = [r for r in rows if r.get("split") == "status"]
    candidates = [run.get("status"), result.get("status")] + [r.get("status") for r in status_rows]
    diverged_at = next((d.get("diverged_at_step") for d in [run, result, *status_rows]
                        if d.get("diverged_at_step") is not None), None)
    if "diverged" in candidates or diverged_at is not None:
        status = "diverged"
    elif "error" in candidates:
        status = "error"
    else:
        status = next((c for c in candidates if c), "unknown")
    return status, diverged_at, run


def _metric_name(name: str) -> str:
    return METRIC_ALIASES.get(name, name)


def final_validation(rows: list[dict]) -> dict:
    """The last validation row's metrics, named final_<metric>.

    final_val_loss is the MLM loss where the row has one (pretraining), else the loss; a pretraining row's
    total loss (MLM + NSP with NSP on) stays beside it as final_total_loss.
    """
    validation = [r for r in rows if r.get("split") in VALIDATION_SPLITS]
    if not validation:
        return {}
    last = validation[-1]
    out = {"final_step": last.get("step")}
    metrics = {}
    for key, value in last.items():
        if key in ("split", "step") or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        metrics[_metric_name(key)] = value
    compared = next((name for name in COMPARED_LOSS if name in metrics), None)
    for name, value in metrics.items():
        if name == compared:
            out["final_val_loss"] = value
        elif name == "loss":
            out["final_total_loss"] = value
        else:
            out[f"final_{name}"] = value
    return out


def _run_identity(parts: tuple[str, ...]) -> dict | None:
    """stage/model/optimizer/seedN relative to results/<scale>; None for paths of another shape."""
    if len(parts) < 4 or not SEED_DIR.match(parts[-1]) or "tune" in parts:
        return None
    return {"stage": parts[0], "model": "/".join(parts[1:-2]), "optimizer": parts[-2],
            "seed": int(SEED_DIR.match(parts[-1]).group(1))}


def collect_runs(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs.csv and curves.csv from every metrics.jsonl under results/<scale>/<stage>/<model>/<optimizer>/seedN."""
    runs, curves = [], []
    for metrics_path in sorted(results_dir.rglob("metrics.jsonl")):
        run_dir = metrics_path.parent
        ident = _run_identity(run_dir.relative_to(results_dir).parts)
        if ident is None:
            continue
        rows = read_jsonl(metrics_path)
        status, diverged_at, run = _status_of(run_dir, rows)
        config = run.get("config") or (read_json(run_dir / "resolved_config.json")
                                       if (run_dir / "resolved_config.json").is_file() else {})
        steps = [r.get("step") for r in rows if isinstance(r.get("step"), int | float)]
        runs.append({**ident, "status": status, "diverged_at_step": diverged_at,
                     "steps": max(steps) if steps else None,
                     "num_layers": find_key(config, ("num_layers", "num_hidden_layers", "layers", "depth")),
                     "wall_time_s": run.get("wall_time_s"), "peak_rss_mb": run.get("peak_rss_mb"),
                     "git_commit": run.get("git_commit"), "path": str(run_dir),
                     # a diverged run has no final metrics: its last evaluation predates the divergence
                     **(final_validation(rows) if status not in ("diverged", "error") else {})})
        for row in rows:
            if row.get("split") == "status":
                continue
            for key, value in row.items():
                if key in ("split", "step") or not isinstance(value, int | float) or isinstance(value, bool):
                    continue
                curves.append({**ident, "split": "validation" if row.get("split") in VALIDATION_SPLITS
                               else row.get("split"), "step": row.get("step"), "metric": _metric_name(key),
                               "value": value})
    return _table(runs, RUN_KEYS), _table(curves, CURVE_KEYS)


def collect_tuning(results_dir: Path) -> pd.DataFrame:
    """Every run under a `tune` folder: its setting (the folder names below tune/) and final metrics."""
    rows = []
    for metrics_path in sorted(results_dir.rglob("tune/**/metrics.jsonl")):
        run_dir = metrics_path.parent
        parts = run_dir.relative_to(results_dir).parts
        below = parts[parts.index("tune") + 1:]
        metrics = read_jsonl(metrics_path)
        status, diverged_at, run = _status_of(run_dir, metrics)
        config = run.get("config") or {}
        rows.append({"stage": parts[0], "optimizer": below[0] if below else "?", "setting": "/".join(below[1:]),
                     "status": status, "diverged_at_step": diverged_at,
                     "lr": find_key(config, ("lr",)), "path": str(run_dir), **final_validation(metrics)})
    return _table(rows, TUNING_KEYS)


def _flat_noise(summary: dict) -> dict:
    """One noise summary JSON -> one flat row; accepts tail_index as a number, [a, lo, hi] or {alpha, lo, hi}."""
    row = {}
    for key, value in summary.items():
        if key == "tail_index" and isinstance(value, dict):
            row["tail_index"] = value.get("alpha", value.get("value"))
            row["tail_index_lo"], row["tail_index_hi"] = value.get("lo"), value.get("hi")
        elif key == "tail_index" and isinstance(value, list | tuple) and len(value) == 3:
            row["tail_index"], row["tail_index_lo"], row["tail_index_hi"] = value
        elif key in ("interval", "tail_index_interval") and isinstance(value, list | tuple) and len(value) == 2:
            row["tail_index_lo"], row["tail_index_hi"] = value
        elif key == "quantiles" and isinstance(value, dict):
            row.update({f"q{k}": v for k, v in value.items()})
        elif not isinstance(value, dict | list):
            row[key] = value
    return row


def collect_noise(results_dir: Path) -> pd.DataFrame:
    """Every noise summary (`summary.json` or `*summary*.json` under results/<scale>/noise/)."""
    noise_dir = results_dir / "noise"
    rows = []
    for path in sorted(noise_dir.rglob("*summary*.json")) if noise_dir.exists() else []:
        payload = read_json(path)
        for summary in payload if isinstance(payload, list) else payload.get("rows", [payload]):
            rows.append({"path": str(path), **_flat_noise(summary)})
    return _table(rows, NOISE_KEYS)


def collect_theory(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """theory.csv from every table1.csv of the theory stage; adam_clipping.csv from theory_data.json."""
    theory_dir = results_dir / "theory"
    tables, adam = [], []
    for path in sorted(theory_dir.rglob("table1.csv")) if theory_dir.exists() else []:
        tables.append(pd.read_csv(path).assign(path=str(path)))
    for path in sorted(theory_dir.rglob("theory_data.json")) if theory_dir.exists() else []:
        check = read_json(path).get("adam_clipping", {})
        adam.append({"path": str(path), **{k: v for k, v in check.items() if isinstance(v, int | float | str)}})
    theory = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return _table(theory.to_dict("records"), THEORY_KEYS), _table(adam, ADAM_KEYS)


def _leaves(tree, prefix: str = ""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _leaves(value, f"{prefix}[{i}]")
    elif isinstance(tree, int | float | str) and not isinstance(tree, bool):
        yield prefix, tree


def collect_bench(bench_dir: Path) -> pd.DataFrame:
    """Every scalar of every results/bench/*.json, keyed by its dotted path."""
    rows = []
    for path in sorted(bench_dir.glob("*.json")) if bench_dir.exists() else []:
        rows += [{"file": path.name, "key": k, "value": v} for k, v in _leaves(read_json(path))]
    return _table(rows, BENCH_KEYS)


def collect_jobs(benchmarks_dir: Path) -> pd.DataFrame:
    """Snakemake `benchmark:` TSVs (s, max_rss in MB, cpu_time, ...); the last repeat of each job."""
    rows = []
    for path in sorted(benchmarks_dir.rglob("*.tsv")) if benchmarks_dir.exists() else []:
        frame = pd.read_csv(path, sep="\t")
        if frame.empty:
            continue
        rel = path.relative_to(benchmarks_dir).with_suffix("")
        record = {k: v for k, v in frame.iloc[-1].to_dict().items() if k != "h:m:s"}
        rows.append({"job": str(rel), "stage": rel.parts[0] if len(rel.parts) > 1 else "", "path": str(path),
                     **record})
    return _table(rows, JOB_KEYS)


def aggregate(results_dir: Path, bench_dir: Path, benchmarks_dir: Path) -> dict[str, pd.DataFrame]:
    """Every table of one scale, by name (the CSV file stem)."""
    runs, curves = collect_runs(results_dir)
    theory, adam = collect_theory(results_dir)
    return {"runs": runs, "curves": curves, "tuning": collect_tuning(results_dir),
            "noise": collect_noise(results_dir), "theory": theory, "adam_clipping": adam,
            "bench": collect_bench(bench_dir), "jobs": collect_jobs(benchmarks_dir)}


def write_tables(tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        with atomic_path(out_dir / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)


def read_tables(tables_dir: Path) -> dict[str, pd.DataFrame]:
    """The aggregated tables back from CSV; a missing or empty file reads as an empty frame."""
    tables = {}
    for path in sorted(Path(tables_dir).glob("*.csv")):
        try:
            tables[path.stem] = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            tables[path.stem] = pd.DataFrame()
    return tables


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or file)")
    parser.add_argument("--out", required=True, type=Path, help="the tables folder, results/<scale>/tables/")
    parser.add_argument("--results", type=Path, help="results of the scale (default results/<scale>)")
    parser.add_argument("--bench", type=Path, default=Path("results/bench"), help="benchmark JSON folder")
    parser.add_argument("--benchmarks", type=Path, help="Snakemake benchmark TSVs (default benchmarks/<scale>)")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "report", ("artifacts",))
    scale = cfg["scale"]
    tables = aggregate(args.results or Path("results") / scale, args.bench,
                       args.benchmarks or Path("benchmarks") / scale)
    write_tables(tables, args.out)
    for name, frame in tables.items():
        print(f"table {name:14s} rows {len(frame):6d}", flush=True)


if __name__ == "__main__":
    main()
