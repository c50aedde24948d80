"""Table 3: SQuAD dev exact match and F1, mean ± std over seeds, Adam vs ACClip per model size.

    python -m heavytail.report.figures.squad --scores <scores.json ...> --paper reports/paper.yaml --out table3.csv

Reads the finetune_squad runs' scores.json files (never the report's aggregated tables). Rows: the original
BERT paper's numbers (Devlin et al. 2018, SQuAD v1.1 dev, their best of 10 runs), the trivial baselines of the
data actually used, each (model, optimizer) of ours and, where the experiment has one, the random-encoder
control (the same fine-tuning from an untrained encoder: what pretraining adds). The `data` column names the
data each row is on.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from heavytail.io import atomic_path, read_json

COLUMNS = ["method", "model", "data", "runs", "diverged", "exact_match_mean", "exact_match_std", "f1_mean",
           "f1_std", "exact_match", "f1"]
PAPER_METHOD = "adam (Devlin et al. 2018, BERT paper)"
PAPER_DATA = "SQuAD v1.1 dev"
CONTROL_METHOD = "{optimizer}, random encoder (control)"


def run_method(score: dict) -> str:
    """A run's Table 3 method: its optimizer label, or the control's."""
    return CONTROL_METHOD.format(optimizer=score["optimizer"]) if score.get("random_encoder") else score["optimizer"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    # sample std (ddof=1), as "mean ± std over 5 runs" is usually reported; 0 for a single run
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None or pd.isna(mean):
        return "n/a"
    return f"{mean:.2f}" if std is None or pd.isna(std) else f"{mean:.2f} ± {std:.2f}"


def paper_rows(paper_yaml: str | os.PathLike) -> list[dict]:
    """The BERT paper's numbers as rows of the table (sizes without a number are left out)."""
    spec = yaml.safe_load(Path(paper_yaml).read_text())["table3"]
    rows = []
    for size, numbers in zip(spec["sizes"], spec["rows"]["adam_devlin2018"], strict=True):
        if numbers.get("exact_match") is None:
            continue
        rows.append({"method": PAPER_METHOD, "model": size, "data": PAPER_DATA, "runs": None, "diverged": None,
                     "exact_match_mean": numbers["exact_match"], "exact_match_std": None,
                     "f1_mean": numbers["f1"], "f1_std": None})
    return rows


def table3(score_files: list[str | os.PathLike], paper_yaml: str | os.PathLike | None,
           out_csv: str | os.PathLike) -> pd.DataFrame:
    """Write table3.csv from the per-seed scores.json files; returns the frame."""
    scores = [read_json(path) for path in score_files]
    rows = paper_rows(paper_yaml) if paper_yaml else []
    models = list(dict.fromkeys(s["model"] for s in scores))
    for model in models:
        of_model = [s for s in scores if s["model"] == model]
        data = of_model[0]["data_description"]
        for name, baseline in of_model[0].get("baselines", {}).items():
            rows.append({"method": f"baseline: {name.replace('_', ' ')}", "model": model, "data": data,
                         "runs": None, "diverged": None, "exact_match_mean": baseline["exact_match"],
                         "exact_match_std": None, "f1_mean": baseline["f1"], "f1_std": None})
        for method in dict.fromkeys(run_method(s) for s in of_model):
            runs = [s for s in of_model if run_method(s) == method]
            ok = [s for s in runs if s["status"] == "ok"]
            row = {"method": method, "model": model, "data": data, "runs": len(ok),
                   "diverged": len(runs) - len(ok), "exact_match_mean": np.nan, "exact_match_std": np.nan,
                   "f1_mean": np.nan, "f1_std": np.nan}
            if ok:
                row["exact_match_mean"], row["exact_match_std"] = _mean_std([s["exact_match"] for s in ok])
                row["f1_mean"], row["f1_std"] = _mean_std([s["f1"] for s in ok])
            rows.append(row)
    frame = pd.DataFrame(rows)
    for key in COLUMNS:
        if key not in frame.columns:
            frame[key] = pd.Series(dtype="object")
    frame["exact_match"] = [_cell(m, s) for m, s in zip(frame["exact_match_mean"], frame["exact_match_std"],
                                                         strict=True)]
    frame["f1"] = [_cell(m, s) for m, s in zip(frame["f1_mean"], frame["f1_std"], strict=True)]
    frame = frame[COLUMNS]
    with atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Table 3 from the finetune_squad runs' scores.json files.")
    parser.add_argument("--scores", nargs="+", required=True, help="scores.json of every (model, optimizer, seed)")
    parser.add_argument("--paper", help="reports/paper.yaml (the BERT paper's row); omitted: no paper row")
    parser.add_argument("--out", required=True, help="table3.csv")
    args = parser.parse_args(argv)
    frame = table3(args.scores, args.paper, args.out)
    print(frame.drop(columns=["exact_match_mean", "exact_match_std", "f1_mean", "f1_std"]).to_string(index=False),
          flush=True)


if __name__ == "__main__":
    main()
