"""Tuning grids that bracket their optimum: when the best lr (or GClip's clip threshold) of a grid sits on its
edge, that grid is widened once more by its own ratio, and the choice says whether its best is still on an edge."""

from __future__ import annotations

import math
from collections.abc import Callable

# how many times each grid is widened past an edge before its choice is reported as still on the edge
WIDEN_ROUNDS = 1


def finite(results: list[dict]) -> list[dict]:
    return [r for r in results if r["status"] == "ok" and math.isfinite(r["score"])]


def choose(results: list[dict], metric: str) -> dict:
    """The point with the lowest score (`metric`) among those that did not diverge."""
    ok = finite(results)
    if not ok:
        # every point diverged: fall back to the smallest step size, and say so
        best = min(results, key=lambda r: r["hparams"]["lr"])
        return {**best, "selected_by": "all grid points diverged; smallest lr kept"}
    return {**min(ok, key=lambda r: r["score"]), "selected_by": f"lowest final {metric}"}


# the tuned hyperparameters whose grids must bracket their best value, in the order they are widened
TUNED_KEYS = ("lr", "clip_threshold")


def beyond_edge(results: list[dict], best: dict) -> dict | None:
    """The next point past a grid's edge when `best` sits on it, for the first of TUNED_KEYS that does; None
    when every tuned value of `best` is inside its grid (or its grid has one value)."""
    found = _first_edge(results, best, TUNED_KEYS)
    return found[1] if found else None


def _first_edge(results: list[dict], best: dict, keys) -> tuple[str, dict] | None:
    """(key, next point) of the first of `keys` whose grid has `best` on its edge."""
    for key in keys:
        extra = _beyond_edge_of(results, best, key)
        if extra is not None:
            return key, extra
    return None


def _beyond_edge_of(results: list[dict], best: dict, key: str) -> dict | None:
    """Past the edge along `key`, judged among the points that share the best's other values (a diverged one
    included: a larger lr that diverges brackets the best from above): the edge value times the grid's ratio
    there. A grid of one value has no edge."""
    if key not in best["hparams"]:
        return None
    others = {k: v for k, v in best["hparams"].items() if k != key}
    values = sorted({r["hparams"][key] for r in results
                     if key in r["hparams"] and {k: v for k, v in r["hparams"].items() if k != key} == others})
    if len(values) < 2:  # a point added by widening another key: its grid along `key` is the whole grid's
        values = sorted({r["hparams"][key] for r in results if key in r["hparams"]})
    value = best["hparams"][key]
    if len(values) < 2 or values[0] < value < values[-1]:
        return None
    edge, neighbour = (values[0], values[1]) if value == values[0] else (values[-1], values[-2])
    return {**best["hparams"], key: edge * edge / neighbour}


def tune(points: list[dict], run: Callable[[dict], dict], metric: str) -> tuple[list[dict], dict]:
    """Run every point, then widen past an edge up to WIDEN_ROUNDS times per tuned key; (results, choice).
    `run(point)` returns {status, score, ...}; the choice records the values added (`widened_with`, one
    {key: value} per added point) and whether its best is still on an edge."""
    results = [{"hparams": point, **run(point)} for point in points]
    added: list[dict] = []
    rounds = dict.fromkeys(TUNED_KEYS, 0)
    while finite(results):
        best = choose(results, metric)
        # the first grid whose best sits on its edge and that may still widen
        widening = _first_edge(results, best, [k for k in TUNED_KEYS if rounds[k] < WIDEN_ROUNDS])
        if widening is None:
            break
        key, extra = widening
        rounds[key] += 1
        print(f"best {key} {best['hparams'][key]:g} is on the grid's edge: widening to {key} {extra[key]:g}",
              flush=True)
        results.append({"hparams": extra, "widened": True, **run(extra)})
        added.append({key: extra[key]})
    best = choose(results, metric)
    on_edge = bool(finite(results)) and beyond_edge(results, best) is not None
    return results, {**best, "widened_with": added, "best_on_edge": on_edge}
