"""The cluster path: the slurm profile on a real single-node SLURM, cancel-and-resume, and the paper-scale dry run.
The real-SLURM tests start munged + slurmctld + slurmd (tests/slurm/single_node.py) once for this module and stop
them by PID at the end. They skip only where that cannot happen: not root, or no slurm-wlm and no apt-get."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, VENV_BIN, snakemake_env
from slurm.single_node import SingleNodeSlurm, unavailable_reason

from heavytail.config import deep_merge, load_config

PROFILE = REPO / "workflow" / "profiles" / "slurm"
LINK_PROFILE = REPO / "workflow" / "scripts" / "link_profile.sh"
# CPU-only rules that read results and draw or render: they run on the submit host, never in the queue
LOCAL_RULES = ("aggregate_results", "estimate_budget", "render_report", "plot_table1", "plot_fig1b", "plot_fig8")

# The CI-sized DAG: the tiny experiment with fewer seeds and steps, so each job is mostly Snakemake start-up
SHRUNKEN_TINY = {
    "data": {"images": {"train_per_class": 30, "val_per_class": 10}},
    "theory": {
        "bootstrap_samples": 50,
        "rates": {"seeds": 40, "steps": 400, "record_points": 12, "fit_min_step": 40},
        "lower_bound": {"seeds": 200, "horizons": [64, 128, 256]},
        "appendix_a": {"seeds": 1000, "steps": 300},
        "dimension_sweep": {"dims": [1, 4, 16], "seeds": 40, "steps": 300},
        "nonconvex": {"seeds": 40, "horizons": [100, 300, 1000]},
        "adam_grid": {"points": 11},
    },
    # a few steps per run: enough to start the engine, train, evaluate and checkpoint inside SLURM
    # (the node's GPUs are /dev/null: the jobs that ask for them compute on the CPU)
    "pretrain": {"seeds": [0], "comparison_seeds": 1,
                 "train": {"steps": 20, "log_every": 5, "eval_every": 10, "checkpoint_every": 10, "device": "cpu"},
                 "tune": {"steps": 20, "lr_grid": {"sgdm": [0.3], "adam": [3.0e-3]}}},
    "vision": {"models": {"resnet": {"epochs": 1, "eval_every": 2}, "alexnet": {"steps": 4, "eval_every": 2}}},
}
# The rules the CI slice sends to SLURM, sized for the 2-core box behind the fake node: one thread, 3 GB each.
# Training asks for GPUs (it trains on CPU: the node's GPUs are /dev/null); the cancelled job asks for 2, so it
# runs under torchrun. The command line replaces the profile's per-rule values for these rules only.
SLURM_RULES = ("prepare_corpus", "train_tokenizer", "run_theory", "prepare_mlm_data", "tune_pretrain",
               "pretrain_bert")


def ci_resources(train_gpus: int = 1) -> tuple[str, ...]:
    gpu = {"tune_pretrain": 1, "pretrain_bert": train_gpus}
    resources = [f"{rule}:cpus_per_task={max(1, gpu.get(rule, 0))}" for rule in SLURM_RULES]
    resources += [f"{rule}:mem_mb=3000" for rule in SLURM_RULES] + [f"{rule}:runtime=10" for rule in SLURM_RULES]
    resources += [f"{rule}:gpu={n}" for rule, n in gpu.items()] + [f"{rule}:nodes=1" for rule in gpu]
    threads = [f"{rule}=1" for rule in SLURM_RULES]
    return ("--set-resources", *resources, "--set-threads", *threads)


# Through SLURM every job pays for two Snakemake start-ups and status polling, so the CI-sized run is a slice of
# reproduce_all that keeps every kind of job: data preparation, a CPU-only compute job (theory), training on the
# train family's (fake) GPUs (tuning and pretraining), and local plotting rules
CI_TARGETS = ("table1", "fig1a")
# Snakemake in each job polls SLURM quickly; MinJobAge (300 s) stays >= 3 x this, so squeue is honoured
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5")


def profile_snakemake(workdir: Path, *args: str, limit_s: int, cwd: Path = REPO, env: dict | None = None):
    """`snakemake --profile <repo profile>` under `timeout -s INT` (SIGINT makes Snakemake scancel its jobs)."""
    cmd = ["timeout", "-s", "INT", str(limit_s), str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env or snakemake_env(),
                          timeout=limit_s + 60)


def write_shrunken_config(workdir: Path, extra: dict | None = None) -> Path:
    """config.yaml and the CI overrides (the shrunken experiment plus `extra`) in `workdir`."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    overrides = deep_merge(SHRUNKEN_TINY, extra or {})
    path = workdir / "ci_overrides.yaml"
    path.write_text(yaml.safe_dump(overrides, sort_keys=False))
    return path


