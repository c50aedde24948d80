"""Image classification on the shared engine: `python -m heavytail.train.classify --config <json> --out <dir>`.

The config is the vision section of the experiment plus `model` (a key of `models`), `optimizer` (a label of `optimizers`), `seed`,
`manifest` (the image manifest.json) and optionally `tuned_choice` (a tune stage's choice.json whose hparams
override the optimizer's) and `torch_threads`. Validation rows hold loss, top1 and top5; cross-entropy without
label smoothing. Run folder: metrics.jsonl, checkpoint.pt, result.json, run.json, resolved_config.json and
snapshots/step<N>.pt ({step, model state_dict, config}) at `snapshot_fractions` of training for the noise figures;
`model_from_snapshot(path)` rebuilds the model of any of them. Exit codes as heavytail.train.pretrain.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from heavytail.errors import ConfigError
from heavytail.io import content_digest, read_json
from heavytail.train.group_loss import GroupLoss

MODEL_KEYS = ("arch", "width", "stem_stride", "width_fraction", "hidden", "pool_size")
# the job's own keys beside the vision section; frequency_groups (optional) logs the training loss by class group
JOB_KEYS = ("model", "optimizer", "seed", "manifest", "tuned_choice", "frequency_groups")
REQUIRED = ("model", "optimizer", "seed", "manifest")


class ClassificationTask:
    """Task for the engine: a vision model, seeded batches of an ImageFolder, validation loss/top-1/top-5.

    With `class_groups` (class -> frequency group, heavytail.data.frequency), each step also logs every group's
    training loss: the class-imbalance analysis, whose control class-balanced images are.
    """

    def __init__(self, spec: dict, seed: int, train_batches_fn, val_batches_fn, class_groups=None):
        self.spec, self.seed = spec, seed
        self._train_batches, self._val_batches = train_batches_fn, val_batches_fn
        self.group_loss = GroupLoss(class_groups) if class_groups is not None else None

    def build_model(self):
        from heavytail.models.vision import build_vision_model

        return build_vision_model(self.spec)

    def train_batches(self, start_step: int, batch_size: int, rank: int, world_size: int):
        return self._train_batches(start_step, batch_size, rank, world_size)

    def loss(self, model, batch):
        images, labels = batch
        logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        stats = {"top1": (logits.argmax(1) == labels).float().mean()}
        if self.group_loss is not None:  # recomputed per image, detached: the step's loss stays as it was
            per_image = F.cross_entropy(logits.detach().float(), labels, reduction="none")
            stats.update(self.group_loss.stats(per_image, labels))
        return loss, stats

    def evaluate(self, model, ctx=None) -> dict:
        """Validation loss, top-1 and top-5; under torchrun each rank scores its share of the images."""
        device = next(model.parameters()).device
        nll, top1, top5, n = 0.0, 0.0, 0.0, 0
        groups = self.group_loss.zeros() if self.group_loss is not None else {}
        for images, labels in self._val_batches(ctx):
            images, labels = images.to(device), labels.to(device)
            logits = model(images).float()
            nll += float(F.cross_entropy(logits, labels, reduction="sum"))
            if self.group_loss is not None:
                self.group_loss.add_to(groups, F.cross_entropy(logits, labels, reduction="none"), labels)
            ranked = logits.topk(min(5, logits.shape[1]), dim=1).indices
            top1 += float((ranked[:, 0] == labels).sum())
            top5 += float((ranked == labels[:, None]).any(1).sum())
            n += len(labels)
        totals = {"nll": nll, "top1": top1, "top5": top5, "n": float(n), **groups}
        if ctx is not None:
            totals = ctx.sum_values(totals)
        metrics = {"loss": totals["nll"] / totals["n"], "top1": totals["top1"] / totals["n"],
                   "top5": totals["top5"] / totals["n"]}
        if self.group_loss is not None:  # each class group's validation loss
            metrics.update(self.group_loss.means(totals))
        return metrics


def resolve_optimizer(cfg: dict, model_cfg: dict) -> dict:
    """The optimizer setting of label `cfg["optimizer"]`, with the model's overrides and a tuned choice merged in."""
    label = cfg["optimizer"]
    if label not in cfg["optimizers"]:
        raise ConfigError(f"vision.optimizers has no entry {label!r} (entries: {', '.join(cfg['optimizers'])})")
    setting = {**cfg["optimizers"][label], **(model_cfg.get("optimizer_overrides") or {}).get(label, {})}
    if cfg.get("tuned_choice"):
        setting.update(read_json(cfg["tuned_choice"])["hparams"])
    return setting


