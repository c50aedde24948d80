"""Hugging Face sources: the project's cache (paths.hf_home), input checks, and revisions resolved to commits.

A Hub source is `path` (a Hub id such as wikimedia/wikipedia, or a local folder in the Hub repo's layout) and
`revision` (null: the default branch; a branch such as refs/convert/parquet; or a 40-hex commit). Unpinned
sources are resolved to a commit when the job starts, and the job records it; a local folder records its git
commit when it is a clone of the Hub repo. Offline, only pinned commits and local folders can be resolved.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from heavytail.errors import ConfigError

PARQUET_EXPORT = "refs/convert/parquet"  # the Hub's own parquet conversion of every dataset, as a branch
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def use_project_hf_home(paths: dict) -> Path:
    """Point HF_HOME and HF_DATASETS_CACHE at paths.hf_home; call before importing datasets or transformers."""
    # datasets and huggingface_hub read these variables once, at import time
    home = Path(paths.get("hf_home") or "resources/hf_home").resolve()
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_DATASETS_CACHE"] = str(home / "datasets")
    os.environ["HF_HUB_CACHE"] = str(home / "hub")
    return home


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def raise_problems(problems: list[str]) -> None:
    """One ConfigError line holding every problem found, so a user fixes them all in one round."""
    if problems:
        raise ConfigError("; ".join(problems))


def is_local(path: str) -> bool:
    """A folder on disk rather than a Hub id (Hub ids never start with '/', '.' or '~')."""
    return str(path).startswith(("/", ".", "~")) or Path(path).exists()


def source_problems(path: str | None, revision: str | None, key: str, kind: str = "dataset",
                    path_field: str = "path") -> list[str]:
    """What stops `path` at `revision` from being resolved, without touching the network (`key.path_field` and
    `key.revision` name the config keys)."""
    if not path:
        return [f"{key}.{path_field} is empty: name a Hub {kind} or a local folder in its layout"]
    if is_local(path):
        folder = Path(path).expanduser()
        if not folder.is_dir():
            return [f"{key}.{path_field}: folder {folder} does not exist (point it at a local copy in the Hub's "
                    f"layout, or at a Hub {kind} id)"]
        partial = sorted(p.name for p in folder.glob("*/partial-*"))
        if partial:
            return [f"{key}.{path_field}: {folder} holds a partial parquet export ({partial[0]}: the Hub converts only "
                    "the first 5 GB); use a complete copy"]
        return []
    if hf_offline() and not COMMIT.match(revision or ""):
        pinned = f"is {revision!r}" if revision else "is null"
        return [f"{key}.revision {pinned} and HF_HUB_OFFLINE=1, so the commit of {path} cannot be looked up: run "
                f"once online (unset HF_HUB_OFFLINE), pin {key}.revision to a 40-hex commit, or set {key}.{path_field} "
                "to a local copy"]
    return []


def git_commit_of(folder: Path) -> str | None:
    """The commit of a git clone (a Hub repo cloned with git keeps the Hub's commit ids), else None."""
    if not (folder / ".git").exists():
        return None
    try:
        return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _repo_info(api, path: str, revision: str | None, kind: str, key: str, path_field: str):
    from huggingface_hub.errors import (
        HTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    lookup = api.dataset_info if kind == "dataset" else api.model_info
    page = f"https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{path}"
    try:
        return lookup(path, revision=revision)
    except RevisionNotFoundError as exc:
        raise ConfigError(f"{key}.revision: {path} has no revision {revision!r} (pick a commit at "
                          f"{page}/commits, or null)") from exc
    except RepositoryNotFoundError as exc:  # gated repos too
        raise ConfigError(f"{key}.{path_field}: {path} is not a {kind} on the Hub or needs a login (`hf auth login`, "
                          f"then accept its terms at {page}); or set it to a local folder") from exc
    except (OfflineModeIsEnabled, HTTPError) as exc:  # connection errors and HTTP failures
        raise ConfigError(f"{key}: cannot reach the Hub to resolve {path} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:120]}); run online, or pin {key}.revision to a commit "
                          "already in the cache") from exc


def resolve(path: str, revision: str | None, key: str, kind: str = "dataset", api=None,
            path_field: str = "path") -> dict:
    """Where a source's data comes from: {path, requested_revision, revision (a commit or None), local}.

    A Hub dataset whose branch holds only a loading script (which datasets >= 4 refuses) is read from its
    parquet export when no revision was asked for; a partial export (the Hub's first 5 GB) is refused.
    """
    raise_problems(source_problems(path, revision, key, kind, path_field))
    if is_local(path):
        folder = Path(path).expanduser().resolve()
        return {"path": str(folder), "requested_revision": revision, "revision": git_commit_of(folder),
                "local": True}
    if hf_offline():  # source_problems let only a pinned commit through
        return {"path": path, "requested_revision": revision, "revision": revision, "local": False}
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    info = _repo_info(api, path, revision, kind, key, path_field)
    branch = revision
    if kind == "dataset":
        files = [s.rfilename for s in (info.siblings or [])]
        script = f"{path.split('/')[-1]}.py"
        if script in files and revision is None:
            print(f"hub {path}: its default branch holds {script}, which datasets>=4 refuses to run; reading its "
                  f"parquet export ({PARQUET_EXPORT})", flush=True)
            branch = PARQUET_EXPORT
            info = _repo_info(api, path, branch, kind, key, path_field)
            files = [s.rfilename for s in (info.siblings or [])]
        elif script in files:
            raise ConfigError(f"{key}.revision: {path} at {revision} holds a loading script ({script}) that "
                              f"datasets>=4 refuses; set {key}.revision to {PARQUET_EXPORT} or null")
        partial = sorted({folder for f in files for folder in f.split("/")[:-1] if folder.startswith("partial-")})
        if partial:
            raise ConfigError(f"{key}: the parquet export of {path} is partial ({partial[0]}: the Hub converts only "
                              f"the first 5 GB); download the full data and set {key}.{path_field} to a local copy")
    return {"path": path, "requested_revision": revision, "branch": branch, "revision": info.sha, "local": False}