def ci_config(workdir: Path) -> tuple[str, ...]:
    return ("--configfile", str(workdir / "ci_overrides.yaml"), "--config", "scale=tiny")


def submitted_jobs(log: str) -> dict[str, list[str]]:
    """rule name -> SLURM job ids, from the log of the Snakemake that submitted them."""
    rule_of = {m.group(2): m.group(1) for m in re.finditer(r"^rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$",
                                                             log, flags=re.M)}
    jobs: dict[str, list[str]] = {}
    for match in re.finditer(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", log, flags=re.M):
        jobs.setdefault(rule_of[match.group(1)], []).append(match.group(2))
    return jobs


def slurm_states() -> dict[str, str]:
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%T"], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split("|", 1) for line in out.split())


# ----------------------------------------------------------------------------------------------------------
# the profile, without a cluster


def test_profile_is_found_by_name_after_setup_and_never_clobbers_another(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    link = tmp_path / "xdg" / "snakemake" / "slurm"
    for _ in range(2):  # idempotent
        subprocess.run(["bash", str(LINK_PROFILE)], env=env, check=True, capture_output=True)
        assert link.is_symlink() and link.resolve() == PROFILE.resolve()
    other = tmp_path / "xdg2" / "snakemake" / "slurm"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("executor: slurm\n")
    result = subprocess.run(["bash", str(LINK_PROFILE)], env={**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg2")},
                            capture_output=True, text=True, check=True)
    assert "is another profile; left as is" in result.stderr
    assert not other.is_symlink() and (other / "config.yaml").read_text() == "executor: slurm\n"


def test_paper_dry_run_through_the_profile_by_name(tmp_path):
    """`snakemake -n --profile slurm reproduce_all` from the repo root: paper scale, GPUs where training runs."""
    env = {**snakemake_env(), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HEAVYTAIL_SLURM_PARTITION": "gpu-a100",
           "HEAVYTAIL_SLURM_CONSTRAINT": "a100|h100"}
    subprocess.run(["bash", str(LINK_PROFILE)], env=env, check=True, capture_output=True)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    cmd = [str(VENV_BIN / "snakemake"), "-n", "--profile", "slurm", "-d", str(workdir), "reproduce_all"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Using profile slurm" in result.stdout + result.stderr
    jobs = dry_run_jobs(result.stdout)
    assert jobs, result.stdout[-2000:]
    for job in jobs:
        res = job["resources"]
        assert res.get("slurm_partition") == "gpu-a100", job
        assert "--signal=TERM@120" in res.get("slurm_extra", ""), job
        # every output is the paper scale's, or a scale-free report (the paper's own values checked)
        assert "/paper/" in job["output"] or job["output"].startswith("reports/") or not job["output"], job
        if job["rule"] in LOCAL_RULES or job["rule"].startswith(("plot_", "prepare_", "train_tokenizer", "generate_")):
            assert "gpu" not in res, f"{job['rule']} is CPU-only but asks for GPUs: {res}"
        if "gpu" in res:
            gpus = int(res["gpu"])
            assert res.get("nodes") == "1", f"{job['rule']}: {gpus} GPUs must sit on one node for torchrun"
            # torchrun (its own options after the process count) or python, after train.retry's check of the
            # attempt: a GPU job is resubmitted after a kill, a time-out or a requeue, not after its own failure
            launcher = rf"torchrun --standalone --nproc_per_node {gpus}( --\S+ \S+)*" if gpus > 1 else "python"
            assert re.search(rf"(?<![\w-]){launcher} -m heavytail\.(?!train\.retry)", job["shell"]), job
            assert "heavytail.train.retry check" in job["shell"], f"{job['rule']} is retried on any failure"
            # GPU jobs only land on the GPUs the site names (the torch build has kernels for sm_75 and newer)
            assert res.get("constraint") == "a100|h100", job
            if gpus > 1:
                # torchrun kills its workers this long after forwarding SLURM's SIGTERM (its default, 30 s, is
                # shorter than a checkpoint may take); the time limit comes 120 s after the signal
                timeout = re.search(r"--shutdown-timeout (\d+)", job["shell"])
                assert timeout and 30 < int(timeout[1]) < 120, job["shell"]
    set_resources = profile_settings()["set-resources"]
    for job in jobs:
        if job["rule"] in TRAINING_RULES:
            # 8 GPUs of one node (HEAVYTAIL_SLURM_GPUS unset), 4 CPUs and 32 GB each, the profile's time limit
            assert int(job["resources"]["gpu"]) == 8 and int(job["resources"]["cpus_per_task"]) == 32, job
            assert int(job["resources"]["runtime"]) == set_resources[job["rule"]]["runtime"], job
    check_every_paper_experiment_is_queued(jobs)
    check_budget_fits_the_allocation(jobs)


def check_every_paper_experiment_is_queued(jobs: list[dict]) -> None:
    """BERT at 6/12/24 layers x optimizers x seeds, SQuAD x 5 seeds, ResNet50 + AlexNet, noise: each as a GPU job."""
    paper = load_config(REPO / "config.yaml", {"scale": "paper"})
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    if "pretrain_bert" in by_rule:
        runs = {(j["wildcards"]["model"], j["wildcards"]["optimizer"], j["wildcards"]["seed"])
                for j in by_rule["pretrain_bert"]}
        depths = {paper["pretrain"]["models"][model]["num_layers"] for model, _, _ in runs}
        assert depths >= {6, 12, 24}, depths
        base = {(o, s) for m, o, s in runs if m == paper["pretrain"]["base_model"]}
        assert {o for o, _ in base} >= set(paper["pretrain"]["fig3_optimizers"]), base
        assert {s for o, s in base if o == "adam"} == {str(seed) for seed in paper["pretrain"]["seeds"]}, base
    if "finetune_squad" in by_rule:
        outputs = " ".join(j["output"] for j in by_rule["finetune_squad"])
        seeds = set(re.findall(r"/seed(\d+)/scores\.json", outputs))
        assert len(seeds) == len(paper["squad"]["seeds"]) == 5, seeds
    if "train_vision" in by_rule:
        assert {j["wildcards"]["model"] for j in by_rule["train_vision"]} >= {"resnet", "alexnet"}
    noise = [j for j in jobs if j["rule"].startswith("measure_noise")]
    if (REPO / "workflow" / "rules" / "noise.smk").exists():
        assert noise and all(int(j["resources"].get("gpu", 0)) == 1 for j in noise)


# budget target (heavytail.report.budget) -> the rule whose jobs run it
BUDGET_RULES = {"pretrain depth": "pretrain_bert", "finetune_squad": "finetune_squad", "train_vision": "train_vision",
                "measure_noise": "measure_noise", "batch_size_sweep (": "sweep_batch_size",
                "batch_size_sweep noise": "measure_noise_batch_sizes", "class_imbalance linear": "train_linear_softmax"}
TRAINING_RULES = ("pretrain_bert", "finetune_squad", "train_vision")


def check_budget_fits_the_allocation(jobs: list[dict]) -> None:
    """The budget's paper GPU-hours per experiment fit in what its jobs may use: GPUs x time limit x attempts."""
    from heavytail.report.budget import budget_table

    assert any(job["rule"] == "estimate_budget" for job in jobs), "reproduce_all does not estimate the budget"
    table = budget_table({"paper": load_config(REPO / "config.yaml", {"scale": "paper"})}, pd.DataFrame())
    total = float(table.loc[table["target"] == "total", "gpu_hours"].iloc[0])
    assert 0 < total < float("inf")
    attempts = 1 + int(profile_settings()["retries"])
    allocation = {}
    for prefix, rule in BUDGET_RULES.items():
        rule_jobs = [job for job in jobs if job["rule"].startswith(rule)]  # measure_noise_<group>
        if not rule_jobs:
            continue  # that experiment is not in the DAG yet
        needed = float(table.loc[table["target"].str.startswith(prefix), "gpu_hours"].sum())
        allowed = sum(int(j["resources"].get("gpu", 0)) * int(j["resources"]["runtime"]) / 60 for j in rule_jobs)
        assert allowed * attempts >= needed, (
            f"{rule}: the budget needs {needed:.0f} GPU-hours but its {len(rule_jobs)} jobs may use at most "
            f"{allowed * attempts:.0f} ({attempts} attempts); raise the profile's runtime or the retries")
        allocation[rule] = (needed, allowed)
    print(f"paper budget: {total:.0f} GPU-hours in all; per rule (needed, requested per attempt): {allocation}")


def profile_settings() -> dict:
    import yte

    with open(PROFILE / "config.v8+.yaml") as handle:
        return yte.process_yaml(handle, require_use_yte=True)


def dry_run_jobs(stdout: str) -> list[dict]:
    """Jobs of a dry run: rule, output, resources (as printed), and the shell command (--printshellcmds)."""
    jobs = []
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} .*\]\n)", stdout):
        head = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if not head:
            continue
        resources = re.search(r"^    resources: (.*)$", block, flags=re.M)
        output = re.search(r"^    output: (.*)$", block, flags=re.M)
        log = re.search(r"^    log: (.*)$", block, flags=re.M)
        wildcards = re.search(r"^    wildcards: (.*)$", block, flags=re.M)
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.M)
        jobs.append({
            "rule": head.group(1),
            "output": output.group(1) if output else "",
            "log": log.group(1) if log else "",
            "wildcards": dict(item.split("=", 1) for item in wildcards.group(1).split(", ")) if wildcards else {},
            "resources": dict(item.split("=", 1) for item in resources.group(1).split(", ")) if resources else {},
            "shell": shell.group(1) if shell else "",
        })
    return jobs


