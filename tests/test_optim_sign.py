"""SignDescent and NormalizedSGD (Kunstner et al. 2023), tested against a plain reference like the paper's optimizers."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from heavytail.optim import OPTIMIZER_NAMES, NormalizedSGD, SignDescent, build_optimizer

# two groups of several shapes (a scalar included); group 1 also holds a parameter that never gets a gradient
SHAPES = [[(5,), (3, 4)], [(2, 3, 2), ()]]
STEPS = 30


# ---------------------------------------------------------------- reference (float64, Kunstner et al.'s form)


def reference_step(params, grads, lrs, buffers, *, direction, momentum, weight_decay, normalize, norm_type):
    """One step: direction of the raw gradient, then torch SGD's heavy ball (first buffer = the direction)."""
    flat = torch.cat([g.flatten() for group in grads for g in group if g is not None])
    global_norm = torch.linalg.vector_norm(flat, norm_type)
    for group_params, group_grads, lr in zip(params, grads, lrs, strict=True):
        for i, (p, g) in enumerate(zip(group_params, group_grads, strict=True)):
            if g is None:
                continue
            if direction == "sign":
                d = torch.sign(g)
            else:
                norm = global_norm if normalize == "global" else torch.linalg.vector_norm(g, norm_type)
                d = torch.zeros_like(g) if norm == 0 else g / norm
            key = (id(group_params), i)
            if momentum != 0:
                buffers[key] = d.clone() if key not in buffers else momentum * buffers[key] + d
                d = buffers[key]
            p.mul_(1 - lr * weight_decay)
            p.sub_(lr * d)


# ---------------------------------------------------------------- the harness


def initial_params():
    gen = torch.Generator().manual_seed(0)
    groups = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for shapes in SHAPES]
    return groups, torch.randn(4, generator=gen, dtype=torch.float64)


def step_grads(step, groups):
    """A shifted normal with a few large coordinates and some exact zeros (sign(0) = 0)."""
    gen = torch.Generator().manual_seed(1000 + step)
    out = []
    for group in groups:
        grads = []
        for p in group:
            g = torch.randn(p.shape, generator=gen, dtype=p.dtype) + 0.3
            g = g * torch.where(torch.rand(p.shape, generator=gen, dtype=p.dtype) < 0.1, 20.0, 1.0)
            g = torch.where(torch.rand(p.shape, generator=gen, dtype=p.dtype) < 0.1, 0.0, g)
            grads.append(g)
        out.append(grads)
    return out


def scheduled_lr(step, base):
    return base / (1 + 0.05 * step)


def run_optimizer(cls, kwargs, group1_lr, steps=STEPS):
    """Train two groups (plus an empty one) for `steps` under a decaying lr; return the final parameters."""
    groups, frozen = initial_params()
    leaves = [[p.clone().requires_grad_() for p in group] for group in groups]
    frozen_leaf = frozen.clone().requires_grad_()
    opt = cls(
        [{"params": leaves[0]}, {"params": leaves[1] + [frozen_leaf], "lr": group1_lr}, {"params": []}],
        **kwargs,
    )
    bases = [g["lr"] for g in opt.param_groups]
    for t in range(steps):
        for group, base in zip(opt.param_groups, bases, strict=True):
            group["lr"] = scheduled_lr(t, base)
        for leaf_group, grad_group in zip(leaves, step_grads(t, groups), strict=True):
            for leaf, g in zip(leaf_group, grad_group, strict=True):
                leaf.grad = g
        opt.step()
    assert torch.equal(frozen_leaf.detach(), frozen) and frozen_leaf not in opt.state
    return [p.detach() for group in leaves for p in group]


def run_reference(kwargs, group1_lr, direction, steps=STEPS):
    groups, _ = initial_params()
    params = [[p.clone() for p in group] for group in groups]
    hyper = {"momentum": 0.9, "weight_decay": 0.0, "normalize": "global", "norm_type": 2.0}
    hyper.update({k: v for k, v in kwargs.items() if k != "lr"})
    buffers: dict = {}
    for t in range(steps):
        lrs = [scheduled_lr(t, kwargs["lr"]), scheduled_lr(t, group1_lr)]
        reference_step(params, step_grads(t, groups), lrs, buffers, direction=direction, **hyper)
    return [p for group in params for p in group]


def assert_all_close(actual, expected, **tol):
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, **tol)


