"""Retries of training jobs: a requeue (exit 75, or torchrun's 1 with the engine's marker) is retried, a failure
that a retry cannot fix stops the next attempt at once."""

from __future__ import annotations

import subprocess
import sys

from heavytail.train.retry import check, main, record_exit, requeue_marker


def test_a_requeue_or_a_kill_is_retried_and_a_failure_is_not(tmp_path):
    record = tmp_path / "attempts.jsonl"
    assert check(1, record) is None
    assert record_exit(1, record, 75) == 75
    assert check(2, record) is None  # checkpointed on SIGTERM: resume
    assert record_exit(2, record, 137) == 137
    assert check(3, record) is None  # killed (time limit, OOM): resume from the last checkpoint
    assert record_exit(3, record, 2) == 2
    refusal = check(4, record)
    assert refusal and "attempt 3 failed with exit 2" in refusal and "\n" not in refusal
    assert check(1, record) is None and not record.exists()  # a new run of the job starts afresh


def test_torchrun_reports_a_requeue_as_1_and_the_marker_tells(tmp_path):
    record = tmp_path / "attempts.jsonl"
    requeue_marker(record).write_text('{"step": 5, "exit": 75}\n')
    assert record_exit(1, record, 1) == 75 and not requeue_marker(record).exists()
    assert check(2, record) is None
    assert record_exit(2, record, 1) == 1
    assert check(3, record) is not None


def test_the_cli_exits_with_the_recorded_code_and_refuses_with_one_line(tmp_path):
    record = str(tmp_path / "a.jsonl")
    assert main(["record", "--attempt", "1", "--record", record, "--exit", "3"]) == 3
    result = subprocess.run([sys.executable, "-m", "heavytail.train.retry", "check", "--attempt", "2", "--record",
                             record], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("heavytail: attempt 2: attempt 1 failed")
