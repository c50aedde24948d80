"""ACClip: adaptive coordinate-wise clipping (Zhang et al. 2020, Algorithm 2), built like torch's Adam."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, _default_to_fused_or_foreach, _use_grad_for_differentiable

from heavytail.optim.chunks import cache_sized_chunks

__all__ = ["ACClip", "acclip"]


class ACClip(Optimizer):
    r"""Adaptive coordinate-wise clipping, the paper's exact update rule.

    For every parameter :math:`\theta` with gradient :math:`g_t` (all operations elementwise)::

        θ   ← θ · (1 − γ·λ)                          decoupled weight decay, as torch's AdamW
        m_t = β1·m_{t−1} + (1 − β1)·g_t               state "exp_avg"
        a_t = β2·a_{t−1} + (1 − β2)·|g_t|^α           state "clip_moment" (holds τ^α)
        τ_t = a_t^{1/α}
        θ   ← θ − γ · min(τ_t / (|m_t| + ε), 1) · m_t

    with γ = lr, λ = weight_decay, m_0 = a_0 = 0 and **no bias correction**, as printed in the paper.
    Without bias correction m_t and a_t are both shrunk towards zero early on, by 1 − β1^t and 1 − β2^t.
    When β2 > β1 the clip threshold τ_t starts smaller than |m_t| (for α = 1 the clip factor starts near
    (1 − β2)/(1 − β1)) and grows towards 1 as a_t fills up: an implicit warm-up.

    The printed rule has no normaliser: a step is about γ·|g|, not γ as in Adam, so it needs a
    much larger lr than Adam. ``normalize=True`` adds the Adam-like normaliser that public
    implementations use, at the cost of a third state buffer "exp_avg_sq"::

        v_t = β2·v_{t−1} + (1 − β2)·g_t²
        θ   ← θ − γ · min(τ_t / (|m_t| + ε), 1) · m_t / (√(β2·v_t) + ε)

    State: "step" (a float32 scalar, kept for bookkeeping only), "exp_avg", "clip_moment"
    (and "exp_avg_sq" when normalized): exactly the bytes of torch's AdamW.

    Paths: ``foreach=True`` uses torch._foreach_* ops (one temporary per step);
    ``foreach=False`` loops over tensors. ``None`` picks as torch does (foreach on CUDA).
    ``fused=True`` runs the update through ``torch.compile`` (inductor emits one loop per tensor moving
    28 bytes per parameter, like fused AdamW, and fuses the loops of many tensors into one call). It
    compiles lazily on the first step of each param group, which takes minutes for BERT-base on a CPU; the
    compiled code lands in inductor's on-disk FX graph cache (``$TORCHINDUCTOR_CACHE_DIR``, default
    ``/tmp/torchinductor_$USER``; the pipeline sets it to ``resources/inductor_cache``), so later processes
    with the same shapes skip code generation. Training uses it on CUDA (``heavytail.train.optimization``).
    ``alpha`` and ``normalize`` are baked into the compiled code; lr, betas, eps and weight_decay
    are passed as tensor values, so a scheduler changing them does not recompile.
    ``fused=None`` (default) never compiles anything.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate γ (default 1e-4, the paper's BERT setting).
        betas: (β1, β2) for m and a (default (0.9, 0.99)).
        eps: ε added to |m| (default 1e-5).
        weight_decay: decoupled weight decay λ (default 1e-5).
        alpha: moment order α in [1, 2] of the clip threshold (default 1.0, the paper's choice).
        foreach: use the multi-tensor path (default None: torch's choice).
        fused: use the torch.compile path (default None: off).
        normalize: add the Adam-like normaliser (default False: the paper's rule).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-5,
        weight_decay: float = 1e-5,
        alpha: float = 1.0,
        foreach: bool | None = None,
        fused: bool | None = None,
        normalize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor):
            raise ValueError(f"Invalid learning rate: {lr} (ACClip takes a float lr)")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas} (expected two values)")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 1.0 <= alpha <= 2.0:
            raise ValueError(f"Invalid alpha value: {alpha} (must be in [1, 2])")
        if fused and foreach:
            raise ValueError(f"Invalid combination: fused={fused} and foreach={foreach} cannot both be True")
        defaults = {
            "lr": lr,
            "betas": (float(betas[0]), float(betas[1])),
            "eps": eps,
            "weight_decay": weight_decay,
            "alpha": float(alpha),
            "foreach": foreach,
            "fused": fused,
            "normalize": bool(normalize),
            "differentiable": False,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("fused", None)
            group.setdefault("normalize", False)
            group.setdefault("differentiable", False)

    def _init_group(self, group, params, grads, exp_avgs, clip_moments, exp_avg_sqs, state_steps):
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("ACClip does not support sparse gradients")
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                # a CPU float32 step, like torch's non-capturable Adam: same state bytes as AdamW
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["clip_moment"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["normalize"]:
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(state["exp_avg"])
            clip_moments.append(state["clip_moment"])
            if group["normalize"]:
                exp_avg_sqs.append(state["exp_avg_sq"])
            state_steps.append(state["step"])

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            exp_avgs: list[Tensor] = []
            clip_moments: list[Tensor] = []
            exp_avg_sqs: list[Tensor] = []
            state_steps: list[Tensor] = []
            self._init_group(group, params, grads, exp_avgs, clip_moments, exp_avg_sqs, state_steps)
            beta1, beta2 = group["betas"]
            acclip(
                params,
                grads,
                exp_avgs,
                clip_moments,
                exp_avg_sqs,
                state_steps,
                foreach=group["foreach"],
                fused=group["fused"],
                lr=float(group["lr"]),
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                alpha=group["alpha"],
                normalize=group["normalize"],
            )
        return loss


def acclip(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    clip_moments: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    foreach: bool | None = None,
    fused: bool | None = None,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    alpha: float,
    normalize: bool,
) -> None:
    """Functional ACClip; see :class:`ACClip` for the maths."""
    if not params:
        return
    if fused is None and foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    if fused:
        from heavytail.optim.fused import fused_acclip as func  # imports torch.compile machinery lazily
    elif foreach:
        func = _multi_tensor_acclip
    else:
        func = _single_tensor_acclip
    func(
        params,
        grads,
        exp_avgs,
        clip_moments,
        exp_avg_sqs,
        state_steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        alpha=alpha,
        normalize=normalize,
    )


# Both eager paths compute the inverse clip factor r = max((|m| + ε) / τ, 1), written as
# ((|m| + ε)^α / a)^(1/α) so that τ = a^(1/α) is never materialised, then θ ← θ − γ·m/r.
# r = 1/min(τ/(|m|+ε), 1) exactly in real arithmetic; a = 0 gives r = inf and a zero step, as it should.


def _single_tensor_acclip(
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
    for i, (param, grad, exp_avg, clip_moment) in enumerate(
        zip(params, grads, exp_avgs, clip_moments, strict=True)
    ):
        state_steps[i] += 1
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        if alpha == 1.0:
            work = grad.abs()
        elif alpha == 2.0:
            work = grad * grad
        else:
            work = grad.abs().pow_(alpha)
        clip_moment.lerp_(work, 1 - beta2)
        if normalize:
            exp_avg_sqs[i].lerp_(work if alpha == 2.0 else grad * grad, 1 - beta2)
        ratio = torch.abs(exp_avg, out=work).add_(eps)
        _divide_by_threshold_(ratio, clip_moment, alpha)
        ratio.clamp_min_(1)
        if normalize:
            ratio.mul_(exp_avg_sqs[i].mul(beta2).sqrt_().add_(eps))
        param.addcdiv_(exp_avg, ratio, value=-lr)


def _divide_by_threshold_(ratio: Tensor, clip_moment: Tensor, alpha: float) -> None:
    if alpha == 1.0:
        ratio.div_(clip_moment)
    elif alpha == 2.0:
        ratio.mul_(ratio).div_(clip_moment).sqrt_()
    else:
        ratio.pow_(alpha).div_(clip_moment).pow_(1 / alpha)


def _multi_tensor_acclip(
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
    tensor_lists = [params, grads, exp_avgs, clip_moments, state_steps] + ([exp_avg_sqs] if normalize else [])
    grouped = Optimizer._group_tensors_by_device_and_dtype(tensor_lists)
    for (dev_params, dev_grads, dev_exp_avgs, dev_clip_moments, dev_steps, *rest), _ in grouped.values():
        torch._foreach_add_(dev_steps, 1)
        lists = [dev_params, dev_grads, dev_exp_avgs, dev_clip_moments] + rest
        for (c_params, c_grads, c_exp_avgs, c_clip_moments, *c_rest), work, extra in cache_sized_chunks(
            lists, normalize
        ):
            if weight_decay != 0:
                torch._foreach_mul_(c_params, 1 - lr * weight_decay)
            torch._foreach_lerp_(c_exp_avgs, c_grads, 1 - beta1)
            _multi_tensor_clip_update(
                c_params,
                c_grads,
                c_exp_avgs,
                c_clip_moments,
                c_rest,
                work,
                extra,
                lr=lr,
                beta2=beta2,
                eps=eps,
                alpha=alpha,
                normalize=normalize,
            )


def _multi_tensor_clip_update(
    params, grads, exp_avgs, clip_moments, rest, work, extra, *, lr, beta2, eps, alpha, normalize
):
    # `work` holds |g|^α first, then the inverse clip factor; `extra` holds g² then √(β2·v) + ε
    if alpha == 2.0:
        _square_into(grads, work)
    else:
        torch.ops.aten._foreach_abs.out(grads, out=work)
        if alpha != 1.0:
            torch._foreach_pow_(work, alpha)
    torch._foreach_lerp_(clip_moments, work, 1 - beta2)
    if normalize:
        (exp_avg_sqs,) = rest
        if alpha != 2.0:
            _square_into(grads, extra)
        torch._foreach_lerp_(exp_avg_sqs, work if alpha == 2.0 else extra, 1 - beta2)
    torch.ops.aten._foreach_abs.out(exp_avgs, out=work)
    torch._foreach_add_(work, eps)
    if alpha == 1.0:
        torch._foreach_div_(work, clip_moments)
    elif alpha == 2.0:
        torch._foreach_mul_(work, work)
        torch._foreach_div_(work, clip_moments)
        torch._foreach_sqrt_(work)
    else:
        torch._foreach_pow_(work, alpha)
        torch._foreach_div_(work, clip_moments)
        torch._foreach_pow_(work, 1 / alpha)
    torch._foreach_clamp_min_(work, 1)
    if normalize:
        torch.ops.aten._foreach_mul.Scalar_out(exp_avg_sqs, beta2, out=extra)
        torch._foreach_sqrt_(extra)
        torch._foreach_add_(extra, eps)
        torch._foreach_mul_(work, extra)
    torch._foreach_addcdiv_(params, exp_avgs, work, value=-lr)


def _square_into(grads: list[Tensor], out: list[Tensor]) -> None:
    torch.ops.aten._foreach_mul.List_out(grads, grads, out=out)
