"""Shared test setup: offline Hugging Face, the project's caches, and a Snakemake runner on a scratch workdir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# never reach for the hub, and keep every cache inside the project
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", str(REPO / "resources" / "hf_home"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(REPO / "resources" / "inductor_cache"))
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"


def snakemake_env() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_snakemake(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the project's Snakefile with `workdir` as working directory (results/, logs/ land there)."""
    cmd = [str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=snakemake_env(), timeout=timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory holding a copy of config.yaml."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def edit_config(workdir: Path, edit) -> None:
    """Apply `edit(config_dict)` to the workdir's config.yaml."""
    path = workdir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def tiny_job(stage: str, overrides: dict | None = None, **extra) -> dict:
    """The job config the pipeline would give a `stage` job at tiny scale, with `overrides` merged in."""
    from heavytail.config import deep_merge, load_config
    from heavytail.plan.jobs import job_config

    return deep_merge(job_config(load_config(REPO / "config.yaml"), stage, **extra), overrides or {})
