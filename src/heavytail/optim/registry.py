"""Optimizers by config name: `build_optimizer(name, params, **hparams)`."""

from __future__ import annotations

import inspect
from functools import partial

import torch

from heavytail.optim.acclip import ACClip
from heavytail.optim.clip import CClip, GClip
from heavytail.optim.normalized import NormalizedSGD, SignDescent

# sgdm is torch's SGD with momentum 0.9 unless hparams say otherwise; acclip_normalized is ACClip with
# the Adam-like normaliser, while acclip is the paper's printed rule; sign_descent and normalized_sgd are
# Kunstner et al. (2023)'s, with heavy-ball momentum 0.9 unless hparams say otherwise.
_FACTORIES = {
    "sgd": torch.optim.SGD,
    "sgdm": partial(torch.optim.SGD, momentum=0.9),
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "gclip": GClip,
    "cclip": CClip,
    "acclip": partial(ACClip, normalize=False),
    "acclip_normalized": partial(ACClip, normalize=True),
    "sign_descent": SignDescent,
    "normalized_sgd": NormalizedSGD,
}
OPTIMIZER_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def build_optimizer(name: str, params, **hparams) -> torch.optim.Optimizer:
    """The optimizer registered as `name`, built on `params` with `hparams` as keyword arguments."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown optimizer {name!r}; known optimizers: {', '.join(OPTIMIZER_NAMES)}")
    factory = _FACTORIES[name]
    cls = factory.func if isinstance(factory, partial) else factory
    accepted = set(inspect.signature(cls).parameters) - {"params"}
    fixed = {"normalize"} if cls is ACClip else set()
    unknown = sorted(set(hparams) - (accepted - fixed))
    if unknown:
        raise ValueError(
            f"optimizer {name!r} does not take {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted - fixed))}"
        )
    if isinstance(factory, partial):
        hparams = {**factory.keywords, **hparams}
    if "betas" in hparams:  # YAML gives lists; torch wants a tuple
        hparams["betas"] = tuple(hparams["betas"])
    return cls(params, **hparams)