def model_config(cfg: dict) -> dict:
    if cfg.get("model") not in cfg.get("models", {}):
        raise ConfigError(f"vision.models has no entry {cfg.get('model')!r} "
                          f"(entries: {', '.join(cfg.get('models', {}))})")
    return cfg["models"][cfg["model"]]


def input_size(model_cfg: dict, manifest: dict) -> int:
    """The square input size: the model's `image_size`, else the manifest's; at least the arch's minimum."""
    from heavytail.models.vision import min_input_size

    size = int(model_cfg.get("image_size") or manifest["image_size"][0])
    if size < min_input_size(model_cfg["arch"]):
        raise ConfigError(f"vision.models.{model_cfg['arch']}.image_size must be >= "
                          f"{min_input_size(model_cfg['arch'])} for {model_cfg['arch']} (got {size})")
    return size


def train_steps(model_cfg: dict, train_images: int) -> tuple[int, int]:
    """(total steps, steps per epoch): `steps` if set, else `epochs` full passes (last partial batch dropped)."""
    per_epoch = train_images // int(model_cfg["batch_size"])
    if per_epoch < 1:
        raise ConfigError(f"vision batch_size {model_cfg['batch_size']} exceeds the {train_images} training images")
    steps = model_cfg.get("steps") or int(round(float(model_cfg["epochs"]) * per_epoch))  # steps absent: epochs
    return int(steps), per_epoch


def train_config(cfg: dict, model_cfg: dict, manifest: dict, setting: dict, seed: int) -> dict:
    """Engine config of one vision run; `vision` carries what `model_from_snapshot` needs to rebuild the model."""
    train_images = sum(manifest["counts"]["train"].values())
    steps, per_epoch = train_steps(model_cfg, train_images)
    spec = {k: model_cfg[k] for k in MODEL_KEYS if k in model_cfg}
    spec.update(num_classes=len(manifest["classes"]), in_channels=int(manifest["channels"]))
    eval_every = min(steps, int(model_cfg.get("eval_every") or per_epoch))
    snapshots = sorted({int(round(f * steps)) for f in model_cfg.get("snapshot_fractions", [])})
    return {
        "steps": steps, "batch_size": int(model_cfg["batch_size"]), "seed": seed, "optimizer": setting,
        "schedule": model_cfg["schedule"], "log_every": min(steps, int(cfg["log_every"])),
        "eval_every": eval_every, "checkpoint_every": min(steps, int(model_cfg.get("checkpoint_every") or per_epoch)),
        "eval_at_start": True, "snapshot_steps": snapshots, "grad_clip_norm": None,
        # the standard ResNet recipe decays every weight, BatchNorm and biases included
        "weight_decay_exclude_1d": False, "device": cfg["device"],
        "precision": cfg["precision"], "micro_batch_size": model_cfg["micro_batch_size"],
        "vision": {"model": spec, "image_size": input_size(model_cfg, manifest), "mean": manifest["mean"],
                   "std": manifest["std"], "steps_per_epoch": per_epoch},
        # the images' identity: a rebuilt image folder makes the engine train again rather than reuse the run
        "task": {"manifest": content_digest(cfg["manifest"]) if cfg.get("manifest") else None,
                 **({"frequency_groups": int(cfg["frequency_groups"])} if cfg.get("frequency_groups") else {})},
    }


