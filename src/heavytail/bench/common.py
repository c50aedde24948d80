"""What every benchmark entry point shares: picking the device and threads, and writing its JSON with provenance."""

from __future__ import annotations

import torch

from heavytail.io import write_json
from heavytail.provenance import git_commit, hardware, package_versions


def pick_device(requested: str | None, threads: int | None, name: str) -> str:
    """Apply --threads, then resolve --device (default: cuda where visible); a missing GPU is a clear error."""
    if threads:
        torch.set_num_threads(threads)
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"heavytail.bench.{name}: --device cuda but no CUDA device is visible")
    return device


def write_result(out: str, result: dict, cfg: dict) -> None:
    """Write a benchmark's result with its config, threads, hardware, package versions and commit."""
    result.update(config=cfg, threads=torch.get_num_threads(), hardware=hardware(), versions=package_versions(),
                  git_commit=git_commit())
    write_json(out, result)
    print(f"wrote {out}", flush=True)
