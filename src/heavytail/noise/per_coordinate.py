"""Per-coordinate gradient noise within one minibatch (Fig 6c): per-example gradients minus their mean.

For a fixed minibatch of B examples, the noise of example b at coordinate k is grad_k l_b - (1/B) sum_c grad_k l_c.
Per-example gradients come from `torch.func.vmap(grad(...))` over a `functional_call` of the model, in chunks
of `chunk_size` examples; when vmap cannot trace the model (data-dependent control flow, in-place batch-norm
updates) a plain loop of single-example backward passes computes the same numbers. Only a fixed random sample
of coordinates per parameter group is kept, so memory is O(chunk_size * d) while computing and
O(B * coordinates_per_group) afterwards.

`example_loss(forward, example)` must return the scalar loss of one example. `example` is that example with a
leading batch dimension of 1 (every tensor leaf of the minibatch pytree sliced to [b:b+1]) and `forward(...)`
calls the model. Per-example gradients assume examples do not interact, so use mode "eval" for models with
batch norm in training mode; with dropout on, vmap uses a different random mask per example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils._pytree import tree_map

from heavytail.errors import ConfigError
from heavytail.noise.groups import classify_parameters
from heavytail.noise.sampler import gradient_mode

ExampleLoss = Callable[[Callable, object], torch.Tensor]


@dataclass
class PerCoordinateNoise:
    """noise[group] is (B, k) per-example noise at the sampled coordinates; index[name] says which ones."""

    noise: dict[str, np.ndarray]
    index: dict[str, np.ndarray]
    method: str

    def all_coordinates(self) -> np.ndarray:
        """Every sampled coordinate of every example, flattened (for histograms and the tail index)."""
        return np.concatenate([v.reshape(-1) for v in self.noise.values()])


def per_coordinate_noise(model: nn.Module, example_loss: ExampleLoss, minibatch, *, batch_size: int,
                         coordinates_per_group: int = 10_000, groups: dict[str, str] | None = None,
                         mode: str = "train_frozen_bn", method: str = "auto", chunk_size: int = 8,
                         seed: int = 0) -> PerCoordinateNoise:
    """Per-example gradient noise of `batch_size` examples at up to `coordinates_per_group` coordinates per group.

    `method` is "vmap", "loop" or "auto" (vmap, falling back to the loop if vmap raises).
    """
    if method not in ("auto", "vmap", "loop"):
        raise ConfigError(f"per_coordinate_noise: method must be auto, vmap or loop (got {method!r})")
    if batch_size < 2:
        raise ConfigError(f"per_coordinate_noise: batch_size must be >= 2 to subtract a mean (got {batch_size})")
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}
    groups = classify_parameters(model) if groups is None else groups
    index = _sample_coordinates(named, groups, coordinates_per_group, seed)
    with gradient_mode(model, mode):
        torch.manual_seed(seed)
        if method != "loop":
            try:
                rows = _vmap_rows(model, example_loss, minibatch, batch_size, named, index, chunk_size)
                method = "vmap"
            except Exception:  # vmap refuses many models for many reasons; the loop handles all of them
                if method == "vmap":
                    raise
                method = "loop"
        if method == "loop":
            rows = _loop_rows(model, example_loss, minibatch, batch_size, named, index)
    per_name = {name: r - r.mean(axis=0, keepdims=True) for name, r in rows.items()}
    noise: dict[str, list[np.ndarray]] = {}
    for name, values in per_name.items():
        noise.setdefault(groups[name], []).append(values)
    return PerCoordinateNoise({g: np.concatenate(v, axis=1) for g, v in sorted(noise.items())}, index, method)


def _sample_coordinates(named: dict[str, torch.Tensor], groups: dict[str, str], per_group: int,
                        seed: int) -> dict[str, np.ndarray]:
    """Uniform sample without replacement of `per_group` flat coordinates within each group, split by parameter."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[str]] = {}
    for name in named:
        members.setdefault(groups[name], []).append(name)
    index = {}
    for names in members.values():
        sizes = np.array([named[n].numel() for n in names])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        chosen = np.sort(rng.choice(offsets[-1], size=min(per_group, offsets[-1]), replace=False))
        for j, name in enumerate(names):
            local = chosen[(chosen >= offsets[j]) & (chosen < offsets[j + 1])] - offsets[j]
            if len(local):
                index[name] = local
    return index


def _rows(minibatch, start: int, stop: int):
    return tree_map(lambda t: t[start:stop] if isinstance(t, torch.Tensor) else t, minibatch)


def _loop_rows(model, example_loss, minibatch, batch_size, named, index) -> dict[str, np.ndarray]:
    names = list(index)
    rows = {name: np.empty((batch_size, len(index[name]))) for name in names}
    params = [named[n] for n in names]
    for b in range(batch_size):
        grads = torch.autograd.grad(example_loss(model, _rows(minibatch, b, b + 1)), params, allow_unused=True)
        for name, p, g in zip(names, params, grads, strict=True):
            flat = torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
            rows[name][b] = flat[torch.as_tensor(index[name], device=p.device)].double().cpu().numpy()
    return rows


def _vmap_rows(model, example_loss, minibatch, batch_size, named, index, chunk_size) -> dict[str, np.ndarray]:
    from torch.func import functional_call, grad, vmap

    params = {n: p.detach() for n, p in named.items()}
    frozen = {n: p.detach() for n, p in model.named_parameters() if n not in named}
    buffers = {n: b for n, b in model.named_buffers()}
    picks = {n: torch.as_tensor(i, device=params[n].device) for n, i in index.items()}

    def loss_of(trainable, example):
        state = {**frozen, **buffers, **trainable}
        example = tree_map(lambda t: t.unsqueeze(0) if isinstance(t, torch.Tensor) else t, example)
        return example_loss(lambda *a, **k: functional_call(model, state, a, k), example)

    def picked_grad(example):
        g = grad(loss_of)(params, example)
        return {n: g[n].reshape(-1)[picks[n]] for n in picks}

    batched = vmap(picked_grad, randomness="different")
    chunks = []
    for start in range(0, batch_size, chunk_size):
        chunks.append(batched(_rows(minibatch, start, start + chunk_size)))
    return {n: torch.cat([c[n] for c in chunks]).double().cpu().numpy() for n in picks}
