"""The report's section on the later explanations, as plain data for reports/templates/explanations.html.j2.

The claims of reports/paper.yaml's `later_explanations` are judged by the paper's rules (heavytail.report.verdicts)
on results/<scale>/tables/sweep_claims.csv and imbalance_claims.csv, apart from the paper's own claims, by the
judge rule (`judge`, into verdicts.json); the render rule adds figures and tables (`section`). Each explanation is
supported (every claim it predicts came out as predicted), contradicted (one came out the other way) or undecided.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd

from heavytail.report import paper_check, verdicts
from heavytail.report.rules import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

OPPOSITE = {REPRODUCED: NOT_REPRODUCED, NOT_REPRODUCED: REPRODUCED}
FIGURES = ("batch_size_sweep", "class_imbalance")


def explanation_status(predicts: dict[str, str], judged: dict[str, dict]) -> tuple[str, list[dict]]:
    """(supported | contradicted | undecided, one line per predicted claim with its verdict and interval)."""
    lines = []
    for claim_id, expected in predicts.items():
        verdict = judged[claim_id]["verdict"] if claim_id in judged else NOT_RUN
        part = next((p for p in judged.get(claim_id, {}).get("parts", []) if p["verdict"] != NOT_RUN), {})
        lines.append({"claim": claim_id, "predicted": expected, "verdict": verdict, "as_predicted": verdict == expected,
                      "difference": part.get("difference"), "lo": part.get("lo"), "hi": part.get("hi"),
                      "n": (part.get("n_a"), part.get("n_b")), "note": part.get("note", "")})
    if any(line["verdict"] == OPPOSITE.get(line["predicted"]) for line in lines):
        return "contradicted", lines
    if lines and all(line["as_predicted"] for line in lines):
        return "supported", lines
    return "undecided", lines


def _copy_figures(artifacts: dict[str, str], out_dir: Path) -> list[dict]:
    shown = []
    for name in FIGURES:
        png = Path(artifacts.get(name, ""))
        if not artifacts.get(name) or not png.is_file():
            continue
        copied = {}
        for src in (png, png.with_suffix(".svg")):
            if src.is_file():
                dest = out_dir / "figures" / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                copied[src.suffix] = f"figures/{src.name}"
        shown.append({"name": name, "png": copied[".png"], "link": copied.get(".svg", copied[".png"])})
    return shown


def _mean_sd(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "–"
    return f"{values.mean():.4g}" + (f" ± {values.std(ddof=1):.2g}" if len(values) > 1 else "")


def sweep_table(sweep: pd.DataFrame) -> list[dict]:
    """Per batch size: every optimizer's final loss (mean ± sd over seeds), the noise, the grid-edge flags."""
    if sweep is None or sweep.empty:
        return []
    runs, noise = sweep[sweep["kind"] == "run"], sweep[sweep["kind"] == "noise"].set_index("batch_size")
    rows = []
    for batch in sorted(set(sweep["batch_size"].dropna().astype(int))):
        part = runs[runs["batch_size"] == batch]
        cells = {o: _mean_sd(g["loss"]) + (" (lr on the grid's edge)" if g["on_edge"].astype(str).eq("True").any()
                                            else "") for o, g in part.groupby("optimizer")}
        lrs = {o: f"{float(g['lr'].iloc[0]):g}" for o, g in part.groupby("optimizer")}
        entry = {"batch_size": batch, "loss": cells, "lr": lrs}
        if batch in noise.index:
            row = noise.loc[batch]
            entry["noise"] = (f"{float(row['relative_noise']):.3g}" if pd.notna(row.get("relative_noise")) else "–")
            alpha = pd.to_numeric(pd.Series([row.get("tail_index"), row.get("tail_index_lo"),
                                             row.get("tail_index_hi")]), errors="coerce")
            entry["tail_index"] = (f"{alpha[0]:.2f} [{alpha[1]:.2f}, {alpha[2]:.2f}]" if alpha.notna().all()
                                   else str(row.get("status", "–")))
        rows.append(entry)
    return rows


def progress_table(claims: pd.DataFrame) -> list[dict]:
    """The rarest group's share of the most frequent group's fall, per stage and optimizer (mean ± sd, runs)."""
    if claims is None or claims.empty:
        return []
    part = claims[claims["quantity"] == "rare_to_frequent_progress"]
    return [{"stage": stage, "optimizer": optimizer, "value": _mean_sd(g["value"]), "runs": len(g),
             "fall_rarest": _mean_sd(g.get("fall_rarest", pd.Series(dtype=float))),
             "fall_frequent": _mean_sd(g.get("fall_frequent", pd.Series(dtype=float)))}
            for (stage, optimizer), g in part.groupby(["stage", "optimizer"])]


def judge(paper: dict, tables: dict[str, pd.DataFrame], scale: str) -> dict | None:
    """The later explanations' verdicts, what each explanation comes to, and the rules' check on the values those
    papers report: heavytail.report.judge writes it into verdicts.json; None when paper.yaml has no such section."""
    later = paper.get("later_explanations")
    if not later:
        return None
    judged = [verdicts.judge_claim(claim, tables, scale) for claim in later["claims"]]
    by_id = {v["id"]: v for v in judged}
    summary = []
    for name, spec in (later.get("explanations") or {}).items():
        status, lines = explanation_status(spec["predicts"], by_id)
        summary.append({"name": name, "source": spec["source"], "status": status, "lines": lines})
    check = paper_check.check({"claims": later["claims"]}, later.get("reported_values") or {})
    return {"verdicts": judged, "summary": summary,
            "check": {k: check.get(k) for k in ("passed", "claims", "reproduced", "rejected")},
            "counts": {v: sum(j["verdict"] == v for j in judged)
                       for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)}}


def section(judged: dict | None, tables: dict[str, pd.DataFrame], out_dir: Path,
            artifacts: dict[str, str] | None = None) -> dict | None:
    """Everything the template's later-explanations section shows: verdicts.json's `later_explanations`, the
    figures copied beside the report and the tables; None without the section."""
    if not judged:
        return None
    sizes = tables.get("frequency_group_sizes", pd.DataFrame())
    return {**judged, "figures": _copy_figures(artifacts or {}, Path(out_dir)),
            "sweep": sweep_table(tables.get("batch_size_sweep")),
            "progress": progress_table(tables.get("imbalance_claims")),
            "group_sizes_html": None if sizes is None or sizes.empty else
            sizes.to_html(index=False, classes="data", float_format=lambda x: f"{x:.3g}")}


def fmt(value, digits: int = 3) -> str:
    """A number for the template: None and NaN as a dash."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(value) else f"{value:.{digits}g}"
