"""One optimizer step of the loop: micro-batches, the recipe's gradient clipping, and one device sync a step.

The loss, the gradient norm and the task's statistics stay on the device until the step's end, where one
packed tensor carries them (and, under torchrun, the divergence and stop flags) in one all-reduce and one
copy to the host: a GPU step then waits for the host once, not once per statistic.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from heavytail.batches import split_batch
from heavytail.device import autocast_context


@dataclass
class StepOutcome:
    loss: float
    grad_norm: float
    stats: dict[str, float]
    diverged: bool
    stop: bool


def forward_backward(task, module, batch, accumulation: int, ddp, device: torch.device, precision: str,
                     scaler) -> tuple[list[torch.Tensor], dict[str, list[torch.Tensor]]]:
    """Gradients of the batch's mean loss, accumulated over micro-batches; the per-micro-batch loss and stats,
    still on the device."""
    losses, stats = [], {}
    micro_batches = split_batch(batch, accumulation)
    for i, micro in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        sync = contextlib.nullcontext() if (last or ddp is None) else ddp.no_sync()
        with sync, autocast_context(device, precision):
            loss, micro_stats = task.loss(module, micro)
        with sync:
            scaled = loss / accumulation
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        losses.append(loss.detach())
        for key, value in micro_stats.items():
            stats.setdefault(key, []).append(torch.as_tensor(value).detach())
    return losses, stats


def clip_gradients(model, optimizer, max_norm: float | None, scaler) -> torch.Tensor:
    """The global gradient norm before clipping (as a tensor); clipped to `max_norm` where the recipe clips."""
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip and measure true gradients, not scaled ones
    params = [p for p in model.parameters() if p.grad is not None]
    # clip_grad_norm_ returns the pre-clip norm; with max_norm=inf it only measures
    return torch.nn.utils.clip_grad_norm_(params, float("inf") if max_norm is None else float(max_norm))


def settle(losses, stats, grad_norm: torch.Tensor, accumulation: int, ctx, stop_requested: bool,
           scaled: bool) -> StepOutcome:
    """The step's numbers on the host, averaged over ranks, with the ranks' agreement on divergence and stop.
    Under fp16 loss scaling an inf gradient is a skipped step (the scaler lowers its scale), not divergence."""
    keys = sorted(stats)
    values = [*losses, grad_norm, *[v for k in keys for v in stats[k]]]
    packed = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=ctx.device) for v in values])
    flags = torch.tensor([float(stop_requested)], dtype=torch.float64, device=ctx.device)
    packed = torch.cat([packed, flags])
    ctx.all_reduce_sum(packed)
    host = packed.tolist()  # the step's one sync
    world = ctx.world_size
    loss = sum(v / world / accumulation for v in host[:len(losses)])
    norm = host[len(losses)] / world
    offset, averaged = len(losses) + 1, {}
    for key in keys:
        n = len(stats[key])
        averaged[key] = sum(v / world / accumulation for v in host[offset:offset + n])
        offset += n
    diverged = not math.isfinite(loss) or (not scaled and not math.isfinite(norm))
    return StepOutcome(loss, norm, averaged, diverged, host[-1] > 0)
