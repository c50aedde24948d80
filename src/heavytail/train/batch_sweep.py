"""One cell of the batch-size sweep (Kunstner et al. 2023): `python -m heavytail.train.batch_sweep --config <json> --out <dir>`.

The config is the pretrain section (less what the sweep does not read, heavytail.plan.explanations) plus
`optimizer` (a label), `optimizer_setting`, `batch_size`, `mlm_data` and `sweep` {steps, subset, micro_batch_size,
seeds, lr_grid}. The base model trains on a fixed subset of `subset` training sequences, masked once (so that
a batch of the whole subset is the full batch: its gradient has no noise), with dropout off, for `steps` steps
at every batch size; each epoch visits the subset in a seeded random order. The lr is tuned on `lr_grid` by the
final loss on the whole subset (heavytail.train.sweep), then the other seeds run at the winner. Exit codes as
heavytail.train.pretrain.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.plan.explanations import PRETRAIN_OMITTED
from heavytail.provenance import record_run
from heavytail.train.mlm_task import MLMData, MLMPretrainTask, bert_arch, to_tensors, train_config

JOB_KEYS = ("sweep", "optimizer", "optimizer_setting", "batch_size", "mlm_data", "batch_sizes", "noise")
SUBSET_SEED = 2023  # which training sequences form the subset, and their masks: the same for every run


class SubsetMLMTask(MLMPretrainTask):
    """MLM on a fixed, once-masked subset: seeded epochs over it; `evaluate` is the whole subset's loss."""

    def __init__(self, data: MLMData, arch: dict, subset: dict, seed: int, eval_batch_size: int = 256,
                 model_name: str | None = None):
        super().__init__(data, arch, nsp=False, variant="attention", seed=seed, eval_batch_size=eval_batch_size,
                         export_hf=False, model_name=model_name)
        self.subset = subset
        self.size = len(subset["input_ids"])

    def order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def train_batches(self, start_step: int, batch_size: int, rank: int, world_size: int):
        if self.size % batch_size:
            raise ConfigError(f"explanations.batch_size_sweep: batch size {batch_size} does not divide the subset "
                              f"of {self.size} sequences")
        per_epoch, local = self.size // batch_size, batch_size // world_size
        epoch, order = None, None
        for step in itertools.count(start_step):
            if step // per_epoch != epoch:
                epoch = step // per_epoch
                order = self.order(epoch)
            k = step % per_epoch
            rows = order[k * batch_size:(k + 1) * batch_size][rank * local:(rank + 1) * local]
            yield to_tensors({key: value[rows] for key, value in self.subset.items()})

    def evaluate(self, model, ctx=None) -> dict:
        """The training objective itself: the mean MLM loss over the whole subset (and its accuracy)."""
        device = next(model.parameters()).device
        nll = correct = count = 0.0
        share = ctx.shard(self.size) if ctx is not None else range(self.size)
        for start in range(share.start, share.stop, self.eval_batch_size):
            part = {k: v[start:min(start + self.eval_batch_size, share.stop)] for k, v in self.subset.items()}
            out = model(**{k: t.to(device) for k, t in to_tensors(part).items()})
            nll += float(out["mlm_loss"]) * float(out["mlm_count"])
            correct += float(out["mlm_correct"])
            count += float(out["mlm_count"])
        totals = {"nll": nll, "correct": correct, "count": count}
        if ctx is not None:
            totals = ctx.sum_values(totals)
        return {"loss": totals["nll"] / totals["count"], "mlm_accuracy": totals["correct"] / totals["count"]}


def fixed_subset(data: MLMData, size: int) -> dict:
    """`size` training sequences sampled across the split and masked once (heavytail.data.mlm's validation rule)."""
    from heavytail.data.mlm import fixed_validation

    return fixed_validation(data.train, data.spec, size, seed=SUBSET_SEED)


def sweep_arch(cfg: dict) -> dict:
    """The base model with dropout off: a full-batch step then has no source of noise at all."""
    return {**bert_arch(cfg, cfg["base_model"]), "dropout": 0.0}


