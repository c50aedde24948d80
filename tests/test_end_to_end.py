"""The whole DAG, shrunken: `reproduce_all` at tiny scale through Snakemake, then a no-op rerun."""

from __future__ import annotations

import time

import pytest
import yaml
from conftest import REPO, run_snakemake

from heavytail.report.artifacts import PAPER_ARTIFACTS

SHRINK = REPO / "tests" / "e2e_shrink.yaml"


@pytest.mark.slow
def test_reproduce_all_shrunken_then_nothing_to_do(workdir):
    result = run_snakemake(workdir, "--cores", "2", "reproduce_all", "--configfile", str(SHRINK), timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    tiny = workdir / "results" / "tiny"
    for name in PAPER_ARTIFACTS:
        built = list((tiny / "figures").glob(f"{name}.png")) + list((tiny / "tables").glob(f"{name}.csv"))
        assert built, f"{name} was not produced"
    report = workdir / "reports" / "tiny" / "index.html"
    html = report.read_text()
    claims = yaml.safe_load((REPO / "reports" / "paper.yaml").read_text())["claims"]
    for claim in claims:
        assert claim["id"] in html, f"claim {claim['id']} has no verdict in the report"
    assert "not implemented yet" not in html
    # every job left its provenance
    runs = list(tiny.rglob("run.json"))
    assert len(runs) >= 10

    start = time.perf_counter()
    again = run_snakemake(workdir, "--cores", "2", "reproduce_all", "--configfile", str(SHRINK))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr
    assert time.perf_counter() - start < 10
