"""The DAG: dry runs at every scale, lint, target names, conda envs in step with pyproject, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import tomllib
import yaml
from conftest import REPO, run_snakemake

from heavytail.report.artifacts import PAPER_ARTIFACTS


@pytest.mark.parametrize("scale", ["tiny", "small", "paper"])
def test_dry_run_every_scale_lists_every_stage(workdir, scale):
    result = run_snakemake(workdir, "-n", "reproduce_all", "--config", f"scale={scale}")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = set(re.findall(r"^rule (\w+):", result.stdout, flags=re.M))
    assert {"render_report", "reproduce_all"} <= jobs
    for stage_file in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        if stage_file.stem in ("common", "bench"):
            continue  # glue, and the benchmarks (their own target, `bench`)
        defined = set(re.findall(r"^rule (\w+):", stage_file.read_text(), flags=re.M))
        if defined:
            assert defined & jobs, f"{scale}: no job of {stage_file.name} in the dry run: {sorted(jobs)}"
    assert not (workdir / "results").exists()


def _commands_by_rule(workdir, *args) -> dict[str, list[str]]:
    result = run_snakemake(workdir, "-n", "-p", "table3", "fig1b", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    commands: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        # a training rule's line holds the retry guard's commands too: key it by the entry point it runs
        modules = [m for m in re.findall(r"-m heavytail\.([\w.]+) ", line.strip()) if m != "train.retry"]
        if modules:
            commands.setdefault(modules[0], []).append(line.strip())
    return commands


def test_a_qa_change_reruns_qa_and_squad_only(workdir):
    """Jobs hold only the data sections they read: a new QA generator setting changes the QA and SQuAD job
    commands (so Snakemake reruns them), and leaves the corpus, tokenizer, pretraining and vision ones alone."""
    before = _commands_by_rule(workdir)
    (workdir / "qa.yaml").write_text("data: {qa: {question_side_words: 6}}\n")
    after = _commands_by_rule(workdir, "--configfile", str(workdir / "qa.yaml"))
    changed = {module for module in before if sorted(before[module]) != sorted(after.get(module, []))}
    assert changed == {"data.qa", "train.finetune_squad"}, changed
    assert {"data.corpus", "data.tokenizer", "train.pretrain", "train.classify"} <= set(before)


def test_lint_is_clean(workdir):
    result = run_snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Congratulations" in result.stdout + result.stderr


def test_every_paper_artifact_has_a_target(workdir):
    result = run_snakemake(workdir, "--list-rules")
    assert result.returncode == 0, result.stderr
    rules = set(result.stdout.split())
    assert set(PAPER_ARTIFACTS) | {"reproduce_all", "report", "bench"} <= rules


def test_conda_envs_parse_and_pin_what_pyproject_pins():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = {d.split("==")[0]: d for d in pyproject["project"]["dependencies"] if "==" in d}
    assert set(pins) >= {"torch", "torchvision"}
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert {p.stem for p in envs} >= {"train", "analysis", "report"}
    for env_file in envs:
        env = yaml.safe_load(env_file.read_text())
        deps = env["dependencies"]
        pip_deps = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
        for pin in pins.values():
            assert pin in pip_deps, f"{env_file.name} does not pin {pin}"
        assert "-e .." in pip_deps, f"{env_file.name} does not install the heavytail package"
    rules_text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for used in set(re.findall(r'"\.\./\.\./envs/(\w+)\.yaml"', rules_text)):
        assert (REPO / "envs" / f"{used}.yaml").exists()


def test_console_script_lists_and_dispatches():
    result = subprocess.run([sys.executable, "-m", "heavytail.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "report" in result.stdout and "heavytail.report.render" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "heavytail.cli", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'nope'" in bad.stderr
    helped = subprocess.run([sys.executable, "-m", "heavytail.cli", "report", "--help"], capture_output=True,
                            text=True)
    assert helped.returncode == 0 and "--config" in helped.stdout


def profile_settings_with(monkeypatch, profile: str, **env) -> dict:
    import yte

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with open(REPO / "workflow" / "profiles" / profile / "config.v8+.yaml") as handle:
        return yte.process_yaml(handle, require_use_yte=True)


@pytest.mark.parametrize("profile, gpus", [("local", "0"), ("local", "2"), ("slurm", "8"), ("slurm", "1")])
def test_profiles_parse_and_name_only_rules_that_exist(monkeypatch, profile, gpus):
    """Every profile, with its GPU knob set either way, is valid YTE/YAML, and each rule it sizes is a rule."""
    settings = profile_settings_with(monkeypatch, profile, HEAVYTAIL_LOCAL_GPUS=gpus, HEAVYTAIL_SLURM_GPUS=gpus)
    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^(?:rule|use rule \w+ as) (\w+)", smk.read_text(), flags=re.M))
    sized = set(settings.get("set-threads", {})) | set(settings.get("set-resources", {}))
    assert sized and sized <= rules, sorted(sized - rules)


@pytest.mark.parametrize("args, offline", [((), True), (("--config", "scale=small"), False),
                                           (("--config", "scale=paper"), False)])
def test_reproduce_goes_offline_at_the_tiny_scale_only(tmp_path, args, offline):
    """#16: README command 1 forced HF_HUB_OFFLINE=1, so `reproduce.sh --config scale=small` could not download
    its data. The script runs here on stand-ins for setup, the venv's python (the default scale) and snakemake."""
    scripts = tmp_path / "workflow" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "reproduce.sh").write_text((REPO / "workflow" / "scripts" / "reproduce.sh").read_text())
    (scripts / "setup_env.sh").write_text("true\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("#!/bin/sh\necho tiny\n")
    (bin_dir / "snakemake").write_text('#!/bin/sh\necho "offline=${HF_HUB_OFFLINE:-unset}/${HF_DATASETS_OFFLINE:-unset}"\n')
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no HF_* of the test session's own
    result = subprocess.run(["bash", str(scripts / "reproduce.sh"), *args], capture_output=True, text=True,
                            env=env, check=True)
    assert ("offline=1/1" if offline else "offline=unset/unset") in result.stdout, result.stdout


def test_a_local_gpu_runs_one_gpu_job_at_a_time(monkeypatch):
    """#16: local Snakemake enforces no GPU limit by itself, so `--cores all` put five tuning jobs on one GPU.
    With a GPU, the local profile makes it a global resource of 1 that every job the cluster runs on GPUs needs."""
    monkeypatch.delenv("HEAVYTAIL_LOCAL_TRAIN_GPUS", raising=False)
    cluster = profile_settings_with(monkeypatch, "slurm", HEAVYTAIL_SLURM_GPUS="1")["set-resources"]
    on_gpus = {rule for rule, resources in cluster.items() if resources.get("gpu")}
    local = profile_settings_with(monkeypatch, "local", HEAVYTAIL_LOCAL_GPUS="1")
    assert local["resources"]["gpu"] == 1 and on_gpus
    assert {rule: local["set-resources"][rule]["gpu"] for rule in on_gpus} == dict.fromkeys(on_gpus, 1)
    # without a GPU, nothing waits for one: the CPU runs as many jobs as it has cores
    cpu_only = profile_settings_with(monkeypatch, "local", HEAVYTAIL_LOCAL_GPUS="0")
    assert cpu_only["resources"]["gpu"] == 0 and "set-resources" not in cpu_only