CASES = [
    pytest.param(SignDescent, {"lr": 0.01, "momentum": mom, "weight_decay": wd}, id=f"sign-mom{mom}-wd{wd}")
    for mom in (0.9, 0.0)
    for wd in (0.0, 0.1)
] + [
    pytest.param(
        NormalizedSGD,
        {"lr": 0.1, "momentum": mom, "weight_decay": wd, "normalize": mode, "norm_type": p},
        id=f"normalized-{mode}-p{p}-mom{mom}-wd{wd}",
    )
    for mode in ("global", "tensor")
    for p in (2.0, 1.0, math.inf)
    for mom, wd in ((0.9, 0.0), (0.0, 0.1))
]


def direction_of(cls):
    return "sign" if cls is SignDescent else "normalized"


# ---------------------------------------------------------------- paths against the reference


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("cls,kwargs", CASES)
def test_matches_reference(cls, kwargs, foreach):
    actual = run_optimizer(cls, {**kwargs, "foreach": foreach}, group1_lr=kwargs["lr"] / 2)
    expected = run_reference(kwargs, kwargs["lr"] / 2, direction_of(cls))
    assert_all_close(actual, expected, rtol=1e-11, atol=1e-13)
    assert not torch.equal(actual[0], initial_params()[0][0][0])  # it moved


@pytest.mark.parametrize("cls,kwargs", CASES)
def test_foreach_equals_single_tensor_path(cls, kwargs):
    runs = [run_optimizer(cls, {**kwargs, "foreach": fe}, group1_lr=kwargs["lr"] / 2) for fe in (False, True)]
    assert_all_close(*runs, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
def test_normalized_global_norm_spans_groups_and_tensor_norm_does_not(foreach):
    """Gradients 3 and 4 in two groups: one global norm 5 gives (−0.6, −0.8); per tensor gives (−1, −1)."""
    for normalize, expected in (("global", [-0.6, -0.8]), ("tensor", [-1.0, -1.0])):
        a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        opt = NormalizedSGD(
            [{"params": [a]}, {"params": [b]}], lr=1.0, momentum=0.0, normalize=normalize, foreach=foreach
        )
        a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
        opt.step()
        assert torch.allclose(torch.cat([a, b]).detach(), torch.tensor(expected)), normalize


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
def test_sign_descent_accumulates_signs_heavy_ball(foreach):
    """Steps of lr·sign(g), then lr·(β·sign(g_1) + sign(g_2)): momentum on the signs, not sign of an EMA."""
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = SignDescent([p], lr=0.5, momentum=0.5, foreach=foreach)
    p.grad = torch.tensor([2.0, -1e-8, 0.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.5, 0.5, 0.0], dtype=torch.float64))
    # Signum, sign(0.5·m + 0.5·g), would step +0.5 on coordinate 0 here; heavy ball on signs steps +0.25
    p.grad = torch.tensor([-100.0, -1.0, 3.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.25, 1.25, -0.5], dtype=torch.float64))


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("normalize", ["global", "tensor"])
def test_zero_gradient_gives_zero_step_not_nan(normalize, foreach):
    p, q = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = NormalizedSGD([p, q], lr=0.1, normalize=normalize, foreach=foreach)
    p.grad = torch.zeros(3)
    q.grad = torch.zeros(2) if normalize == "global" else torch.tensor([0.0, 2.0])
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3))
    expected_q = torch.ones(2) if normalize == "global" else torch.tensor([1.0, 0.9])
    assert torch.allclose(q.detach(), expected_q)


def test_momentum_zero_keeps_no_state():
    for cls in (SignDescent, NormalizedSGD):
        p = torch.zeros(3, requires_grad=True)
        opt = cls([p], lr=0.1, momentum=0.0)
        p.grad = torch.ones(3)
        opt.step()
        assert len(opt.state) == 0, cls.__name__


def test_step_closure_returns_loss():
    p = torch.ones(3, requires_grad=True)

    def closure():
        p.grad = None
        loss = (p**2).sum()
        loss.backward()
        return loss

    for opt in (SignDescent([p], lr=0.1), NormalizedSGD([p], lr=0.1)):
        assert opt.step(closure).item() > 0


