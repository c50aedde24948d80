"""Section 3.1, "Adam as adaptive clipping": RMSProp's effective step against clipped SGD's under the paper's map.

With beta1 = 0, RMSProp steps by h_Adam = lr / (eps + sqrt(beta2 v + (1 - beta2) g^2)) and clipped SGD by
h_clip = eta min(tau / |g|, 1). The paper sets eta = 2 lr / (eps + sqrt(beta2 v)) and
tau = (eps + sqrt(beta2 v)) / sqrt(1 - beta2) and claims h_clip / 2 <= h_Adam <= 2 h_clip.

Write s = sqrt(beta2 v), c = sqrt(1 - beta2) |g|. Then h_clip = 2 lr / max(eps + s, c) and

    h_Adam / h_clip = max(eps + s, c) / (2 (eps + sqrt(s^2 + c^2)))  in  [1/4, 1/2],

so the upper claim always holds, but the lower claim h_Adam >= h_clip / 2 holds only where the ratio is
exactly 1/2: g = 0, or eps = 0 and beta2 v = 0. Everywhere else it fails; the ratio reaches 1/4 at v = 0,
eps = sqrt(1 - beta2) |g|. Without the factor 2 in eta the two-sided factor-2 claim holds (ratio in [1/2, 1]).
"""

from __future__ import annotations

import numpy as np


def h_adam(lr, g, v, beta2, eps):
    """RMSProp's (Adam with beta1 = 0, no bias correction) effective step on gradient g with state v."""
    return lr / (eps + np.sqrt(beta2 * v + (1 - beta2) * np.square(g)))


def paper_mapping(lr, v, beta2, eps, step_factor=2.0):
    """(eta, tau) that section 3.1 assigns to clipped SGD; step_factor = 2 as printed."""
    base = eps + np.sqrt(beta2 * v)
    return step_factor * lr / base, base / np.sqrt(1 - beta2)


def h_clip(lr, g, v, beta2, eps, step_factor=2.0):
    """Clipped SGD's effective step eta min(tau / |g|, 1) under the paper's mapping."""
    eta, tau = paper_mapping(lr, v, beta2, eps, step_factor)
    absg = np.abs(g)
    return eta * np.where(absg > tau, tau / np.where(absg > 0, absg, 1.0), 1.0)


def step_ratio(g, v, beta2, eps, step_factor=2.0):
    """h_Adam / h_clip (independent of lr)."""
    return h_adam(1.0, g, v, beta2, eps) / h_clip(1.0, g, v, beta2, eps, step_factor)


def lower_claim_deficit(g, v, beta2, eps):
    """(1/2 - h_Adam / h_clip) times 2 (eps + sqrt(s^2 + c^2)), in cancellation-free form; > 0 iff the claim fails.

    If eps + s >= c it is sqrt(s^2 + c^2) - s = c^2 / (sqrt(s^2 + c^2) + s); otherwise it is
    eps + sqrt(s^2 + c^2) - c = eps + s^2 / (sqrt(s^2 + c^2) + c).
    """
    s = np.sqrt(beta2 * v)
    c = np.sqrt(1 - beta2) * np.abs(g)
    hyp = np.hypot(s, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.where(c > 0, np.square(c) / (hyp + s), 0.0)
        second = eps + np.where(s > 0, np.square(s) / (hyp + c), 0.0)
    return np.where(eps + s >= c, first, second)


def lower_claim_fails(g, v, beta2, eps):
    """Exact failure region of h_Adam >= h_clip / 2: g != 0 and (eps > 0 or beta2 v > 0)."""
    return (np.asarray(g) != 0) & ((np.asarray(eps) > 0) | (np.asarray(beta2) * np.asarray(v) > 0))


def grid_check(points: int = 41) -> dict:
    """Ratio h_Adam / h_clip over a log grid of v / g^2, eps / |g| and beta2 (g = 1 without loss of generality)."""
    v = np.concatenate([[0.0], np.geomspace(1e-8, 1e8, points)])
    # eps > 0: with eps = 0 and beta2 v = 0 both steps are 0/0
    eps = np.geomspace(1e-10, 1e2, points)
    beta2 = np.array([0.0, 0.5, 0.9, 0.99, 0.999, 0.9999])
    vv, ee, bb = np.meshgrid(v, eps, beta2, indexing="ij")
    ratio = step_ratio(1.0, vv, bb, ee)
    ratio_unit = step_ratio(1.0, vv, bb, ee, step_factor=1.0)
    worst = np.unravel_index(np.argmin(ratio), ratio.shape)
    lower_ok = ratio >= 0.5 * (1 - 1e-12)
    adam_state = np.isclose(vv, 1.0)  # v = g^2: RMSProp's state after a run of equal gradients
    return {
        "grid_points": int(ratio.size),
        "ratio_min": float(ratio.min()),
        "ratio_max": float(ratio.max()),
        "upper_claim_holds_everywhere": bool(np.all(ratio <= 2.0)),
        "lower_claim_holds_share_float": float(lower_ok.mean()),
        "lower_claim_fails_share_exact": float((lower_claim_deficit(1.0, vv, bb, ee) > 0).mean()),
        "worst_point": {"g": 1.0, "v": float(vv[worst]), "eps": float(ee[worst]), "beta2": float(bb[worst]),
                        "ratio": float(ratio[worst])},
        "analytic_counterexample": counterexample(),
        "ratio_at_v_equals_g2_eps_1e-8_beta2_0.999": float(step_ratio(1.0, 1.0, 0.999, 1e-8)),
        "ratio_range_without_factor_2": [float(ratio_unit.min()), float(ratio_unit.max())],
        "ratio_range_when_v_equals_g2": [float(ratio[adam_state].min()), float(ratio[adam_state].max())],
    }


def counterexample(beta2: float = 0.999, g: float = 1.0, lr: float = 1.0) -> dict:
    """The worst case v = 0, eps = sqrt(1 - beta2) |g|, where h_Adam = h_clip / 4."""
    eps = float(np.sqrt(1 - beta2) * abs(g))
    eta, tau = paper_mapping(lr, 0.0, beta2, eps)
    return {"lr": lr, "g": g, "v": 0.0, "beta2": beta2, "eps": eps, "eta": float(eta), "tau": float(tau),
            "h_adam": float(h_adam(lr, g, 0.0, beta2, eps)), "h_clip": float(h_clip(lr, g, 0.0, beta2, eps)),
            "ratio": float(step_ratio(g, 0.0, beta2, eps))}
