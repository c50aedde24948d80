"""Where one scale's numbers come from, compactly: commits, packages, data revisions, hardware, wall time per stage.

`summary` is the report's one table; `record` is the full per-job record it links to (provenance.json).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from heavytail.io import read_json

# where a source that has no Hub revision comes from
SHIPPED = {
    "gensim_wiki": "shipped in package gensim{version}: the Wikipedia excerpt of its test data (no download)",
    "fashion_mnist": "shipped in Debian package dataset-fashion-mnist (no download)",
    "train_wordpiece": "trained here on the corpus's train split (no download)",
    "generated_wiki": "generated here from the corpus by templates (no download)",
}


def _read(path: Path) -> dict:
    try:
        return read_json(path) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _hub(source: dict) -> str:
    """`path @ commit` of a resolved Hub source (a local folder: its path, and its commit where it has one)."""
    where = source.get("path") or "?"
    revision = source.get("revision")
    if source.get("local"):
        return f"local folder {where}" + (f" @ {revision}" if revision else " (not a git checkout)")
    return f"{where} @ {revision}" if revision else f"{where} (revision not recorded)"


def data_revisions(results_dir: Path, packages: dict[str, str]) -> list[dict]:
    """One line per data input: the resolved commit of each Hub source, or what ships it."""
    gensim = packages.get("gensim")
    rows = []
    corpus = _read(results_dir / "data" / "corpus" / "stats.json").get("source", {})
    kind = corpus.get("kind")
    if kind in SHIPPED:
        rows.append({"data": "text", "source": SHIPPED[kind].format(version=f" {gensim}" if gensim else "")})
    elif kind:
        for name in ("wikipedia", "bookcorpus"):
            if isinstance(corpus.get(name), dict):
                rows.append({"data": f"text: {name}", "source": _hub(corpus[name])})
    tokenizer = _read(results_dir / "data" / "tokenizer" / "tokenizer_stats.json")
    if tokenizer.get("kind") in SHIPPED:
        rows.append({"data": "tokenizer", "source": SHIPPED[tokenizer["kind"]]})
    elif tokenizer:
        rows.append({"data": "tokenizer", "source": _hub(tokenizer.get("source") or {})})
    images = _read(results_dir / "data" / "images" / "manifest.json").get("source", {})
    if images.get("kind") in SHIPPED:
        rows.append({"data": "images", "source": SHIPPED[images["kind"]]})
    elif images:
        rows.append({"data": "images", "source": f"the user's folder {images.get('dir', '?')} (no revision)"})
    qa = _read(results_dir / "data" / "qa" / "stats.json").get("source", {})
    if qa.get("kind") in SHIPPED:
        rows.append({"data": "QA", "source": SHIPPED[qa["kind"]]})
    elif qa:
        rows.append({"data": "QA", "source": _hub(qa)})
    return rows


def record(results_dir: Path) -> list[dict]:
    """Every job's run.json, less its config (which sits in resolved_config.json beside it)."""
    jobs = []
    for path in sorted(results_dir.rglob("run.json")) if results_dir.exists() else []:
        run = _read(path)
        jobs.append({"job": str(path.parent.relative_to(results_dir)),
                     **{k: v for k, v in run.items() if k not in ("config", "stats", "argv")}})
    return jobs


def _stage_times(jobs: list[dict], benchmarks: pd.DataFrame | None) -> list[dict]:
    """Wall time per stage: Snakemake's benchmarks where they exist (one per job), else the jobs' run.json."""
    if benchmarks is not None and not benchmarks.empty and {"stage", "s"} <= set(benchmarks.columns):
        grouped = benchmarks.groupby("stage", sort=False)["s"]
        return [{"stage": stage or "other", "seconds": float(s.sum()), "jobs": int(s.count())}
                for stage, s in grouped]
    totals: dict[str, list[float]] = {}
    for job in jobs:
        if "/tune/" in f"/{job['job']}/" and job["job"].count("/") > 2:
            continue  # a tuning job's own run.json already covers the runs of its grid
        wall = job.get("wall_time_s")
        if isinstance(wall, int | float):
            totals.setdefault(job["job"].split("/")[0], []).append(float(wall))
    return [{"stage": stage, "seconds": sum(walls), "jobs": len(walls)} for stage, walls in totals.items()]


def summary(results_dir: Path, jobs: list[dict], benchmarks: pd.DataFrame | None = None) -> dict:
    """The report's provenance table of one scale."""
    commits = Counter(str(j.get("git_commit") or "unknown") for j in jobs)
    packages: dict[str, set[str]] = {}
    hardware: dict[str, set[str]] = {}
    for job in jobs:
        for name, version in (job.get("packages") or {}).items():
            packages.setdefault(name, set()).add(str(version))
        for key, value in (job.get("hardware") or {}).items():
            hardware.setdefault(key, set()).add(json.dumps(value) if isinstance(value, list | dict) else str(value))
    versions = {k: ", ".join(sorted(v)) for k, v in sorted(packages.items())}
    return {"commits": [{"commit": c[:12], "jobs": n} for c, n in commits.most_common()],
            "packages": versions, "mixed_packages": sorted(k for k, v in packages.items() if len(v) > 1),
            "hardware": {k: ", ".join(sorted(v)) for k, v in sorted(hardware.items())},
            "data": data_revisions(results_dir, {k: min(v) for k, v in packages.items()}),
            "stages": _stage_times(jobs, benchmarks), "jobs": len(jobs)}
