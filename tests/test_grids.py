"""Tuning grids bracket their optimum: a best lr on the grid's edge widens the grid once more, and says so."""

from __future__ import annotations

import math

from heavytail.train.grids import beyond_edge, tune


def quadratic_in_log_lr(best_lr: float, diverge_above: float = math.inf):
    def run(point):
        if point["lr"] > diverge_above:
            return {"status": "diverged", "score": math.inf}
        return {"status": "ok", "score": (math.log10(point["lr"]) - math.log10(best_lr)) ** 2}
    return run


def lrs(*values):
    return [{"lr": v} for v in values]


def test_an_interior_best_is_kept_without_widening():
    results, choice = tune(lrs(1e-3, 3e-3, 1e-2), quadratic_in_log_lr(3e-3), "loss")
    assert choice["hparams"]["lr"] == 3e-3 and choice["widened_with"] == [] and not choice["best_on_edge"]
    assert len(results) == 3


def test_an_edge_best_widens_the_grid_by_its_own_ratio_and_finds_the_optimum():
    results, choice = tune(lrs(1e-3, 3e-3, 1e-2), quadratic_in_log_lr(3e-2), "loss")
    assert math.isclose(choice["widened_with"][0]["lr"], 1e-2 * 1e-2 / 3e-3)
    assert math.isclose(choice["hparams"]["lr"], 1e-2 * 1e-2 / 3e-3) and choice["best_on_edge"]  # still the edge
    _, low = tune(lrs(1e-3, 3e-3, 1e-2), quadratic_in_log_lr(2e-4), "loss")
    assert math.isclose(low["widened_with"][0]["lr"], 1e-3 * 1e-3 / 3e-3)


def test_a_diverged_neighbour_beyond_the_edge_brackets_the_best():
    results, choice = tune(lrs(1e-3, 3e-3, 1e-2), quadratic_in_log_lr(1.0, diverge_above=2e-2), "loss")
    assert choice["hparams"]["lr"] == 1e-2 and results[-1]["status"] == "diverged"
    assert not choice["best_on_edge"]  # a larger lr diverges: the best stable one is bracketed


def test_the_edge_is_judged_among_points_of_the_same_clip_threshold():
    results = [{"hparams": {"lr": lr, "clip_threshold": c}, "status": "ok", "score": 1.0}
               for lr in (1.0, 3.0, 10.0) for c in (0.25, 1.0)]
    # lr 3 is inside its grid; the threshold 1.0 is the top of its own grid (0.25, 1.0)
    assert beyond_edge(results, {"hparams": {"lr": 3.0, "clip_threshold": 1.0}}) == {"lr": 3.0, "clip_threshold": 4.0}
    assert beyond_edge(results, {"hparams": {"lr": 10.0, "clip_threshold": 0.25}}) == {"lr": 10.0 * 10.0 / 3.0,
                                                                                      "clip_threshold": 0.25}


def bowl_in_log_lr_and_clip(best_lr: float, best_clip: float):
    def run(point):
        return {"status": "ok", "score": (math.log10(point["lr"] / best_lr)) ** 2
                + (math.log10(point["clip_threshold"] / best_clip)) ** 2}
    return run


def grid(lr_values, clip_values):
    return [{"lr": lr, "clip_threshold": c} for lr in lr_values for c in clip_values]


def test_a_clip_threshold_on_its_grids_edge_widens_that_grid_too():
    # GClip at tiny scale: the best threshold was the grid's smallest (0.25 of 0.25, 1.0)
    results, choice = tune(grid([1.0, 3.0, 10.0], [0.25, 1.0]), bowl_in_log_lr_and_clip(3.0, 0.2), "loss")
    assert choice["widened_with"] == [{"clip_threshold": 0.25 * 0.25 / 1.0}]
    assert results[-1]["widened"] and results[-1]["hparams"] == {"lr": 3.0, "clip_threshold": 0.0625}
    assert choice["hparams"] == {"lr": 3.0, "clip_threshold": 0.25} and not choice["best_on_edge"]  # bracketed
    _, still = tune(grid([1.0, 3.0, 10.0], [0.25, 1.0]), bowl_in_log_lr_and_clip(3.0, 0.01), "loss")
    assert still["hparams"]["clip_threshold"] == 0.0625 and still["best_on_edge"]


def test_both_grids_widen_once_each_and_a_best_still_on_an_edge_says_so():
    results, choice = tune(grid([1.0, 3.0], [0.25, 1.0]), bowl_in_log_lr_and_clip(100.0, 100.0), "loss")
    assert choice["widened_with"] == [{"lr": 9.0}, {"clip_threshold": 4.0}]
    assert choice["hparams"] == {"lr": 9.0, "clip_threshold": 4.0} and choice["best_on_edge"]
    assert len(results) == 6


def test_an_interior_best_of_both_grids_adds_no_point():
    results, choice = tune(grid([1.0, 3.0, 10.0], [0.1, 0.25, 1.0]), bowl_in_log_lr_and_clip(3.0, 0.25), "loss")
    assert choice["widened_with"] == [] and not choice["best_on_edge"] and len(results) == 9
