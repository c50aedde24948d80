"""Run metadata and atomic writes."""

from __future__ import annotations

import pytest

from heavytail.io import atomic_path, read_json, read_jsonl, write_json, write_jsonl
from heavytail.provenance import git_commit, package_versions, record_run


def test_record_run_writes_config_and_provenance(tmp_path):
    cfg = {"scale": "tiny", "lr": 1e-3}
    with record_run(tmp_path, cfg) as run:
        run["final_loss"] = 1.5
    assert read_json(tmp_path / "resolved_config.json") == cfg
    record = read_json(tmp_path / "run.json")
    assert record["status"] == "ok" and record["final_loss"] == 1.5
    assert record["config"] == cfg and record["wall_time_s"] >= 0 and record["peak_rss_mb"] > 0
    assert record["packages"]["python"] and "torch" in record["packages"]
    assert record["hardware"]["cpu"] and record["git_commit"]


def test_record_run_marks_errors(tmp_path):
    with pytest.raises(RuntimeError), record_run(tmp_path, {}):
        raise RuntimeError("boom")
    record = read_json(tmp_path / "run.json")
    assert record["status"] == "error" and "boom" in record["error"]


def test_git_commit_is_a_sha_in_this_checkout():
    commit = git_commit()
    assert len(commit.removesuffix("-dirty")) == 40


def test_package_versions_reports_missing_packages():
    versions = package_versions(("pytest", "surely-not-installed-pkg"))
    assert versions["surely-not-installed-pkg"] == "not installed" and versions["pytest"][0].isdigit()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise ValueError
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    assert read_json(target) == {"a": 1}
    write_jsonl(tmp_path / "m.jsonl", [{"step": 1}, {"step": 2}])
    assert [r["step"] for r in read_jsonl(tmp_path / "m.jsonl")] == [1, 2]