# ---------------------------------------------------------------- state dict, as torch tests it


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("cls,kwargs", CASES[::2])
def test_state_dict_round_trip(cls, kwargs, foreach):
    groups, _ = initial_params()
    params = [p.clone().requires_grad_() for group in groups for p in group]
    opt = cls(params, **kwargs, foreach=foreach)

    def step_all(optimizer, tensors, step):
        for p, g in zip(tensors, [g for group in step_grads(step, groups) for g in group], strict=True):
            p.grad = g
        optimizer.step()

    for t in range(10):
        step_all(opt, params, t)
    params_copy = [p.detach().clone().requires_grad_() for p in params]
    opt_copy = cls(params_copy, **{**kwargs, "lr": 123.0}, foreach=foreach)  # the state dict restores lr
    opt_copy.load_state_dict(copy.deepcopy(opt.state_dict()))
    for t in range(10, 20):
        step_all(opt, params, t)
        step_all(opt_copy, params_copy, t)
    for a, b in zip(params, params_copy, strict=True):
        assert torch.equal(a, b)
    assert opt.state_dict()["param_groups"] == opt_copy.state_dict()["param_groups"]


# ---------------------------------------------------------------- invalid arguments

INVALID = [
    (SignDescent, {"lr": -1e-3}, "learning rate"),
    (SignDescent, {"lr": torch.tensor(0.1)}, "learning rate"),
    (SignDescent, {"lr": 0.1, "momentum": 1.0}, "momentum"),
    (SignDescent, {"lr": 0.1, "momentum": -0.1}, "momentum"),
    (SignDescent, {"lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
    (NormalizedSGD, {"lr": -0.1}, "learning rate"),
    (NormalizedSGD, {"lr": 0.1, "momentum": 1.5}, "momentum"),
    (NormalizedSGD, {"lr": 0.1, "weight_decay": -0.1}, "weight_decay"),
    (NormalizedSGD, {"lr": 0.1, "normalize": "layer"}, "normalize value: 'layer'"),
    (NormalizedSGD, {"lr": 0.1, "normalize": True}, "normalize value: True"),
    (NormalizedSGD, {"lr": 0.1, "norm_type": 0.0}, "norm_type value: 0.0"),
    (NormalizedSGD, {"lr": 0.1, "norm_type": -2}, "norm_type value: -2"),
    (NormalizedSGD, {"lr": 0.1, "norm_type": "fro"}, "norm_type value: 'fro'"),
]


@pytest.mark.parametrize(
    "cls,kwargs,named", INVALID, ids=[f"{c.__name__}-{'-'.join(k)}-{n.split()[0]}" for c, k, n in INVALID]
)
def test_invalid_argument_raises(cls, kwargs, named):
    with pytest.raises(ValueError, match=named):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("key,value", [("normalize", "tensor"), ("norm_type", 1.0)])
def test_param_group_may_not_override_the_norm(key, value):
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=f"Invalid {key} in a param group"):
        NormalizedSGD([{"params": [a]}, {"params": [b], key: value}], lr=0.1)
    same = NormalizedSGD([{"params": [a]}, {"params": [b], "normalize": "global", "norm_type": 2.0}], lr=0.1)
    assert len(same.param_groups) == 2


# ---------------------------------------------------------------- registry


def test_registry_builds_what_the_names_say():
    p = [torch.zeros(2, requires_grad=True)]
    assert {"sign_descent", "normalized_sgd"} <= set(OPTIMIZER_NAMES)
    sign = build_optimizer("sign_descent", p, lr=1e-4)
    assert type(sign) is SignDescent and sign.defaults["momentum"] == 0.9
    assert sign.defaults["weight_decay"] == 0.0
    norm = build_optimizer("normalized_sgd", p, lr=0.1)
    assert type(norm) is NormalizedSGD and norm.defaults["normalize"] == "global"
    assert norm.defaults["norm_type"] == 2.0 and norm.defaults["momentum"] == 0.9
    tensor = build_optimizer("normalized_sgd", p, lr=0.1, normalize="tensor", norm_type=float("inf"))
    assert tensor.defaults["normalize"] == "tensor" and tensor.defaults["norm_type"] == math.inf


def test_registry_rejects_hparams_the_optimizer_does_not_take():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="does not take betas"):
        build_optimizer("sign_descent", p, lr=1e-4, betas=[0.9, 0.99])
    with pytest.raises(ValueError, match="does not take normalize"):
        build_optimizer("sign_descent", p, lr=1e-4, normalize="tensor")
