"""Learning-rate tuning of one vision model's optimizer: `python -m heavytail.train.tune_vision --config <json>
--out results/<scale>/vision/tune/<model>/<optimizer>`.

The config is the vision section plus `model`, `optimizer` (a label of the model's optimizers) and `manifest`.
Every (model, label) is tuned alike: the grid is vision.tune.lr_factors times the label's lr (with the model's
overrides), each point a run of vision.tune.fraction of the model's steps (its schedule shrunk with it) from
seed vision.tune.seed; the lowest final validation top-1 error wins, and a best lr on the grid's edge widens
the grid once (heavytail.train.grids). Writes grid.json and choice.json, which train_vision merges in.
Runs under torchrun like train_vision (the points one after another).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.io import finite_json, write_json
from heavytail.provenance import record_run
from heavytail.train import grids

JOB_KEYS = ("model", "optimizer", "manifest")


def grid_points(cfg: dict, model_cfg: dict) -> list[dict]:
    from heavytail.train.classify import resolve_optimizer

    base = resolve_optimizer({**cfg, "tuned_choice": None}, model_cfg)["lr"]
    return [{"lr": float(base * factor)} for factor in cfg["tune"]["lr_factors"]]


def short_recipe(model_cfg: dict, steps: int, fraction: float) -> dict:
    """The model's recipe for a tuning run: `fraction` of its steps, no snapshots."""
    return {**model_cfg, "steps": max(1, int(round(fraction * steps))), "snapshot_fractions": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--out", required=True, help="tuning folder: grid.json, choice.json, one folder per point")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of the job, shared by its processes")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the rule's gpu resource); 0 = the CPU")
    args = parser.parse_args(argv)
    from heavytail.data.images import split_root
    from heavytail.train.classify import (
        build_task,
        model_config,
        resolve_optimizer,
        train_config,
        train_steps,
    )
    from heavytail.train.distributed import join_job, shutdown_distributed
    from heavytail.train.engine import run_training
    from heavytail.train.pretrain import configure_threads

    try:
        cfg = resolve_job_config(load_job_config(args.config), "vision", JOB_KEYS, required=JOB_KEYS)
        configure_threads(args.threads)
        model_cfg = model_config(cfg)
        if cfg["optimizer"] not in model_cfg["optimizers"]:
            raise ConfigError(f"vision.models.{cfg['model']}.optimizers has no label {cfg['optimizer']!r}")
        manifest, _ = split_root(cfg["manifest"], "train")
        steps, _ = train_steps(model_cfg, sum(manifest["counts"]["train"].values()))
        recipe = short_recipe(model_cfg, steps, float(cfg["tune"]["fraction"]))
        points = grid_points(cfg, model_cfg)
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    ctx = join_job(cfg["device"], args.gpus)
    out, seed, label = Path(args.out), int(cfg["tune"]["seed"]), cfg["optimizer"]
    if ctx.is_main:
        print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)

    def run_point(point: dict) -> dict:
        setting = {**resolve_optimizer({**cfg, "tuned_choice": None}, model_cfg), **point}
        train_cfg = train_config(cfg, recipe, manifest, setting, seed)
        point_dir = out / f"lr{point['lr']:g}"
        if ctx.is_main:
            print(f"tune {cfg['model']} {label} lr {point['lr']:g} for {train_cfg['steps']} steps", flush=True)
        result = run_training(build_task(cfg, train_cfg), train_cfg, point_dir, ctx, keep_checkpoint=False)
        final = result["final_validation"] or {}
        error = 1.0 - final["top1"] if result["status"] == "ok" and "top1" in final else math.inf
        return {"status": result["status"], "score": error, "validation_top1": final.get("top1"),
                "validation_loss": final.get("loss"), "path": str(point_dir)}

    with record_run(out, cfg) if ctx.is_main else contextlib.nullcontext({}) as run:
        results, best = grids.tune(points, run_point, "validation top-1 error")
        if ctx.is_main:
            grid = {"model": cfg["model"], "optimizer": label, "steps": recipe["steps"], "seed": seed,
                    "points": results}
            write_json(out / "grid.json", finite_json(grid))
            write_json(out / "choice.json", finite_json({"optimizer": label, **best}))
            run.update(choice=best["hparams"], widened_with=best["widened_with"], best_on_edge=best["best_on_edge"])
            print(f"choice for {cfg['model']} {label}: {json.dumps(best['hparams'])} ({best['selected_by']})",
                  flush=True)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
