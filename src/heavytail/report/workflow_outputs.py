"""What report.smk reads off the workflow's own rules: each result's job log, and which artifacts the stage rules
already put in Snakemake's report. Pure functions of the rule objects, so the .smk file holds rules only."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from snakemake.io import is_flagged

from heavytail.report.artifacts import REPORT_CATEGORY, display_name


def job_logs(rules: Iterable) -> list[list[str]]:
    """(output, log) path templates of every rule writing under results/ (arrays left out: no run is one)."""
    pairs = []
    for rule in rules:
        logs = [str(f) for f in rule.log]
        if logs:
            pairs += [[str(out), logs[0]] for out in rule.output
                      if str(out).startswith("results/") and not str(out).endswith(".npz")]
    return pairs


def in_snakemake_report(rules: Iterable, path: str) -> bool:
    """Whether the rule writing `path` already puts it in Snakemake's report (report() on that output)."""
    return any(is_flagged(out, "report") and out.match(path) for rule in rules for out in rule.output)


def report_copies(rules: Iterable, artifacts: dict[str, str], report_dir: str, report: Callable) -> dict:
    """render_report's outputs for the artifacts no stage rule annotates: their copies beside the HTML report
    (figures/<name>.png, tables/<name>.csv), each with its caption, so every artifact is in the zip once."""
    rules = list(rules)
    copies = {}
    for name, path in artifacts.items():
        if in_snakemake_report(rules, path):
            continue
        folder = "figures" if path.endswith(".png") else "tables"
        copies[name] = report(f"{report_dir}/{folder}/{Path(path).name}", caption=f"../../reports/captions/{name}.rst",
                              category=REPORT_CATEGORY[name], labels={"artifact": display_name(name), "scale": "{scale}"})
    return copies


def judged_scales(verdicts_template: str, scales: Iterable[str], current: str) -> list[str]:
    """This scale's verdicts and those of every other scale judged already (sources there: the scale wildcard
    constraint keeps this run from building them)."""
    paths = [(s, verdicts_template.format(scale=s)) for s in scales]
    return [path for s, path in paths if s == current or Path(path).exists()]
