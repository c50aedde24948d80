"""Run metadata that every job records: git commit, package versions, hardware, wall time, resolved config."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from heavytail.io import write_json

PACKAGES = ("torch", "torchvision", "transformers", "datasets", "tokenizers", "numpy", "scipy", "pandas",
            "matplotlib", "snakemake", "gensim", "heavytail")


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The checkout's commit, with `-dirty` when tracked files differ from it; `unknown` outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware() -> dict:
    info = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    torch = sys.modules.get("torch")  # only report what the job itself imported
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def record_run(out_dir: str | os.PathLike, config: dict, name: str = "run.json") -> Iterator[dict]:
    """Write `resolved_config.json` now and `run.json` (provenance, wall time, status) when the block ends.

    The yielded dict can be filled by the job (e.g. `status`, `diverged_at_step`); it lands in run.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "resolved_config.json", config)
    record: dict = {"status": "running", "argv": sys.argv, "started_unix": time.time()}
    start = time.perf_counter()
    try:
        yield record
        record.setdefault("status", "ok")
        if record["status"] == "running":
            record["status"] = "ok"
    except BaseException as exc:
        record["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit) else "error"
        record["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.update(
            wall_time_s=round(time.perf_counter() - start, 3),
            peak_rss_mb=round(peak_rss_mb(), 1),
            git_commit=git_commit(),
            packages=package_versions(),
            hardware=hardware(),
            # where the job read and wrote Hugging Face files: the project's cache, on a compute node too
            hf_home=os.environ.get("HF_HOME"),
            config=config,
        )
        write_json(out / name, record)
