"""Keep every Hugging Face cache inside the project (paths.hf_home), never in ~/.cache."""

from __future__ import annotations

import os
from pathlib import Path


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
