"""ACClip's fused path: the update over a whole param group, compiled once by torch.compile (inductor).

Inductor fuses each tensor's update into one vectorised loop that reads p, g, m and a once and writes p, m
and a once (28 bytes per fp32 parameter, as torch's fused AdamW). Because every loop reads the same
coefficient tensor, inductor also fuses loops horizontally: on CPU up to 64 tensors (its max_fusion_size)
share one C++ function, so BERT-base's 206 tensors run as 3 calls. (On CUDA a Triton kernel cannot mix
sizes, so only same-size tensors can share one; `python -m heavytail.bench.optim --device cuda` measures it.)

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

# Every (alpha, normalize, dtype, param-group shapes) seen in a process is one compiled entry of the same code
# object; past dynamo's default limit of 8 a fullgraph compile is a hard error (e.g. one process training several
# models), so the fused path allows more. Each entry is compiled once and its guards are cheap to reject.
RECOMPILE_LIMIT = 64


@cache
def fused_kernel(alpha: float, normalize: bool):
    """The compiled update for one (alpha, normalize); every other hyperparameter is a runtime tensor."""

    def update(params, grads, exp_avgs, clip_moments, exp_avg_sqs, hyper: Tensor) -> None:
        # coefficients precomputed on the host, so the loop does no per-element scalar algebra; β·old + (1 − β)·new
        # as the paper writes it (lerp would add a per-element select)
        decay, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, lr = hyper.unbind()
        for i, (param, grad, exp_avg, clip_moment) in enumerate(
            zip(params, grads, exp_avgs, clip_moments, strict=True)
        ):
            m = beta1 * exp_avg + one_minus_beta1 * grad
            if alpha == 1.0:
                a = beta2 * clip_moment + one_minus_beta2 * grad.abs()
                threshold = a
            elif alpha == 2.0:
                a = beta2 * clip_moment + one_minus_beta2 * (grad * grad)
                threshold = a.sqrt()
            else:
                a = beta2 * clip_moment + one_minus_beta2 * grad.abs().pow(alpha)
                threshold = a.pow(1 / alpha)
            step = torch.clamp_max(threshold / (m.abs() + eps), 1.0) * m
            if normalize:
                v = beta2 * exp_avg_sqs[i] + one_minus_beta2 * (grad * grad)
                step = step / ((beta2 * v).sqrt() + eps)
                exp_avg_sqs[i].copy_(v)
            param.copy_(param * decay - lr * step)
            exp_avg.copy_(m)
            clip_moment.copy_(a)

    # dynamic=False: loops specialised to the model's shapes (dynamic-shape guards cost ~1 ms a call on CPU).
    # A Python loop, not torch._foreach_* ops: inductor turns a foreach add of a 0-d tensor into .item(), a
    # device sync on CUDA, and compiles 1.7x slower; it still fuses the loops horizontally (they share `hyper`).
    return torch.compile(update, fullgraph=True, dynamic=False)


def hyper_tensor(*, lr, beta1, beta2, eps, weight_decay, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The kernel's runtime coefficients, computed in float64 on the host and rounded once to `dtype`."""
    values = [1 - lr * weight_decay, beta1, 1 - beta1, beta2, 1 - beta2, eps, lr]
    hyper = torch.tensor(values, dtype=dtype)
    if device.type == "cuda":  # a pageable host-to-device copy would wait for the backward pass: pin it instead
        return hyper.pin_memory().to(device, non_blocking=True)
    return hyper.to(device)


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
        # a tensor, not python floats: a scheduler changing lr must not trigger a recompile;
        # float32 even for half-precision params, so lr and eps are not rounded to 8 mantissa bits
        hyper = hyper_tensor(
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            dtype=torch.float64 if dtype == torch.float64 else torch.float32,
            device=device,
        )
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            kernel(dev_params, dev_grads, dev_exp_avgs, dev_clip_moments, rest[0] if rest else [], hyper)