def build_task(cfg: dict, train_cfg: dict) -> ClassificationTask:
    """The task with its loader: whole splits in memory (`loader: memory`) or DataLoader workers."""
    from heavytail.data import image_batches as B

    vision, seed, manifest_path = train_cfg["vision"], int(train_cfg["seed"]), cfg["manifest"]
    size, mean, std = vision["image_size"], vision["mean"], vision["std"]
    eval_batch = int(cfg["eval_batch_size"])
    if cfg["loader"] == "memory":
        pad = int(cfg["crop_padding"])
        train = B.MemoryImages(*B.load_split_tensors(manifest_path, "train"), mean, std, size, pad)
        val = B.MemoryImages(*B.load_split_tensors(manifest_path, "val"), mean, std, size)

        def train_fn(start, batch_size, rank, world):
            return B.memory_train_batches(train, seed, start, batch_size, rank, world)

        def val_fn(ctx=None):
            return val.plain_batches(eval_batch, ctx.shard(len(val)) if ctx is not None else None)
    else:
        workers, decoder = int(cfg["num_workers"]), cfg["decoder"]

        def train_fn(start, batch_size, rank, world):
            # the GPU decodes the batch when asked to (the workers then only read the files)
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cfg["decode_on_device"] else None
            return B.worker_train_batches(manifest_path, seed, start, batch_size, rank, world, size, mean, std,
                                          workers, decoder=decoder, decode_device=device)

        loaders: dict = {}

        def val_fn(ctx=None):
            # one loader per shard, built once: its worker processes start once per run, not per evaluation
            key = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
            if key not in loaders:
                loaders[key] = B.worker_val_loader(manifest_path, eval_batch, size, mean, std, workers, decoder,
                                                   ctx.shard if ctx is not None else None)
            return iter(loaders[key])
    return ClassificationTask(vision["model"], seed, train_fn, val_fn, class_groups_of(cfg))


def class_groups_of(cfg: dict):
    """Frequency group of every class by its training count (the manifest's), or None without frequency_groups."""
    if not cfg.get("frequency_groups"):
        return None
    from heavytail.data.frequency import frequency_groups
    from heavytail.data.images import split_root

    manifest, _ = split_root(cfg["manifest"], "train")
    counts = [manifest["counts"]["train"].get(name, 0) for name in manifest["classes"]]
    return frequency_groups(counts, int(cfg["frequency_groups"]))


def write_snapshot_index(out_dir: str | Path, model_cfg: dict, train_cfg: dict) -> None:
    """snapshots/index.json: each snapshot fraction -> its file, so noise rules need not know the step count."""
    from heavytail.io import write_json

    steps = train_cfg["steps"]
    files = {str(f): f"step{int(round(f * steps))}.pt" for f in model_cfg.get("snapshot_fractions", [])}
    write_json(Path(out_dir) / "snapshots" / "index.json", {"steps": steps, "fractions": files})


def model_from_snapshot(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(model with the snapshot's weights, its engine config) of a snapshots/step<N>.pt or checkpoint.pt."""
    from heavytail.models.vision import build_vision_model
    from heavytail.train.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state is None:
        raise ConfigError(f"vision snapshot {path} does not exist (run train_vision for it first)")
    model = build_vision_model(state["config"]["vision"]["model"])
    model.load_state_dict(state["model"])
    return model, state["config"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="image classification on the shared training engine")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--out", required=True, help="run folder: metrics.jsonl, checkpoint.pt, run.json")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads of the job, shared by its processes")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the rule's gpu resource); 0 = the CPU. "
                        "Default: a GPU if one is there")
    args = parser.parse_args(argv)
    from heavytail.config import load_job_config, resolve_job_config
    from heavytail.data.images import split_root
    from heavytail.provenance import record_run
    from heavytail.train.distributed import join_job, shutdown_distributed
    from heavytail.train.engine import run_training
    from heavytail.train.pretrain import configure_threads

    try:
        cfg = resolve_job_config(load_job_config(args.config), "vision", JOB_KEYS, required=REQUIRED)
        configure_threads(args.threads)
        model_cfg = model_config(cfg)
        manifest, _ = split_root(cfg["manifest"], "train")
        seed = int(cfg["seed"])
        train_cfg = train_config(cfg, model_cfg, manifest, resolve_optimizer(cfg, model_cfg), seed)
        cfg = {**cfg, "train": train_cfg}
        task = build_task(cfg, train_cfg)
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    ctx = join_job(train_cfg["device"], args.gpus)
    if ctx.is_main:
        print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)
    record = record_run(args.out, cfg) if ctx.is_main else contextlib.nullcontext({})
    with record as run:
        if ctx.is_main:
            write_snapshot_index(args.out, model_cfg, train_cfg)
        result = run_training(task, train_cfg, args.out, ctx)
        run.update(status=result["status"], diverged_at_step=result["diverged_at_step"],
                   final_validation=result["final_validation"])
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
