"""Clipped SGD with momentum (Zhang et al. 2020, Algorithm 1): global-norm GClip and coordinate-wise CClip."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, _default_to_fused_or_foreach, _use_grad_for_differentiable

__all__ = ["GClip", "CClip"]


class _ClippedSGD(Optimizer):
    """Shared argument checks, state and step of GClip and CClip; subclasses pick how m is clipped."""

    coordinate_wise: bool = False

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        clip_threshold: float | None = None,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
    ) -> None:
        name = type(self).__name__
        if isinstance(lr, Tensor) or not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum} (must be in [0, 1))")
        if clip_threshold is None:
            raise ValueError(f"Invalid clip_threshold value: None ({name} needs a clip_threshold > 0)")
        if not 0.0 < clip_threshold:
            raise ValueError(f"Invalid clip_threshold value: {clip_threshold} (must be > 0)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "clip_threshold": clip_threshold,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "differentiable": False,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)

    def _init_group(self, group, params, grads, momentum_buffers):
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            params.append(p)
            grads.append(p.grad)
            if group["momentum"] != 0:
                state = self.state[p]
                if len(state) == 0:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                momentum_buffers.append(state["momentum_buffer"])

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # phase 1: every group's momentum, because GClip's norm spans all groups before any parameter moves
        pending = []
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            momentum_buffers: list[Tensor] = []
            self._init_group(group, params, grads, momentum_buffers)
            if not params:
                continue
            foreach = group["foreach"]
            if foreach is None:
                _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
            directions = _update_momentum(
                grads, momentum_buffers, momentum=group["momentum"], foreach=foreach
            )
            pending.append((group, params, directions, foreach))
        if not pending:
            return loss
        total_norm = None
        if not self.coordinate_wise:
            total_norm = _global_norm([d for *_, dirs, fe in pending for d in dirs], foreach=pending[0][3])
        # phase 2: move the parameters
        for group, params, directions, foreach in pending:
            apply = _multi_tensor_apply if foreach else _single_tensor_apply
            apply(
                params,
                directions,
                total_norm,
                lr=float(group["lr"]),
                clip_threshold=float(group["clip_threshold"]),
                weight_decay=group["weight_decay"],
            )
        return loss


class GClip(_ClippedSGD):
    r"""Clipped SGD with momentum, clipping by one global norm (Algorithm 1 of the paper).

    For all parameters θ of the optimizer, with gradients g_t::

        θ   ← θ · (1 − γ·λ)                       decoupled weight decay (λ = weight_decay)
        m_t = β·m_{t−1} + (1 − β)·g_t              state "momentum_buffer", m_0 = 0
        θ   ← θ − γ · min(τ / ‖m_t‖, 1) · m_t

    where ‖m_t‖ is one Euclidean norm over every parameter of every group, γ = lr, β = momentum and
    τ = clip_threshold (each group's own lr, τ and λ apply to its parameters; a scheduler may change them
    between steps). ``momentum=0`` keeps no state and gives plain clipped SGD, m_t = g_t.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate γ.
        momentum: β in [0, 1) (default 0.9).
        clip_threshold: τ > 0 (required).
        weight_decay: decoupled weight decay λ (default 0).
        foreach: use the multi-tensor path (default None: torch's choice, foreach on CUDA).
    """


class CClip(_ClippedSGD):
    r"""Clipped SGD with momentum, clipping each coordinate on its own.

    Same as :class:`GClip` except the clip is elementwise::

        θ   ← θ · (1 − γ·λ)
        m_t = β·m_{t−1} + (1 − β)·g_t
        θ   ← θ − γ · min(τ / |m_t|, 1) · m_t    (elementwise: each coordinate clamped to [−τ, τ])

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate γ.
        momentum: β in [0, 1) (default 0.9).
        clip_threshold: τ > 0 (required).
        weight_decay: decoupled weight decay λ (default 0).
        foreach: use the multi-tensor path (default None: torch's choice, foreach on CUDA).
    """

    coordinate_wise = True


def _update_momentum(
    grads: list[Tensor], momentum_buffers: list[Tensor], *, momentum: float, foreach: bool
) -> list[Tensor]:
    """m ← β·m + (1 − β)·g in place; returns the directions to clip (the gradients when β = 0)."""
    if momentum == 0:
        return grads
    if foreach:
        grouped = Optimizer._group_tensors_by_device_and_dtype([momentum_buffers, grads])
        for (dev_buffers, dev_grads), _ in grouped.values():
            torch._foreach_lerp_(dev_buffers, dev_grads, 1 - momentum)
    else:
        for buf, grad in zip(momentum_buffers, grads, strict=True):
            buf.lerp_(grad, 1 - momentum)
    return momentum_buffers


def _global_norm(directions: list[Tensor], *, foreach: bool) -> Tensor:
    device = directions[0].device
    if foreach:
        norms = [n.to(device) for n in torch._foreach_norm(directions)]
    else:
        norms = [torch.linalg.vector_norm(d).to(device) for d in directions]
    return torch.linalg.vector_norm(torch.stack(norms))


# GClip multiplies by the tensor min(τ/‖m‖, 1) (no host sync); CClip divides by max(|m|/τ, 1),
# which equals min(τ/|m|, 1) and gives a zero step where m = 0.


def _single_tensor_apply(params, directions, total_norm, *, lr, clip_threshold, weight_decay):
    scale = None if total_norm is None else torch.clamp_max(clip_threshold / total_norm, 1.0)
    for param, direction in zip(params, directions, strict=True):
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        if scale is None:
            ratio = direction.abs().div_(clip_threshold).clamp_min_(1)
            param.addcdiv_(direction, ratio, value=-lr)
        else:
            param.add_(direction * scale.to(param.device), alpha=-lr)


def _multi_tensor_apply(params, directions, total_norm, *, lr, clip_threshold, weight_decay):
    scale = None if total_norm is None else torch.clamp_max(clip_threshold / total_norm, 1.0)
    grouped = Optimizer._group_tensors_by_device_and_dtype([params, directions])
    for (device, _), ((dev_params, dev_directions), _) in grouped.items():
        if weight_decay != 0:
            torch._foreach_mul_(dev_params, 1 - lr * weight_decay)
        if scale is None:
            ratio = torch._foreach_abs(dev_directions)
            torch._foreach_div_(ratio, clip_threshold)
            torch._foreach_clamp_min_(ratio, 1)
            torch._foreach_addcdiv_(dev_params, dev_directions, ratio, value=-lr)
        else:
            scaled = torch._foreach_mul(dev_directions, scale.to(device))
            torch._foreach_add_(dev_params, scaled, alpha=-lr)
