"""Learning-rate (and clipping-threshold) tuning for pretraining: short runs over a grid, in one process.

    python -m heavytail.train.tune --config <json> --out results/<scale>/pretrain/tune/<optimizer>

The config is the pretrain preset plus `optimizer` (a label of `optimizers`) and `mlm_data`. The grid is
`tune.lr_grid[label]` x `tune.clip_threshold_grid[label]` (if any) on `tune.model` for `tune.steps` steps.
Each point is an engine run in `<out>/lr<lr>[_clip<tau>]/` (resumable); the best final validation MLM loss
wins (a diverged point never does). Writes `grid.json` (every point) and `choice.json` (the winner's hparams,
which `pretrain --config {..., "tuned_choice": <choice.json>}` merges into the optimizer setting).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.io import finite_json, write_json
from heavytail.provenance import record_run
from heavytail.train import grids

JOB_KEYS = ("optimizer", "mlm_data", "long_mlm_data", "corpus", "tokenizer")


def grid_points(cfg: dict, label: str) -> list[dict]:
    """The hparam overrides to try for optimizer `label`, in grid order."""
    tune = cfg.get("tune") or {}
    lrs = (tune.get("lr_grid") or {}).get(label)
    if not lrs:
        raise ConfigError(f"pretrain.tune.lr_grid has no entry for {label!r}; add one, or use the optimizer "
                          "untuned (its config values are then final)")
    clips = (tune.get("clip_threshold_grid") or {}).get(label) or [None]
    points = []
    for lr, clip in itertools.product(lrs, clips):
        point = {"lr": float(lr)}
        if clip is not None:
            point["clip_threshold"] = float(clip)
        points.append(point)
    return points


def point_name(point: dict) -> str:
    name = f"lr{point['lr']:g}"
    if "clip_threshold" in point:
        name += f"_clip{point['clip_threshold']:g}"
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tune one optimizer's lr (and clip threshold) for pretraining")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the rule's gpu resource); 0 = the CPU. "
                        "Default: a GPU if one is there")
    parser.add_argument("--out", required=True, help="tuning folder: grid.json, choice.json, one folder per point")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_job_config(load_job_config(args.config), "pretrain", JOB_KEYS, required=("optimizer", "mlm_data"))
        label = cfg["optimizer"]
        points = grid_points(cfg, label)
        tune = cfg["tune"]
        model = tune.get("model") or cfg["base_model"]
        if model not in cfg["models"]:
            raise ConfigError(f"pretrain.tune.model {model!r} is not a key of pretrain.models")
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    from heavytail.train.distributed import join_job
    from heavytail.train.engine import run_training
    from heavytail.train.mlm_task import (
        MLMPretrainTask,
        bert_arch,
        ensure_mlm_data,
        load_mlm_data,
        long_phase_of,
        train_config,
    )
    from heavytail.train.pretrain import configure_threads

    configure_threads(args.threads)
    ctx = join_job(cfg["train"]["device"], args.gpus)  # one process runs the whole grid
    out = Path(args.out)
    print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)
    with record_run(out, cfg) as run:
        ensure_mlm_data(cfg)
        data = load_mlm_data(cfg)
        seed, steps = int(tune["seed"]), int(tune["steps"])

        def run_point(point: dict) -> dict:
            setting = {**cfg["optimizers"][label], **point}
            point_dir = out / point_name(point)
            print(f"tune {label} {point_name(point)} on {model} for {steps} steps", flush=True)
            task = MLMPretrainTask(data, bert_arch(cfg, model), nsp=cfg["nsp"], variant=cfg["variant"], seed=seed,
                                   eval_batch_size=cfg["eval_batch_size"], export_hf=False, model_name=model,
                                   long_phase=long_phase_of(cfg, steps))
            train_cfg = train_config({**cfg, "model": model}, setting, seed, steps=steps)
            with record_run(point_dir, {**train_cfg, "model": model, "optimizer_label": label}) as point_run:
                result = run_training(task, train_cfg, point_dir, ctx, keep_checkpoint=False)
                point_run.update(status=result["status"], diverged_at_step=result["diverged_at_step"])
            final = result["final_validation"] or {}
            loss = final.get("mlm_loss", math.inf) if result["status"] == "ok" else math.inf
            print(f"tune {label} {point_name(point)}: {result['status']} validation MLM loss {loss:.4f}", flush=True)
            return {"status": result["status"], "diverged_at_step": result["diverged_at_step"], "score": loss,
                    "validation_mlm_loss": loss, "validation_mlm_accuracy": final.get("mlm_accuracy"),
                    "path": str(point_dir)}

        results, best = grids.tune(points, run_point, "validation MLM loss")
        grid = {"optimizer": label, "model": model, "steps": steps, "seed": seed,
                "unigram_loss": data.unigram_loss, "context_free_loss": data.context_free_loss, "points": results}
        write_json(out / "grid.json", finite_json(grid))
        write_json(out / "choice.json", finite_json({"optimizer": label, **best}))
        run.update(choice=best["hparams"], selected_by=best["selected_by"], widened_with=best["widened_with"],
                   best_on_edge=best["best_on_edge"])
        print(f"choice for {label}: {json.dumps(best['hparams'])} ({best['selected_by']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
