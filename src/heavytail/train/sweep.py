"""Fair tuning of one optimizer label, then its seeds: the rule every later-explanation job follows.

    result = tune_then_repeat(run, grid, seeds, out)

`run(lr, seed, folder)` trains one engine run into `folder` and returns {"status": "ok"|"diverged", "loss": final
loss}. Every lr of the grid runs on the first seed; the lowest final loss that did not diverge wins. A winner on
the grid's edge (no worse point on one side) widens the grid by one geometric step on that side, at most
WIDEN_LIMIT times; one still on the edge after that is flagged (`on_edge`). The other seeds then run at the winner.
Each run keeps its own resumable folder (`lr<lr>_seed<seed>`), so a killed job resumes where it stopped. Writes
`grid.json` (every point) and `choice.json` (the winner, the widening, the seed runs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from heavytail.io import write_json

WIDEN_LIMIT = 2


def run_name(lr: float, seed: int) -> str:
    return f"lr{lr:g}_seed{seed}"


def best_lr(results: dict[float, dict]) -> float | None:
    """The lr with the lowest finite final loss among runs that did not diverge; None when every one diverged."""
    finite = {lr: r["loss"] for lr, r in results.items() if r["status"] == "ok" and _finite(r["loss"])}
    return min(finite, key=finite.get) if finite else None


def edge_side(results: dict[float, dict]) -> str | None:
    """"low" / "high" when the best lr is the grid's smallest / largest (every point diverged: "low"), else None."""
    lrs = sorted(results)
    best = best_lr(results)
    if best is None or best == lrs[0]:
        return "low"
    return "high" if best == lrs[-1] else None


def widened_lr(lrs: list[float], side: str) -> float:
    """One geometric step beyond the grid's `side`, the step of the two points at that edge."""
    lrs = sorted(lrs)
    if len(lrs) < 2:
        raise ValueError("a grid needs at least two learning rates to be widened")
    return lrs[0] ** 2 / lrs[1] if side == "low" else lrs[-1] ** 2 / lrs[-2]


def tune_then_repeat(run: Callable[[float, int, Path], dict], grid: list[float], seeds: list[int], out: Path,
                     describe: dict | None = None, write: bool = True) -> dict:
    """Run the grid on seeds[0] (widened where its best is on an edge), then the other seeds at the winner;
    `write` False (the other processes of a data-parallel job) writes no file."""
    out = Path(out)
    first = int(seeds[0])
    results = {float(lr): run(float(lr), first, out / run_name(float(lr), first)) for lr in sorted(grid)}
    widened = []
    for _ in range(WIDEN_LIMIT):
        side = edge_side(results)
        if side is None:
            break
        lr = widened_lr(list(results), side)
        results[lr] = run(lr, first, out / run_name(lr, first))
        widened.append({"lr": lr, "side": side})
    best = best_lr(results)
    chosen = best if best is not None else min(results)
    on_edge = edge_side(results) is not None
    runs = [{"seed": first, **results[chosen], "path": str(out / run_name(chosen, first))}]
    for seed in seeds[1:]:
        folder = out / run_name(chosen, int(seed))
        runs.append({"seed": int(seed), **run(chosen, int(seed), folder), "path": str(folder)})
    points = [{"lr": lr, **results[lr], "path": str(out / run_name(lr, first))} for lr in sorted(results)]
    selected = ("lowest final loss" if best is not None else "every grid point diverged; smallest lr kept")
    choice = {**(describe or {}), "hparams": {"lr": chosen}, "selected_by": selected, "grid": [float(x) for x in grid],
              "widened": widened, "on_edge": on_edge, "points": _finite_json(points), "runs": _finite_json(runs)}
    if write:
        write_json(out / "grid.json", {**(describe or {}), "points": _finite_json(points)})
        write_json(out / "choice.json", choice)
    return choice


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _finite_json(obj):
    # JSON has no infinity or NaN: a diverged run's loss is written as null
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_json(v) for v in obj]
    return obj
