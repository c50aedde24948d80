"""Render the HTML report of one scale from the artifacts the DAG built (jinja2). Reads files; never trains.

    python -m heavytail.report.render --config <json> --out reports/<scale>/index.html
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import jinja2
import pandas as pd

from heavytail.config import REPO_ROOT, load_job_config
from heavytail.io import atomic_path, read_json
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
        entry = {"name": name, "title": title, "capability": capability, "built": name in artifacts,
                 "images": [], "table_html": None}
        if entry["built"]:
            built = Path(artifacts[name])
            for png in _figures_of(name, built):
                for src in (png, png.with_suffix(".svg")):
                    if src.exists():
                        dest = out_dir / "figures" / src.name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src, dest)
                entry["images"].append(f"figures/{png.name}")
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


def provenance_rows(results_dir: Path) -> list[dict]:
    """Every job's run.json under the scale's results: status, wall time, peak memory, commit."""
    rows = []
    for path in sorted(results_dir.rglob("run.json")):
        run = read_json(path)
        rows.append({
            "job": str(path.parent.relative_to(results_dir)) if path.parent != results_dir else ".",
            "status": run.get("status", "?"),
            "wall_time_s": run.get("wall_time_s"),
            "peak_rss_mb": run.get("peak_rss_mb"),
            "git_commit": str(run.get("git_commit", "?"))[:12],
            "hardware": run.get("hardware", {}).get("cpu", "?"),
        })
    return rows


def render(cfg: dict, out_path: Path) -> None:
    out_dir = out_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    results_dir = Path("results") / cfg["scale"]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(),
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("index.html.j2").render(
        scale=cfg["scale"],
        data_statement=data_statement(cfg["data"]),
        artifacts=artifact_entries(cfg.get("artifacts", {}), out_dir),
        provenance=provenance_rows(results_dir) if results_dir.exists() else [],
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(html)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or file)")
    parser.add_argument("--out", required=True, type=Path, help="the report's index.html")
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config)
    render(cfg, args.out)
    print(f"report written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
