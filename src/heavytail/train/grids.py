"""Learning-rate grids that bracket their optimum: when the best lr of a grid sits on its edge, the grid is
widened once more by the grid's own ratio, and the choice says whether its best is still on an edge."""

from __future__ import annotations

import math
from collections.abc import Callable

# how many times a grid is widened past an edge before its choice is reported as still on the edge
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


def beyond_edge(results: list[dict], best: dict) -> dict | None:
    """The next lr past the grid's edge when `best` sits on it (among the points tried at its clip threshold, a
    diverged one included: a larger lr that diverges brackets the best from above): the edge lr times the
    grid's ratio there; None when the best lr is inside the grid, or the grid has one lr."""
    clip = best["hparams"].get("clip_threshold")
    lrs = sorted({r["hparams"]["lr"] for r in results if r["hparams"].get("clip_threshold") == clip})
    lr = best["hparams"]["lr"]
    if len(lrs) < 2 or lrs[0] < lr < lrs[-1]:
        return None
    edge, neighbour = (lrs[0], lrs[1]) if lr == lrs[0] else (lrs[-1], lrs[-2])
    return {**best["hparams"], "lr": edge * edge / neighbour}


def tune(points: list[dict], run: Callable[[dict], dict], metric: str) -> tuple[list[dict], dict]:
    """Run every point, then widen past an edge up to WIDEN_ROUNDS times; (results, choice). `run(point)`
    returns {status, score, ...}; the choice records the lrs added and whether its best is still on an edge."""
    results = [{"hparams": point, **run(point)} for point in points]
    added = []
    for _ in range(WIDEN_ROUNDS):
        best = choose(results, metric)
        extra = beyond_edge(results, best) if finite(results) else None
        if extra is None:
            break
        print(f"best lr {best['hparams']['lr']:g} is on the grid's edge: widening to lr {extra['lr']:g}", flush=True)
        results.append({"hparams": extra, "widened": True, **run(extra)})
        added.append(extra["lr"])
    best = choose(results, metric)
    on_edge = bool(finite(results)) and beyond_edge(results, best) is not None
    return results, {**best, "widened_with": added, "best_on_edge": on_edge}
