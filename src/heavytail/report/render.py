"""Render the HTML report of one scale from the artifacts the DAG built (jinja2). Reads files; never trains.

    python -m heavytail.report.render --config <json> --out reports/<scale>/index.html
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import jinja2
import pandas as pd

from heavytail.config import REPO_ROOT, load_job_config
from heavytail.io import atomic_path
from heavytail.report import aggregate, sections, verdicts
from heavytail.report.artifacts import PAPER_ARTIFACTS

TEMPLATES = REPO_ROOT / "reports" / "templates"

DATA_DESCRIPTIONS = {
    "gensim_wiki": "text: the English Wikipedia excerpt shipped in the gensim wheel (about 100 articles)",
    "hf_wikipedia_bookcorpus": "text: English Wikipedia + BookCorpus through `datasets`",
    "fashion_mnist": "images: Fashion-MNIST laid out as an ImageFolder (stands in for ImageNet)",
    "imagenet": "images: ImageNet (ILSVRC-2012) from the user's folder",
    "generated_wiki": "QA: questions generated from held-out Wikipedia paragraphs (not SQuAD)",
    "squad_v1": "QA: SQuAD v1.1",
}


def data_statement(data_cfg: dict) -> list[str]:
    return [DATA_DESCRIPTIONS[data_cfg[kind]["source"]] for kind in ("text", "images", "qa")]


def artifact_entries(artifacts: dict[str, str], out_dir: Path) -> list[dict]:
    """One entry per paper artifact: its figure copied beside the report, its table as HTML, or 'pending'."""
    entries = []
    for name, (title, capability) in PAPER_ARTIFACTS.items():
        built_here = name in artifacts and Path(artifacts[name]).exists()
        entry = {"name": name, "title": title, "capability": capability, "built": built_here,
                 "figures": [], "table_html": None}
        if entry["built"]:
            built = Path(artifacts[name])
            for png in _figures_of(name, built):
                copied = {}
                for src in (png, png.with_suffix(".svg")):
                    if src.exists():
                        dest = out_dir / "figures" / src.name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src, dest)
                        copied[src.suffix] = f"figures/{src.name}"
                if ".png" in copied:
                    entry["figures"].append({"png": copied[".png"], "link": copied.get(".svg", copied[".png"])})
            if built.suffix == ".csv":
                entry["table_html"] = pd.read_csv(built).to_html(index=False, classes="data", na_rep="–",
                                                                 float_format=lambda x: f"{x:.4g}")
        entries.append(entry)
    return entries


def _figures_of(name: str, built: Path) -> list[Path]:
    if built.suffix == ".png":
        return [built]
    figure_dir = built.parent.parent / "figures"
    return sorted(figure_dir.glob(f"{name}.png")) + sorted(figure_dir.glob(f"{name}_*.png"))


def render(cfg: dict, out_path: Path, results_dir: Path | None = None, tables_dir: Path | None = None,
           paper_path: Path = verdicts.DEFAULT_PAPER) -> list[dict]:
    """Write the report of `cfg["scale"]` to `out_path` (figures copied beside it); returns the verdicts."""
    out_dir = out_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    scale = cfg["scale"]
    results_dir = results_dir or Path("results") / scale
    tables = aggregate.read_tables(tables_dir or results_dir / "tables")
    runs = tables.get("runs", pd.DataFrame())
    paper = verdicts.load_paper(paper_path)
    judged = verdicts.judge_all(paper, tables, scale)
    artifacts = artifact_entries(cfg.get("artifacts", {}), out_dir)
    comparisons = [sections.paper_comparison(paper[key], runs) for key in ("table2", "table3", "appendix_i")
                   if key in paper]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(),
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("index.html.j2").render(
        scale=scale,
        data_statement=data_statement(cfg["data"]),
        source=paper.get("source", ""),
        verdicts=judged,
        counts={v: sum(j["verdict"] == v for j in judged) for v in (verdicts.REPRODUCED, verdicts.NOT_REPRODUCED,
                                                                    verdicts.INCONCLUSIVE, verdicts.NOT_RUN)},
        rules=verdicts.RULES,
        artifacts=artifacts,
        comparisons={c["artifact"]: c for c in comparisons},
        diverged=sections.diverged_runs(runs),
        runs_html=sections.frame_html(runs, ["stage", "model", "optimizer", "seed", "status", "diverged_at_step",
                                             "final_val_loss", "final_mlm_accuracy", "final_exact_match",
                                             "final_f1", "final_top1", "wall_time_s", "peak_rss_mb"]),
        tuning=sections.tuning_choices(results_dir),
        tuning_html=sections.frame_html(tables.get("tuning")),
        bench=sections.bench_sections(tables.get("bench")),
        budget_html=sections.frame_html(tables.get("budget"), ["scale", "target", "runs", "steps_per_run",
                                                               "total_flops", "mfu", "mfu_source", "sizes_source",
                                                               "gpu_hours"]),
        provenance=sections.provenance(results_dir),
        jobs_html=sections.frame_html(tables.get("jobs"), ["job", "s", "max_rss", "max_uss", "cpu_time",
                                                          "mean_load"]),
        resolved_config=json.dumps(cfg, indent=2, sort_keys=True),
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(html)
    with atomic_path(out_dir / "verdicts.csv") as tmp:
        verdicts.verdict_table(judged).to_csv(tmp, index=False)
    return judged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or file)")
    parser.add_argument("--out", required=True, type=Path, help="the report's index.html")
    parser.add_argument("--results", type=Path, help="results of the scale (default results/<scale>)")
    parser.add_argument("--tables", type=Path, help="aggregated tables (default results/<scale>/tables)")
    parser.add_argument("--paper", type=Path, default=verdicts.DEFAULT_PAPER, help="the paper's numbers (YAML)")
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config)
    judged = render(cfg, args.out, args.results, args.tables, args.paper)
    for v in judged:
        print(f"claim {v['id']:48s} {v['label']}", flush=True)
    print(f"report written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
