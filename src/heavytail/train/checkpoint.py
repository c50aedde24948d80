"""Atomic training checkpoints and the RNG states that make a resumed run bitwise equal to an uninterrupted one.

Checkpoints hold tensors and plain Python values only, and are read with `weights_only=True` onto the CPU:
a checkpoint left in a shared cluster folder cannot run code when loaded, and a restore never depends on the
device the run computes on (the model's and optimizer's `load_state_dict` move their state where it belongs;
the RNG states must stay CPU byte tensors, which `map_location=<cuda>` would break).
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from heavytail.errors import ConfigError
from heavytail.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 2  # 2: RNG states as tensors and lists, loaded with weights_only=True


def rng_state() -> dict:
    """The Python, NumPy, torch (and CUDA) generators' states, as tensors and plain lists."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss],
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """torch.save to a temporary file beside `path`, then rename: a kill mid-write leaves the old checkpoint."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict | None:
    """The checkpoint at `path` on the CPU (None when there is none); tensors and plain values only."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConfigError(f"{path} holds more than tensors and plain values (written by heavytail before "
                          "checkpoint format 2, or by someone else); delete it to start the run over") from exc
