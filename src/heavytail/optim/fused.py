"""ACClip's fused path: the update compiled once by torch.compile (inductor) into one loop per tensor.

The compile is lazy (first fused step of a param group) and inductor's FX graph cache, on by default,
keeps the generated code on disk under ``$TORCHINDUCTOR_CACHE_DIR`` (default ``/tmp/torchinductor_$USER``;
the Snakemake pipeline points it at ``resources/inductor_cache`` so it survives reboots and is shared by
every job). A later process with the same parameter shapes loads the kernels from there and skips codegen.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer


@cache
def fused_kernel(alpha: float, normalize: bool):
    """The compiled update for one (alpha, normalize); every other hyperparameter is a runtime tensor."""

    def update(params, grads, exp_avgs, clip_moments, exp_avg_sqs, hyper: Tensor) -> None:
        lr, weight_decay, beta1, beta2, eps = hyper.unbind()
        for i, (param, grad, exp_avg, clip_moment) in enumerate(
            zip(params, grads, exp_avgs, clip_moments, strict=True)
        ):
            param.mul_(1 - lr * weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            if alpha == 1.0:
                clip_moment.lerp_(grad.abs(), 1 - beta2)
                threshold = clip_moment
            elif alpha == 2.0:
                clip_moment.lerp_(grad * grad, 1 - beta2)
                threshold = clip_moment.sqrt()
            else:
                clip_moment.lerp_(grad.abs().pow(alpha), 1 - beta2)
                threshold = clip_moment.pow(1 / alpha)
            clip_factor = torch.clamp_max(threshold / (exp_avg.abs() + eps), 1.0)
            step = clip_factor * exp_avg
            if normalize:
                exp_avg_sqs[i].lerp_(grad * grad, 1 - beta2)
                step = step / ((beta2 * exp_avg_sqs[i]).sqrt() + eps)
            param.sub_(lr * step)

    # dynamic=False: one kernel specialised to the model's shapes, which is what makes it fast
    return torch.compile(update, fullgraph=True, dynamic=False)


def fused_acclip(
    params,
    grads,
    exp_avgs,
    clip_moments,
    exp_avg_sqs,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    alpha,
    normalize,
):
    """Fused ACClip step: same signature as the eager paths in `heavytail.optim.acclip`."""
    tensor_lists = [params, grads, exp_avgs, clip_moments, state_steps] + ([exp_avg_sqs] if normalize else [])
    grouped = Optimizer._group_tensors_by_device_and_dtype(tensor_lists)
    kernel = fused_kernel(float(alpha), bool(normalize))
    for (device, dtype), (
        (dev_params, dev_grads, dev_exp_avgs, dev_clip_moments, dev_steps, *rest),
        _,
    ) in grouped.items():
        if not dtype.is_floating_point:
            raise RuntimeError(f"ACClip(fused=True) needs floating-point parameters, got {dtype}")
        torch._foreach_add_(dev_steps, 1)
        # tensor, not python floats: a scheduler changing lr must not trigger a recompile
        # float32 even for half-precision params, so lr and eps are not rounded to 8 mantissa bits
        hyper_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        hyper = torch.tensor([lr, weight_decay, beta1, beta2, eps], dtype=hyper_dtype, device=device)
        kernel(dev_params, dev_grads, dev_exp_avgs, dev_clip_moments, rest[0] if rest else [], hyper)
