"""Atomic training checkpoints and the RNG states that make a resumed run bitwise equal to an uninterrupted one."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from heavytail.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """torch.save to a temporary file beside `path`, then rename: a kill mid-write leaves the old checkpoint."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    # our own files: they hold numpy RNG states and plain dicts besides tensors
    return torch.load(path, map_location=map_location, weights_only=False)
