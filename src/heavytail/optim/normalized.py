"""Sign descent and normalised SGD with heavy-ball momentum, as Kunstner et al. (ICLR 2023) run them."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, _default_to_fused_or_foreach, _use_grad_for_differentiable

__all__ = ["SignDescent", "NormalizedSGD", "sign_descent", "normalized_sgd"]

NORMALIZE_MODES = ("tensor", "global")

# Kunstner et al.'s definitions: fKunstner/noise-sgd-adam-sign @ 06d813491f51fb48d8ad6d0fe4a204e5c218b7e3,
# explib/explib/optim/normalized_gd.py (SignSGD, NormalizedSGD, BlockNormalizedSGD, all on CopyOfSGD's
# momentum), run under the names SignDescent and NormalizedGD of explib/explib/optim/__init__.py.


class _MomentumOnDirection(Optimizer):
    """Shared argument checks and state: heavy-ball momentum on a direction computed from the gradient."""

    def __init__(
        self, params, lr: float, momentum: float, weight_decay: float, foreach: bool | None, **extra
    ) -> None:
        if isinstance(lr, Tensor) or not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum} (must be in [0, 1))")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            **extra,
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

    def _collect(self) -> list[tuple[dict, list[Tensor], list[Tensor], list[Tensor]]]:
        """(group, params, grads, momentum buffers) of every group that has a gradient."""
        pending = []
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            momentum_buffers: list[Tensor] = []
            self._init_group(group, params, grads, momentum_buffers)
            if params:
                pending.append((group, params, grads, momentum_buffers))
        return pending


class SignDescent(_MomentumOnDirection):
    r"""Sign descent with heavy-ball momentum on the signs (Kunstner et al. 2023's "SignDescent").

    For every parameter θ with gradient g_t (elementwise, sign(0) = 0)::

        θ   ← θ · (1 − γ·λ)              decoupled weight decay (λ = weight_decay)
        m_t = β·m_{t−1} + sign(g_t)       state "momentum_buffer", m_0 = 0
        θ   ← θ − γ · m_t

    with γ = lr and β = momentum. This is Kunstner et al.'s SignSGD (see the source note at the top of
    this module): the sign is taken of the raw gradient, and the momentum (torch SGD's heavy ball, no
    dampening) accumulates the signs. It is not Signum (sign of an EMA of gradients), which their code
    also holds but their experiments do not run. A steady sign moves a coordinate by γ/(1 − β) per step
    (10γ at β = 0.9), so lr is about 1/(1 − β) smaller than for an EMA-form momentum. Kunstner et al. use
    no weight decay (λ = 0, the default). ``momentum=0`` keeps no state: θ ← θ − γ·sign(g_t).

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate γ (required).
        momentum: β in [0, 1) (default 0.9, as in their momentum runs).
        weight_decay: decoupled weight decay λ (default 0).
        foreach: use the multi-tensor path (default None: torch's choice, foreach on CUDA).
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(params, lr, momentum, weight_decay, foreach)

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, params, grads, momentum_buffers in self._collect():
            sign_descent(
                params,
                grads,
                momentum_buffers,
                foreach=group["foreach"],
                lr=float(group["lr"]),
                momentum=group["momentum"],
                weight_decay=group["weight_decay"],
            )
        return loss


class NormalizedSGD(_MomentumOnDirection):
    r"""Normalised SGD with heavy-ball momentum on the normalised gradient (Kunstner et al. 2023).

    For every parameter θ with gradient g_t::

        θ   ← θ · (1 − γ·λ)              decoupled weight decay (λ = weight_decay)
        d_t = g_t / ‖g_t‖_p
        m_t = β·m_{t−1} + d_t             state "momentum_buffer", m_0 = 0
        θ   ← θ − γ · m_t

    with γ = lr, β = momentum and p = norm_type. ``normalize="global"`` (default) takes ‖g_t‖_p as one
    norm over every gradient of every param group, as in Kunstner et al.'s NormalizedSGD (their
    "NormalizedGD", p = 2), so the whole step has norm γ without momentum. ``normalize="tensor"`` takes
    each parameter's own norm, as in their BlockNormalizedSGD (whose default is p = 1; pass
    ``norm_type=1`` for it), so every tensor moves by γ. Both settings and p therefore apply to the whole
    optimizer: a param group may not override them. A zero norm gives a zero direction where their code
    divides by zero. The momentum is torch SGD's heavy ball with no dampening, as in their code (see the
    source note at the top of this module); they use no weight decay (λ = 0, the default).
    ``momentum=0`` keeps no state: θ ← θ − γ·g_t/‖g_t‖_p.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate γ (required).
        momentum: β in [0, 1) (default 0.9, as in their momentum runs).
        weight_decay: decoupled weight decay λ (default 0).
        normalize: "global" (one norm over all groups, default) or "tensor" (one norm per parameter).
        norm_type: order p > 0 of the norm, ``inf`` allowed (default 2).
        foreach: use the multi-tensor path (default None: torch's choice, foreach on CUDA).
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        normalize: str = "global",
        norm_type: float = 2.0,
        *,
        foreach: bool | None = None,
    ) -> None:
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"Invalid normalize value: {normalize!r} (must be 'tensor' or 'global')")
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or not norm_type > 0:
            raise ValueError(f"Invalid norm_type value: {norm_type!r} (must be a number > 0, inf allowed)")
        super().__init__(
            params, lr, momentum, weight_decay, foreach, normalize=normalize, norm_type=float(norm_type)
        )

    def add_param_group(self, param_group: dict) -> None:
        """Add a group; it may not set its own normalize or norm_type (one norm spans all groups)."""
        for key in ("normalize", "norm_type"):
            if key in param_group and param_group[key] != self.defaults[key]:
                raise ValueError(
                    f"Invalid {key} in a param group: {param_group[key]!r} "
                    f"(NormalizedSGD normalises every group alike; set {key} on the optimizer)"
                )
        super().add_param_group(param_group)

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        pending = self._collect()
        if not pending:
            return loss
        first = pending[0][0]
        # the global norm needs every group's gradient before any parameter moves
        total_norm = None
        if first["normalize"] == "global":
            foreach = first["foreach"]
            if foreach is None:
                _, foreach = _default_to_fused_or_foreach(
                    pending[0][1], differentiable=False, use_fused=False
                )
            all_grads = [g for _, _, grads, _ in pending for g in grads]
            total_norm = _total_norm(all_grads, first["norm_type"], foreach=foreach)
        for group, params, grads, momentum_buffers in pending:
            normalized_sgd(
                params,
                grads,
                momentum_buffers,
                total_norm,
                foreach=group["foreach"],
                lr=float(group["lr"]),
                momentum=group["momentum"],
                weight_decay=group["weight_decay"],
                normalize=group["normalize"],
                norm_type=group["norm_type"],
            )
        return loss


def sign_descent(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    foreach: bool | None = None,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """Functional sign descent; see :class:`SignDescent` for the maths."""
    if not params:
        return
    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    func = _multi_tensor_sign_descent if foreach else _single_tensor_sign_descent
    func(params, grads, momentum_buffers, lr=lr, momentum=momentum, weight_decay=weight_decay)


def normalized_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    total_norm: Tensor | None,
    foreach: bool | None = None,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    normalize: str,
    norm_type: float,
) -> None:
    """Functional normalised SGD; `total_norm` is the global norm when normalize is "global", else None."""
    if not params:
        return
    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    func = _multi_tensor_normalized_sgd if foreach else _single_tensor_normalized_sgd
    func(
        params,
        grads,
        momentum_buffers,
        total_norm,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        normalize=normalize,
        norm_type=norm_type,
    )


def _total_norm(grads: list[Tensor], norm_type: float, *, foreach: bool) -> Tensor:
    """‖g‖_p over all tensors: the p-norm of the per-tensor p-norms, on the first tensor's device."""
    device = grads[0].device
    if foreach:
        norms = [n.to(device) for n in torch._foreach_norm(grads, ord=norm_type)]
    else:
        norms = [torch.linalg.vector_norm(g, norm_type).to(device) for g in grads]
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)


