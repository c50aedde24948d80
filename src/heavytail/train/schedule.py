"""Learning-rate schedules as in BERT: linear warm-up, then linear (or cosine, step, constant) decay.

The schedule multiplies the base value of each scheduled key in every param group. By default only `lr` is
scheduled; `clip_threshold` can be driven too, for clipping methods whose threshold should follow the step size.
"""

from __future__ import annotations

import math

from heavytail.errors import ConfigError

DECAYS = ("linear", "cosine", "constant", "step")


def schedule_factor(step: int, total_steps: int, warmup_steps: int, decay: str = "linear",
                    final_fraction: float = 0.0, milestones: tuple[float, ...] = (), gamma: float = 0.1) -> float:
    """Multiplier of the base value at optimizer step `step` (0-based: the factor used by the step-th update).

    Warm-up ramps (step + 1) / warmup_steps, so the first update already moves; decay then goes from 1 to
    `final_fraction` at `total_steps`. `milestones` (fractions of total_steps) and `gamma` define "step" decay.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    if decay == "step":
        passed = sum(step >= int(m * total_steps) for m in milestones)
        return gamma ** passed
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if decay == "linear":
        shape = 1.0 - progress
    elif decay == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ConfigError(f"train.schedule.decay must be one of {', '.join(DECAYS)} (got {decay!r})")
    return final_fraction + (1.0 - final_fraction) * shape


class WarmupDecaySchedule:
    """Sets group[key] = base[key] * factor(step) for each scheduled key; its state is the step count."""

    def __init__(self, optimizer, total_steps: int, warmup_steps: int, decay: str = "linear",
                 final_fraction: float = 0.0, milestones=(), gamma: float = 0.1, keys: tuple[str, ...] = ("lr",)):
        if decay not in DECAYS:
            raise ConfigError(f"train.schedule.decay must be one of {', '.join(DECAYS)} (got {decay!r})")
        if not 0 <= warmup_steps <= total_steps:
            raise ConfigError(f"train.schedule warm-up must be between 0 and train.steps ({total_steps}); "
                              f"got {warmup_steps} steps")
        self.optimizer = optimizer
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.decay, self.final_fraction = decay, final_fraction
        self.milestones, self.gamma = tuple(milestones), gamma
        # keys absent from a group (e.g. clip_threshold for Adam) are simply not scheduled there
        self.base = [{k: g[k] for k in keys if g.get(k) is not None} for g in optimizer.param_groups]
        self.step_count = 0
        self._apply()

    def factor(self, step: int | None = None) -> float:
        step = self.step_count if step is None else step
        return schedule_factor(min(step, self.total_steps - 1), self.total_steps, self.warmup_steps, self.decay,
                               self.final_fraction, self.milestones, self.gamma)

    def _apply(self) -> None:
        factor = self.factor()
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            for key, value in base.items():
                group[key] = value * factor

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def current(self, key: str = "lr") -> float:
        return float(self.optimizer.param_groups[0].get(key, float("nan")))

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "base": self.base}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.base = state["step_count"], state["base"]
        self._apply()
