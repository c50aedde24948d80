"""Which optimizer implementation training picks per device, and that the CPU pick leaves every number as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from heavytail.optim import OPTIMIZER_NAMES, ACClip
from heavytail.train import optimization
from heavytail.train.optimization import build_optimizer_for, implementation_flags

HPARAMS = {
    "sgd": {"lr": 0.05},
    "sgdm": {"lr": 0.05, "weight_decay": 1e-4},
    "adam": {"lr": 1e-3, "weight_decay": 1e-4},
    "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-6, "weight_decay": 0.01},
    "gclip": {"lr": 0.05, "clip_threshold": 1.0},
    "cclip": {"lr": 0.05, "clip_threshold": 0.1},
    "acclip": {"lr": 0.1, "betas": [0.9, 0.99], "eps": 1e-5, "weight_decay": 1e-3},
    "acclip_normalized": {"lr": 1e-3, "weight_decay": 1e-3},
    "sign_descent": {"lr": 1e-3},
    "normalized_sgd": {"lr": 1e-2},
}


def train_config(name: str, **extra) -> dict:
    return {"optimizer": {"name": name, **HPARAMS[name], **extra}, "weight_decay_exclude_1d": True}


class Model(nn.Module):
    """BERT's kinds of parameters at toy size, plus one tensor larger than a CPU foreach chunk (2^18) of odd size."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(331, 797)  # 263 807 elements: chunks split it off a vector boundary
        self.dense = nn.Linear(797, 13)
        self.norm = nn.LayerNorm(13)
        self.head = nn.Linear(13, 3)


def train(name: str, **extra) -> list[torch.Tensor]:
    """Six steps with a changing lr on seeded gradients; the final parameters."""
    torch.manual_seed(0)
    model = Model()
    optimizer = build_optimizer_for(model, train_config(name, **extra))
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen) * torch.where(torch.rand(p.shape, generator=gen) < 0.1, 20, 1)
        for group in optimizer.param_groups:
            group["lr"] = HPARAMS[name]["lr"] / (1 + step)
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def test_cuda_gets_fused_adam_adamw_and_acclip():
    for name in ("adam", "adamw", "acclip", "acclip_normalized"):
        assert implementation_flags(name, torch.device("cuda", 1)) == {"fused": True}
        assert implementation_flags(name, "cuda") == {"fused": True}
    for name in ("sgd", "sgdm", "gclip", "cclip", "sign_descent", "normalized_sgd"):
        assert implementation_flags(name, "cuda") == {}  # torch's default there: foreach


def test_cpu_gets_foreach_never_fused():
    for name in OPTIMIZER_NAMES:
        flags = implementation_flags(name, "cpu")
        assert not flags.get("fused"), name
    assert implementation_flags("adamw", "cpu") == {"foreach": True}
    assert implementation_flags("acclip", "cpu") == {"foreach": True}
    assert implementation_flags("sgdm", "cpu") == {}
    assert implementation_flags("adamw", "meta") == {}


def test_build_optimizer_for_passes_the_device_choice(monkeypatch):
    """On a (mocked) CUDA model the optimizers are built fused; on the CPU foreach; a setting's own flag wins."""
    model = Model()
    assert build_optimizer_for(model, train_config("adamw")).defaults["foreach"] is True
    assert build_optimizer_for(model, train_config("adamw")).defaults["fused"] is None
    monkeypatch.setattr(optimization, "model_device", lambda _: torch.device("cuda", 0))
    adamw = build_optimizer_for(model, train_config("adamw"))
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["fused"] is True
    assert len(adamw.param_groups) == 2 and adamw.param_groups[1]["weight_decay"] == 0.0
    acclip = build_optimizer_for(model, train_config("acclip"))
    assert type(acclip) is ACClip and acclip.defaults["fused"] is True and acclip.defaults["foreach"] is None
    assert build_optimizer_for(model, train_config("acclip", fused=False)).defaults["fused"] is False
    assert build_optimizer_for(model, train_config("sgdm")).defaults["foreach"] is None


@pytest.mark.parametrize("name", [n for n in OPTIMIZER_NAMES if implementation_flags(n, "cpu")])
def test_cpu_choice_gives_bitwise_the_default_numbers(name):
    """The CPU pick must not change a single bit of any run against torch's default (the for-loop)."""
    chosen = train(name)
    default = train(name, foreach=False)
    assert all(torch.equal(a, b) for a, b in zip(chosen, default, strict=True)), name
    torch.manual_seed(0)
    assert not torch.equal(chosen[0], Model().embedding.weight.detach())  # it trained
