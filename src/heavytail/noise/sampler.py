"""Two-pass, O(d)-memory sampler of gradient-noise norms ||g_i - grad f(x)||, overall and per parameter group.

Pass 1 averages N_mean minibatch gradients into one buffer per parameter: the estimate of grad f(x).
Pass 2 draws N_samples further minibatches and records ||g_i - grad f(x)|| for each, overall and per group.
No gradient is ever stored: a post-accumulate-grad hook folds each parameter's gradient into the buffers the
moment backward produces it and frees it, so the sampler holds the mean buffer (plus one block-sum buffer
when `block_size` is set) and never a full set of `.grad` tensors. Parameters that backward does not reach
have gradient zero and are accounted for as such. With `coordinates`, the noise vectors of the first
`coordinate_rows` pass-2 minibatches are also recorded at those flat indices (Fig 6c, heavytail.noise.coordinates).

Modes (how dropout and batch norm behave while gradients are sampled):
  * "train_frozen_bn" (default): `model.train()`, so dropout is on and batch norm normalises with the
    minibatch's own statistics, exactly as in a training step; batch-norm running statistics are frozen
    (momentum 0) so the model is the same point x for every sample and is returned unchanged.
  * "train": plain `model.train()`; running statistics drift during the measurement.
  * "eval": `model.eval()`: no dropout, batch norm uses its running statistics (at initialisation these are
    0 and 1, which is not what training sees).
The model's own modes and batch-norm momenta are restored afterwards; `.grad` is left as None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from heavytail.errors import ConfigError
from heavytail.noise.groups import classify_parameters

MODES = ("train_frozen_bn", "train", "eval")
LossFn = Callable[[nn.Module, object], torch.Tensor]


@dataclass
class NoiseNorms:
    """Noise norms from one measurement; `group_*` dicts are keyed by parameter group."""

    norms: np.ndarray
    group_norms: dict[str, np.ndarray]
    mean_gradient_norm: float
    group_mean_gradient_norms: dict[str, float]
    n_mean: int
    n_samples: int
    mode: str
    block_size: int | None = None
    block_norms: np.ndarray = field(default_factory=lambda: np.empty(0))
    group_block_norms: dict[str, np.ndarray] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    coordinates: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def gradient_mode(model: nn.Module, mode: str = "train_frozen_bn") -> Iterator[nn.Module]:
    """Put `model` in one of MODES for the duration of the block, then restore its flags and BN momenta."""
    if mode not in MODES:
        raise ConfigError(f"noise mode must be one of {', '.join(MODES)} (got {mode!r})")
    flags = [(m, m.training) for m in model.modules()]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    model.train(mode != "eval")
    if mode == "train_frozen_bn":
        for m in norms:
            m.momentum = 0.0  # running = 1 * running + 0 * batch: bit-identical, batch statistics still used
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if tracked is not None and mode == "train_frozen_bn":
                m.num_batches_tracked.copy_(tracked)


def sample_noise_norms(model: nn.Module, loss_fn: LossFn, batch_source: Iterable, *, n_mean: int, n_samples: int,
                       mode: str = "train_frozen_bn", groups: dict[str, str] | None = None,
                       block_size: int | None = None, coordinates: dict[str, np.ndarray] | None = None,
                       coordinate_rows: int = 0, seed: int = 0, progress_every: int = 0) -> NoiseNorms:
    """Estimate grad f from `n_mean` minibatches, then return the noise norms of `n_samples` further ones.

    `loss_fn(model, batch)` returns the scalar minibatch loss (it moves the batch to the model's device).
    `batch_source` is iterated in order and re-iterated when exhausted (a shuffling DataLoader gives fresh
    minibatches each epoch). Pass-2 minibatches should be independent of the pass-1 ones: if the same batches
    come back, their noise vectors sum to about zero, which shrinks block sums and biases the block-sum index. `groups` maps parameter names to group labels (default: `classify_parameters`).
    With `block_size` K1, the norms of sums of K1 consecutive noise vectors are recorded as well, for
    `tail_index_of_block_sums`. `coordinates` maps parameter names to flat indices recorded, for the first
    `coordinate_rows` noise vectors, into `NoiseNorms.coordinates[name]` (rows x indices).
    """
    if n_mean < 1 or n_samples < 1:
        raise ConfigError(f"noise sampler: n_mean and n_samples must be >= 1 (got {n_mean}, {n_samples})")
    if block_size is not None and not 2 <= block_size <= n_samples:
        raise ConfigError(f"noise sampler: block_size must be in [2, n_samples] (got {block_size})")
    coordinates = coordinates or {}
    coordinate_rows = min(coordinate_rows, n_samples) if coordinates else 0
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("noise sampler: the model has no trainable parameters")
    groups = classify_parameters(model) if groups is None else groups
    missing = [name for name, _ in named if name not in groups]
    if missing:
        raise ConfigError(f"noise sampler: groups has no label for parameter {missing[0]} (map every trainable "
                          "parameter name, or pass groups=None)")
    labels = sorted({groups[name] for name, _ in named})
    device = named[0][1].device
    group_index = torch.tensor([labels.index(groups[name]) for name, _ in named], device=device)
    params = [p for _, p in named]
    for p in params:
        p.grad = None
    torch.manual_seed(seed)
    batches = _cycle(batch_source, n_mean + n_samples)
    unknown = sorted(set(coordinates) - {name for name, _ in named})
    if unknown:
        raise ConfigError(f"noise sampler: coordinates name {unknown[0]}, which is not a trainable parameter")
    state = _SamplerState(params, block_size is not None,
                          [coordinates.get(name) for name, _ in named], coordinate_rows)
    seconds = {}
    with gradient_mode(model, mode), state.hooks():
        start = time.perf_counter()
        for i in range(n_mean):
            loss_fn(model, next(batches)).backward()
            _progress("mean", i + 1, n_mean, start, progress_every)
        state.finish_mean(n_mean)
        seconds["mean_pass"] = time.perf_counter() - start

        start = time.perf_counter()
        sq = torch.zeros(n_samples, len(params), dtype=torch.float64, device=device)
        block_sq = torch.zeros(n_samples // block_size if block_size else 0, len(params),
                               dtype=torch.float64, device=device)
        for i in range(n_samples):
            state.begin_sample(sq[i], i)
            loss_fn(model, next(batches)).backward()
            state.end_sample()
            if block_size and (i + 1) % block_size == 0 and (i + 1) // block_size <= len(block_sq):
                state.pop_block(block_sq[(i + 1) // block_size - 1])
            _progress("noise", i + 1, n_samples, start, progress_every)
        seconds["noise_pass"] = time.perf_counter() - start
    mean_sq = state.mean_squared_norms()
    total, per_group = _reduce(sq, group_index, labels)
    block_total, block_groups = _reduce(block_sq, group_index, labels)
    mean_total, mean_groups = _reduce(mean_sq[None], group_index, labels)
    dims = {"all": sum(p.numel() for p in params)}
    for name, p in named:
        dims[groups[name]] = dims.get(groups[name], 0) + p.numel()
    recorded = {name: c.cpu().numpy() for (name, _), c in zip(named, state.coordinates, strict=True) if c is not None}
    return NoiseNorms(norms=total, group_norms=per_group, mean_gradient_norm=float(mean_total[0]),
                      group_mean_gradient_norms={k: float(v[0]) for k, v in mean_groups.items()},
                      n_mean=n_mean, n_samples=n_samples, mode=mode, block_size=block_size,
                      block_norms=block_total, group_block_norms=block_groups, dims=dims, coordinates=recorded,
                      seconds=seconds)


class _SamplerState:
    """Per-parameter buffers and the hooks that fold each fresh gradient into them, then free it."""

    def __init__(self, params: list[torch.Tensor], keep_block_sums: bool, index: list[np.ndarray | None],
                 rows: int):
        self.params = params
        # float32 buffers for low-precision params: a mean over many minibatches must not round in bf16
        self.mean = [torch.zeros_like(p, dtype=_buffer_dtype(p)) for p in params]
        self.block = [torch.zeros_like(m) for m in self.mean] if keep_block_sums else None
        self.index = [None if i is None or not rows else torch.as_tensor(i, dtype=torch.long, device=p.device)
                      for i, p in zip(index, params, strict=True)]
        self.coordinates = [None if i is None else torch.zeros(rows, len(i), dtype=m.dtype, device=m.device)
                            for i, m in zip(self.index, self.mean, strict=True)]
        self.pass_ = "mean"
        self.fired = [False] * len(params)
        self.row: torch.Tensor | None = None
        self.sample = 0
        self.mean_sq: torch.Tensor | None = None

    @contextmanager
    def hooks(self) -> Iterator[None]:
        handles = [p.register_post_accumulate_grad_hook(self._hook(k)) for k, p in enumerate(self.params)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            for p in self.params:
                p.grad = None

    def _hook(self, k: int) -> Callable[[torch.Tensor], None]:
        def fold(p: torch.Tensor) -> None:
            grad = p.grad if p.grad.dtype == self.mean[k].dtype else p.grad.to(self.mean[k].dtype)
            p.grad = None
            if self.pass_ == "mean":
                self.mean[k].add_(grad)
                return
            noise = grad.sub_(self.mean[k])  # autograd hands .grad over exclusively, so in place is safe
            self.row[k] = torch.linalg.vector_norm(noise).double() ** 2
            if self.block is not None:
                self.block[k].add_(noise)
            self._record(k, noise)
            self.fired[k] = True
        return fold

    def _record(self, k: int, noise: torch.Tensor) -> None:
        if self.index[k] is not None and self.sample < len(self.coordinates[k]):
            self.coordinates[k][self.sample] = noise.reshape(-1)[self.index[k]]

    def finish_mean(self, n_mean: int) -> None:
        for m in self.mean:
            m.div_(n_mean)
        self.mean_sq = torch.stack([torch.linalg.vector_norm(m).double() ** 2 for m in self.mean])
        self.pass_ = "noise"

    def begin_sample(self, row: torch.Tensor, sample: int) -> None:
        self.row = row
        self.sample = sample
        self.fired = [False] * len(self.params)

    def end_sample(self) -> None:
        # a parameter backward never reached has gradient 0, so its noise is -mean
        for k, fired in enumerate(self.fired):
            if not fired:
                self.row[k] = self.mean_sq[k]
                if self.block is not None:
                    self.block[k].sub_(self.mean[k])
                self._record(k, -self.mean[k])

    def pop_block(self, row: torch.Tensor) -> None:
        for k, b in enumerate(self.block):
            row[k] = torch.linalg.vector_norm(b).double() ** 2
            b.zero_()

    def mean_squared_norms(self) -> torch.Tensor:
        return self.mean_sq


def _buffer_dtype(p: torch.Tensor) -> torch.dtype:
    return torch.float64 if p.dtype == torch.float64 else torch.float32


def _reduce(sq: torch.Tensor, group_index: torch.Tensor, labels: list[str]) -> tuple[np.ndarray, dict]:
    """Per-parameter squared norms (rows x params) -> overall norms and per-group norms, as float64 numpy."""
    by_group = torch.zeros(sq.shape[0], len(labels), dtype=torch.float64, device=sq.device)
    by_group.index_add_(1, group_index, sq)
    total = sq.sum(dim=1).sqrt().cpu().numpy()
    groups = by_group.sqrt().cpu().numpy()
    return total, {label: groups[:, j].copy() for j, label in enumerate(labels)}


def _cycle(source: Iterable, needed: int) -> Iterator:
    served = 0
    while True:
        fresh = 0
        for batch in source:
            fresh += 1
            served += 1
            yield batch
        if fresh == 0:
            raise ConfigError(f"noise sampler: batch_source ran out after {served} batches but "
                              f"n_mean + n_samples = {needed}; pass a re-iterable source (e.g. a DataLoader)")


def _progress(pass_: str, i: int, n: int, start: float, every: int) -> None:
    if every and (i % every == 0 or i == n):
        rate = i / max(time.perf_counter() - start, 1e-9)
        print(f"noise pass {pass_:5s} batch {i}/{n} {rate:.2f} it/s", flush=True)
