"""The optimizer of a run: BERT's weight-decay split, the registry's optimizer, the schedule's warm-up."""

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


def build_optimizer_for(model: nn.Module, train_config: dict) -> torch.optim.Optimizer:
    from heavytail.optim import build_optimizer

    setting = train_config["optimizer"]
    hparams = {k: v for k, v in setting.items() if k != "name"}
    if isinstance(hparams.get("betas"), list):
        hparams["betas"] = tuple(hparams["betas"])
    groups = param_groups(model, hparams.get("weight_decay"), train_config["weight_decay_exclude_1d"])
    return build_optimizer(setting["name"], groups, **hparams)