def _safe_divisor(norm: Tensor) -> Tensor:
    # a zero norm means a zero gradient, and 0 / 1 = 0 is the step; no host sync, no 0/0
    return torch.where(norm > 0, norm, torch.ones_like(norm))


def _single_tensor_heavy_ball(param, direction, momentum_buffer, *, lr, momentum, weight_decay):
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)
    if momentum != 0:
        direction = momentum_buffer.mul_(momentum).add_(direction)
    param.add_(direction, alpha=-lr)


def _multi_tensor_heavy_ball(params, directions, momentum_buffers, *, lr, momentum, weight_decay):
    if weight_decay != 0:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
    if momentum != 0:
        torch._foreach_mul_(momentum_buffers, momentum)
        torch._foreach_add_(momentum_buffers, directions)
        directions = momentum_buffers
    torch._foreach_add_(params, directions, alpha=-lr)


def _single_tensor_sign_descent(params, grads, momentum_buffers, *, lr, momentum, weight_decay):
    for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
        buffer = momentum_buffers[i] if momentum != 0 else None
        _single_tensor_heavy_ball(
            param, torch.sign(grad), buffer, lr=lr, momentum=momentum, weight_decay=weight_decay
        )


def _multi_tensor_sign_descent(params, grads, momentum_buffers, *, lr, momentum, weight_decay):
    lists = [params, grads] + ([momentum_buffers] if momentum != 0 else [])
    grouped = Optimizer._group_tensors_by_device_and_dtype(lists)
    for (dev_params, dev_grads, *rest), _ in grouped.values():
        dev_buffers = rest[0] if rest else []
        directions = torch._foreach_sign(dev_grads)
        _multi_tensor_heavy_ball(
            dev_params, directions, dev_buffers, lr=lr, momentum=momentum, weight_decay=weight_decay
        )


def _single_tensor_normalized_sgd(
    params, grads, momentum_buffers, total_norm, *, lr, momentum, weight_decay, normalize, norm_type
):
    for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
        norm = (
            total_norm.to(grad.device) if normalize == "global" else torch.linalg.vector_norm(grad, norm_type)
        )
        buffer = momentum_buffers[i] if momentum != 0 else None
        _single_tensor_heavy_ball(
            param, grad / _safe_divisor(norm), buffer, lr=lr, momentum=momentum, weight_decay=weight_decay
        )


def _multi_tensor_normalized_sgd(
    params, grads, momentum_buffers, total_norm, *, lr, momentum, weight_decay, normalize, norm_type
):
    lists = [params, grads] + ([momentum_buffers] if momentum != 0 else [])
    grouped = Optimizer._group_tensors_by_device_and_dtype(lists)
    for (device, _), ((dev_params, dev_grads, *rest), _) in grouped.items():
        dev_buffers = rest[0] if rest else []
        if normalize == "global":
            directions = torch._foreach_div(dev_grads, _safe_divisor(total_norm.to(device)))
        else:
            norms = torch.stack(torch._foreach_norm(dev_grads, ord=norm_type))
            directions = torch._foreach_div(dev_grads, list(_safe_divisor(norms).unbind()))
        _multi_tensor_heavy_ball(
            dev_params, directions, dev_buffers, lr=lr, momentum=momentum, weight_decay=weight_decay
        )
