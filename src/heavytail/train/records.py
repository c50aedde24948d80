"""What a run leaves in its folder besides checkpoints: metrics.jsonl, result.json, and what makes two runs one."""

from __future__ import annotations

from pathlib import Path

from heavytail.io import write_jsonl

METRICS_NAME = "metrics.jsonl"
RESULT_NAME = "result.json"
# logging cadence and device do not change what is trained: a finished run or checkpoint stays valid
NOT_COMPARED = ("log_every", "device")


def comparable(train_config: dict) -> dict:
    """The train-config keys that define the run: a finished run or checkpoint is reused only when they agree."""
    return {k: v for k, v in train_config.items() if k not in NOT_COMPARED}


def write_metrics(out: Path, rows: list[dict]) -> None:
    write_jsonl(Path(out) / METRICS_NAME, rows)
