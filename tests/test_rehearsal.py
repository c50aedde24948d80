"""The cluster path rehearsed on CPU: `reproduce_all` at paper and at small scale through the local profile, on
sources in the Hub's and ImageNet's own formats, with torchrun (2 processes, gloo), NSP and BERT's two phases,
and one training job sent SIGTERM mid-run, requeued by the profile and resumed to the same metrics."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, VENV_BIN, snakemake_env
from rehearsal import TWO_PROCESS_TRAINING, build_sources, overlay

from heavytail.io import read_json, read_jsonl

PROFILE = ("--workflow-profile", str(REPO / "workflow" / "profiles" / "local"))
ENV = {**snakemake_env(), **TWO_PROCESS_TRAINING}
# small is a one-GPU scale: every job one process (torchrun is rehearsed at paper scale); no GPU resource
# either, so the CPU runs two jobs at a time
ONE_PROCESS_TRAINING = {**snakemake_env(), "HEAVYTAIL_LOCAL_GPUS": "0"}
# the job sent SIGTERM: the base model's Adam run, long enough to be caught between checkpoints
STOPPED = "pretrain/bert_L12/adam/seed0"
# the disk a rehearsal may fill (measured: see check_disk)
LIMIT_GB = 4.0


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    return build_sources(tmp_path_factory.mktemp("sources"))


def rehearsal_workdir(root: Path, scale: str, sources: dict, extra: dict | None = None) -> tuple[Path, tuple]:
    workdir = root / scale
    workdir.mkdir()
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    settings = overlay(scale, sources)
    for key, value in (extra or {}).items():
        settings[key] = {**settings.get(key, {}), **value}
    (workdir / "rehearsal.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return workdir, ("--configfile", str(workdir / "rehearsal.yaml"), "--config", f"scale={scale}")


def processes_of(workdir: Path, run_dir: Path) -> list[int]:
    """PIDs running in `workdir` whose command line names `run_dir` (relative to it, as Snakemake writes it): the
    job's shell, torchrun and its workers (what a cluster's job-step signal reaches)."""
    relative = str(run_dir.relative_to(workdir))
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if cwd == str(workdir) and relative in cmdline and "snakemake" not in cmdline.split()[0]:
                found.append(int(proc.name))
    return found


def check_disk(workdir: Path, limit_gb: float) -> None:
    """A finished grid point keeps its metrics, not its weights: the paper's ResNet-50 and AlexNet points alone
    held 4.8 GB of checkpoints here, enough to fill a CI disk."""
    points = [p for p in workdir.glob("results/*/**/checkpoint.pt") if "tune" in p.relative_to(workdir).parts]
    assert not points, f"finished tuning points kept their checkpoints: {points[:3]}"
    used = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file()) / 1e9
    print(f"{workdir.name} rehearsal: {used:.2f} GB on disk")
    assert used < limit_gb, f"the {workdir.name} rehearsal wrote {used:.2f} GB (limit {limit_gb})"


def comparable(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "it_per_s"} for r in read_jsonl(run_dir / "metrics.jsonl")]


@pytest.mark.slow
def test_paper_scale_rehearsal_with_a_job_stopped_and_resumed(sources, tmp_path):
    # the stopped run trains long enough to be caught mid-run; the other runs stay toy-sized
    workdir, config = rehearsal_workdir(tmp_path, "paper", sources)
    run_dir = workdir / "results" / "paper" / STOPPED
    cmd = [str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           *PROFILE, "reproduce_all", *config]
    log_path = workdir / "snakemake.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=REPO,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 1500
            while not (run_dir / "checkpoint.pt").is_file():  # the first checkpoint: stop it there, mid-run
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-4000:]
                time.sleep(0.05)
            pids = processes_of(workdir, run_dir)
            assert pids, f"no process of {run_dir} to stop"
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            proc.wait(timeout=1500)
        finally:
            if proc.poll() is None:  # a failed test leaves no DAG running behind it
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=120)
    text = log_path.read_text()
    assert proc.returncode == 0, text[-6000:]
    job_log = (workdir / "logs" / "paper" / f"{STOPPED.replace('pretrain/', 'pretrain/', 1)}.log").read_text()
    assert "exiting 75 to be requeued" in job_log and "attempt 2" in job_log
    assert "resuming at step" in job_log and "world size 2" in job_log
    assert [a["exit"] for a in read_jsonl(run_dir / "attempts.jsonl")] == [75, 0]
    # the jobs use the project's Hugging Face cache, not the one of the shell that started Snakemake
    assert os.environ["HF_HOME"] != str(workdir / "resources" / "hf_home")
    assert read_json(run_dir / "run.json")["hf_home"] == str(workdir / "resources" / "hf_home")
    # every training job under torchrun: its 2 processes share the job's 2 cores (each took all of them before)
    logs = [p.read_text() for p in (workdir / "logs" / "paper").rglob("*.log") if "world size 2" in p.read_text()]
    assert len(logs) >= 5 and all("1 threads per process" in text for text in logs)
    check_paper_outputs(workdir, sources)
    check_disk(workdir, LIMIT_GB)

    # the same job, uninterrupted: the resumed run's every metrics row is the same
    interrupted = comparable(run_dir)
    shutil.move(run_dir, run_dir.with_name("seed0.interrupted"))
    target = f"results/paper/{STOPPED}/metrics.jsonl"
    again = subprocess.run([str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                            "--cores", "2", *PROFILE, target, *config, "--forcerun", "pretrain_bert",
                            "--rerun-triggers", "mtime", "input"], capture_output=True, text=True, env=ENV)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert comparable(run_dir) == interrupted


def check_paper_outputs(workdir: Path, sources: dict) -> None:
    results = workdir / "results" / "paper"
    assert (workdir / "reports" / "paper" / "index.html").is_file()
    for name in ("fig1a", "fig1b", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8"):
        assert (results / "figures" / f"{name}.png").is_file(), name
    # the sources' commits are recorded as the revisions the run read
    corpus = read_json(results / "data" / "corpus" / "stats.json")["source"]
    assert corpus["wikipedia"]["revision"] == sources["commits"]["wikipedia"]
    assert corpus["bookcorpus"]["revision"] == sources["commits"]["bookcorpus"]
    assert read_json(results / "data" / "qa" / "stats.json")["source"]["revision"] == sources["commits"]["squad_parquet"]
    tokenizer = read_json(results / "data" / "tokenizer" / "tokenizer_stats.json")["source"]
    assert tokenizer["revision"] == sources["commits"]["tokenizer"]
    # NSP and both sequence phases: validation at both lengths, SQuAD at the long phase's length
    final = [r for r in read_jsonl(results / STOPPED / "metrics.jsonl") if r["split"] == "validation"][-1]
    assert {"nsp_loss", "mlm_loss_long"} <= set(final)
    scores = read_json(results / "squad" / "bert_L6" / "adam" / "seed0" / "scores.json")
    assert scores["status"] == "ok" and scores["exact_match"] is not None
    # ImageNet's flat val/ was read through its devkit labels, without touching the user's folder
    manifest = read_json(results / "data" / "images" / "manifest.json")
    assert sum(manifest["counts"]["val"].values()) == 6
    assert not list((Path(sources["imagenet_dir"]) / "val").glob("n*"))


@pytest.mark.slow
def test_small_scale_rehearsal(sources, tmp_path):
    workdir, config = rehearsal_workdir(tmp_path, "small", sources)
    result = subprocess.run([str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                             "--cores", "2", *PROFILE, "reproduce_all", *config], capture_output=True, text=True,
                            env=ONE_PROCESS_TRAINING, timeout=1500)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    training_logs = [path.read_text() for path in (workdir / "logs" / "small" / "pretrain").glob("*/*/seed*.log")]
    assert training_logs and all("world size 1" in text for text in training_logs)  # as on small's one GPU
    results = workdir / "results" / "small"
    assert (workdir / "reports" / "small" / "index.html").is_file()
    check_disk(workdir, LIMIT_GB)
    qa = read_json(results / "data" / "qa" / "stats.json")
    assert json.dumps(qa["source"]).count("dev-v1.1.json")  # SQuAD from the official JSON files