# ----------------------------------------------------------------------------------------------------------
# a real single-node SLURM


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"single-node SLURM cannot run here: {reason}")
    cluster = SingleNodeSlurm(tmp_path_factory.mktemp("slurm-state"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.remove_configs()


@pytest.fixture(scope="module")
def ci_workdir(tmp_path_factory) -> Path:
    """One working directory for the real-SLURM tests, so data prepared by the first is reused by the next."""
    workdir = tmp_path_factory.mktemp("ci-dag")
    write_shrunken_config(workdir)
    return workdir


@pytest.mark.slow
def test_ci_dag_runs_through_the_profile_on_real_slurm(slurm_cluster, ci_workdir):
    start = time.perf_counter()
    result = profile_snakemake(ci_workdir, *CI_TARGETS, "--profile", str(PROFILE), *ci_config(ci_workdir),
                               *FAST_POLLING, *ci_resources(), limit_s=420)
    elapsed = time.perf_counter() - start
    log = result.stdout + result.stderr
    (ci_workdir / "ci_dag.log").write_text(log)
    assert result.returncode == 0, log[-6000:]
    assert (ci_workdir / "results/tiny/tables/table1.csv").is_file()
    assert (ci_workdir / "results/tiny/figures/fig1a.png").is_file()
    jobs = submitted_jobs(log)
    # compute rules went through sbatch and finished there; the light ones ran on the submit host
    assert {"prepare_corpus", "train_tokenizer", "run_theory", "prepare_mlm_data", "tune_pretrain",
            "pretrain_bert"} <= set(jobs), jobs
    states = slurm_states()
    for rule, ids in jobs.items():
        assert all(states.get(job_id) == "COMPLETED" for job_id in ids), (rule, ids, states)
    for rule in ("plot_table1", "plot_fig1a"):
        assert re.search(rf"^localrule {rule}:", log, flags=re.M), f"{rule} did not run locally"
        assert rule not in jobs
    print(f"CI DAG through SLURM: {sum(map(len, jobs.values()))} SLURM jobs in {elapsed:.0f} s")


RESUMED = re.compile(r"^resuming at step (\d+)/(\d+)", flags=re.M)


@pytest.mark.slow
def test_cancelled_training_job_is_resubmitted_and_resumes_from_its_checkpoint(slurm_cluster, ci_workdir):
    write_shrunken_config(ci_workdir, {
        "pretrain": {"train": {"steps": 60, "log_every": 5, "eval_every": 30, "checkpoint_every": 5}}})
    # an untuned optimizer on the smallest model: nothing but the prepared data comes before it
    targets = ["results/tiny/pretrain/bert_L1/acclip_paper/seed0/metrics.jsonl"]
    # the data prepared by the CI-DAG test stays valid although the preset's step counts changed
    reuse = ("--rerun-triggers", "mtime", "input")
    job = first_job_of(ci_workdir, "pretrain_bert", *targets, *reuse, "--profile", str(PROFILE), *ci_resources(2))
    assert re.search(r" torchrun --standalone --nproc_per_node 2( --\S+ \S+)* -m heavytail\.train\.pretrain ",
                     job["shell"]), job["shell"]
    run_dir = ci_workdir / Path(targets[0]).parent
    cmd = ["timeout", "-s", "INT", "400", str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"),
           "-d", str(ci_workdir), *targets, "--profile", str(PROFILE), *ci_config(ci_workdir), *FAST_POLLING,
           *reuse, *ci_resources(2)]
    log_path = ci_workdir / "cancel_resume.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, env=snakemake_env())
        try:
            # cancel once training has checkpointed at least once, mid-run
            wait_until(lambda: (run_dir / "checkpoint.pt").is_file(), 300, proc, "the first checkpoint")
            job_id = running_job_of("pretrain_bert")
            scontrol = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
            subprocess.run(["scancel", job_id], check=True)
            proc.wait(timeout=420)
        finally:
            if proc.poll() is None:
                proc.send_signal(2)  # SIGINT: Snakemake cancels its SLURM jobs, then exits
                proc.wait(timeout=60)
    log = log_path.read_text()
    assert proc.returncode == 0, log[-6000:]
    # the job asked SLURM for the GPUs it was given
    assert re.search(r"gres/gpu[:=]2\b|gpu:2\b", scontrol), scontrol
    ids = submitted_jobs(log)["pretrain_bert"]
    states = slurm_states()
    assert len(ids) == 2 and states[ids[0]] == "CANCELLED" and states[ids[1]] == "COMPLETED", (ids, states)
    assert "Trying to restart job" in log
    resumed = RESUMED.search(Path(ci_workdir / job["log"]).read_text())
    assert resumed and 0 < int(resumed.group(1)) < int(resumed.group(2)), "the resubmitted job started over"
    interrupted = training_record(run_dir)
    # the same job, uninterrupted, outside SLURM on as many processes (the local profile's two "GPUs"): its
    # metrics must be identical (another world size sums the gradients in another order)
    shutil.move(run_dir, run_dir.with_name(run_dir.name + ".interrupted"))
    two_processes = {**snakemake_env(), "HEAVYTAIL_LOCAL_GPUS": "2", "HEAVYTAIL_LOCAL_TRAIN_GPUS": "2"}
    local = subprocess.run([str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(ci_workdir),
                            *targets, "--cores", "2", "--workflow-profile", str(REPO / "workflow/profiles/local"),
                            *ci_config(ci_workdir), *reuse, "--forcerun", "pretrain_bert"],
                           cwd=REPO, capture_output=True, text=True, env=two_processes, timeout=400)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    assert not RESUMED.search(Path(ci_workdir / job["log"]).read_text())
    assert training_record(run_dir) == interrupted


def training_record(run_dir: Path) -> dict:
    """Every metrics row (without throughput, which depends on the machine's load) and the final result."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row.pop("it_per_s", None)
    result = json.loads((run_dir / "result.json").read_text())
    return {"rows": rows, "final_validation": result["final_validation"], "status": result["status"]}


def first_job_of(workdir: Path, rule: str, *args: str) -> dict:
    """Output, log, resources and shell command of the first `rule` job a dry run would run."""
    result = profile_snakemake(workdir, *args, "-n", "-p", *ci_config(workdir), limit_s=120)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [job for job in dry_run_jobs(result.stdout) if job["rule"] == rule]
    assert jobs, f"no {rule} job in the CI-sized DAG"
    return jobs[0]


def running_job_of(rule: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True,
                         check=True).stdout
    ids = [line.split("|")[0] for line in out.split() if f"rule_{rule}" in line]
    assert len(ids) == 1, out
    return ids[0]


def wait_until(condition, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"Snakemake exited ({proc.returncode}) before {what}"
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f} s")