def sweep_train_config(cfg: dict, lr: float, seed: int, world_size: int = 1) -> dict:
    """The engine config of one run: the pretraining recipe shrunk to the sweep's steps, at the cell's batch size."""
    sweep, batch = cfg["sweep"], int(cfg["batch_size"])
    steps = int(sweep["steps"])
    train = train_config({**cfg, "model": cfg["base_model"]}, {**cfg["optimizer_setting"], "lr": float(lr)}, seed,
                         steps=steps)
    train.update(batch_size=batch, micro_batch_size=micro_batch(sweep.get("micro_batch_size"), batch // world_size),
                 log_every=max(1, steps // 20), eval_every=max(1, steps // 5), checkpoint_every=steps, snapshot_steps=[])
    train["task"] = {**train["task"], "model": sweep_arch(cfg), "subset": int(sweep["subset"]),
                     "subset_seed": SUBSET_SEED}
    return train


def micro_batch(largest: int | None, local: int) -> int | None:
    """The largest micro-batch of at most `largest` that divides the per-process batch (None: no accumulation)."""
    if not largest or largest >= local:
        return None
    size = int(largest)
    while local % size:
        size -= 1
    return size


def load_cell(argv_config: str) -> dict:
    cfg = resolve_job_config(load_job_config(argv_config), "pretrain", JOB_KEYS, omitted=PRETRAIN_OMITTED,
                             required=("sweep", "mlm_data"))
    if cfg["base_model"] not in cfg["models"]:
        raise ConfigError(f"pretrain.base_model {cfg['base_model']!r} is not a key of pretrain.models")
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one (optimizer, batch size) cell of the batch-size sweep")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of the job")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given; 0 = the CPU. Default: a GPU if one is there")
    parser.add_argument("--out", required=True, help="the cell's folder: choice.json, grid.json, one folder per run")
    args = parser.parse_args(argv)
    try:
        cfg = load_cell(args.config)
        for key in ("optimizer", "optimizer_setting", "batch_size"):
            if key not in cfg:
                raise ConfigError(f"job config (batch-size sweep) is missing {key}")
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    from heavytail.train.distributed import join_job, shutdown_distributed
    from heavytail.train.engine import run_training
    from heavytail.train.pretrain import configure_threads
    from heavytail.train.sweep import tune_then_repeat

    configure_threads(args.threads)
    ctx = join_job(cfg["train"]["device"], args.gpus)
    out = Path(args.out)
    if ctx.is_main:
        print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)
    with record_run(out, cfg) if ctx.is_main else contextlib.nullcontext({}) as run_record:
        data = MLMData(cfg["mlm_data"], float(cfg["mask_probability"]), int(cfg["max_predictions_per_seq"]), 1)
        subset = fixed_subset(data, int(cfg["sweep"]["subset"]))

        def run(lr: float, seed: int, folder: Path) -> dict:
            task = SubsetMLMTask(data, sweep_arch(cfg), subset, seed, int(cfg["eval_batch_size"]), cfg["base_model"])
            if ctx.is_main:
                print(f"sweep {cfg['optimizer']} batch {cfg['batch_size']} lr {lr:g} seed {seed}", flush=True)
            result = run_training(task, sweep_train_config(cfg, lr, seed, ctx.world_size), folder, ctx,
                                  keep_checkpoint=False)
            final = result["final_validation"] or {}
            return {"status": result["status"], "loss": final.get("loss", float("nan")) if result["status"] == "ok"
                    else float("nan"), "accuracy": final.get("mlm_accuracy")}

        describe = {"optimizer": cfg["optimizer"], "batch_size": int(cfg["batch_size"]),
                    "subset": int(cfg["sweep"]["subset"]), "steps": int(cfg["sweep"]["steps"])}
        # every process trains every run (data-parallel); the first one writes the choice
        choice = tune_then_repeat(run, cfg["sweep"]["lr_grid"], cfg["sweep"]["seeds"], out, describe,
                                  write=ctx.is_main)
        run_record.update(choice=choice.get("hparams"), on_edge=choice.get("on_edge"))
        if ctx.is_main:
            print(f"choice for {cfg['optimizer']} at batch {cfg['batch_size']}: {choice['hparams']} "
                  f"({choice['selected_by']}{'; still on the grid edge' if choice['on_edge'] else ''})", flush=True)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
