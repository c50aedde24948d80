"""The optimizer of a run: BERT's weight-decay split, the registry's optimizer and implementation, the warm-up."""

from __future__ import annotations

import torch
from torch import nn


def warmup_steps_of(train_config: dict) -> int:
    schedule = train_config["schedule"]
    if schedule["warmup_steps"] is not None:
        return int(schedule["warmup_steps"])
    return int(round(float(schedule["warmup_fraction"]) * train_config["steps"]))


def param_groups(model: nn.Module, weight_decay: float | None, exclude_1d: bool) -> list[dict]:
    """BERT's split: biases and LayerNorm weights (every 1-D parameter) get no weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not exclude_1d or not weight_decay:
        return [{"params": params}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


# Which implementation each optimizer runs, by device type. CUDA: torch's fused Adam/AdamW kernels and ACClip's
# compiled path (one pass over p, g and two state buffers, where foreach makes about ten). CPU: the foreach paths,
# which give bitwise the for-loop's numbers there and are faster (AdamW's about 20 % on BERT-base); not torch's
# fused CPU kernels, which round differently, nor ACClip's compiled path, whose compile costs minutes on a CPU.
# Names not listed keep torch's default (foreach on CUDA, the for-loop on CPU).
_IMPLEMENTATION = {
    "cuda": {name: {"fused": True} for name in ("adam", "adamw", "acclip", "acclip_normalized")},
    "cpu": {name: {"foreach": True} for name in ("adam", "adamw", "acclip", "acclip_normalized")},
}


def implementation_flags(name: str, device: torch.device | str) -> dict:
    """The `foreach`/`fused` keyword arguments that optimizer `name` gets on `device` (empty: torch's default)."""
    return dict(_IMPLEMENTATION.get(torch.device(device).type, {}).get(name, {}))


def build_optimizer_for(model: nn.Module, train_config: dict) -> torch.optim.Optimizer:
    """The run's optimizer on the model's parameters; a setting's own `foreach`/`fused` overrides the device's choice."""
    from heavytail.optim import build_optimizer

    setting = train_config["optimizer"]
    hparams = {k: v for k, v in setting.items() if k != "name"}
    if isinstance(hparams.get("betas"), list):
        hparams["betas"] = tuple(hparams["betas"])
    if "foreach" not in hparams and "fused" not in hparams:
        hparams.update(implementation_flags(setting["name"], model_device(model)))
    groups = param_groups(model, hparams.get("weight_decay"), train_config["weight_decay_exclude_1d"])
    return build_optimizer(setting["name"], groups, **hparams)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
