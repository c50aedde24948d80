"""Model-family adapters for the noise entry point: a model, its loss and an independent batch stream.

A training run's job config (its `resolved_config.json`, or the config a training rule would pass) names the
family: stage `pretrain` is BERT masked-LM (variants attention, resnet_like, gaussian_input), stage `vision`
is image classification (ResNet, AlexNet). The adapters reuse the training tasks (`MLMPretrainTask`,
`ClassificationTask`), so the noise is measured on exactly the loss and the (augmented, masked) batches that
training steps see; only the batch seed differs (`seed` of the noise preset), so the measured batches are not
the training batches, and pass 1 and pass 2 of the sampler draw consecutive, disjoint steps of that stream.

Checkpoints: `<run>/snapshots/step<N>.pt` or `<run>/checkpoint.pt`; the job config is `<run>/resolved_config.json`.
"init" builds the model as the engine does (`seed_everything(seed)` then `build_model()`), so it equals the
step-0 snapshot of a run with that seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from heavytail.errors import ConfigError
from heavytail.io import read_json
from heavytail.noise.names import GAUSSIAN, TEXT_DATA_NAMES, bert_model_name

FAMILIES = ("bert", "vision")


@dataclass
class NoiseTarget:
    """What one measurement needs: the model at a point x, its loss, batch streams and what to call it."""

    model: nn.Module
    loss_fn: Callable[[nn.Module, object], torch.Tensor]
    stream: Callable[[int], Iterable]
    metadata: dict = field(default_factory=dict)


class BatchStream:
    """Re-iterable view of a task's seeded batches of `batch_size`, starting at step 0 each time it is iterated."""

    def __init__(self, batches: Callable[[int], Iterator], batch_size: int):
        self.batches, self.batch_size = batches, batch_size

    def __iter__(self) -> Iterator:
        return self.batches(self.batch_size)


def family_of(job: dict) -> str:
    """bert or vision, from the job config's stage (or, outside Snakemake, from its data key)."""
    stage = job.get("stage")
    if stage == "pretrain" or (stage is None and "mlm_data" in job):
        return "bert"
    if stage == "vision" or (stage is None and "manifest" in job):
        return "vision"
    raise ConfigError(f"noise: cannot tell the model family of a job config with stage {stage!r}; pass a pretrain "
                      "or vision job config (with `mlm_data` or `manifest`)")


def training_batch_size(job: dict) -> int:
    """The batch size a run trained with: pretrain `train.batch_size`, vision `models.<model>.batch_size`."""
    family = family_of(job)
    size = (job.get("train", {}).get("batch_size") if family == "bert"
            else job.get("models", {}).get(job.get("model"), {}).get("batch_size"))
    if not isinstance(size, int) or size < 2:
        where = "train.batch_size" if family == "bert" else f"models.{job.get('model')}.batch_size"
        raise ConfigError(f"noise: batch size 'train' needs the run's {where} >= 2 in its job config (got {size!r})")
    return size


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder of `<run>/checkpoint.pt` or `<run>/snapshots/step<N>.pt`."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "snapshots" else path.parent


def job_config_of(checkpoint: str | Path) -> dict:
    """The training job config stored beside a checkpoint (`<run>/resolved_config.json`)."""
    path = run_dir_of(checkpoint) / "resolved_config.json"
    if not path.is_file():
        raise ConfigError(f"noise: {path} is missing, so the model of {checkpoint} cannot be rebuilt; pass the run's "
                          "job config as `job` in --config")
    return read_json(path)


def load_state(checkpoint: str | Path) -> dict:
    from heavytail.train.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    if state is None:
        raise ConfigError(f"noise: checkpoint {checkpoint} does not exist (run the training rule that writes it)")
    return state


def build_target(job: dict, checkpoint: str | Path | None, data: str = "auto", seed: int = 0,
                 device: torch.device | str = "cpu", tasks: dict | None = None) -> NoiseTarget:
    """The target of a run's job config at `checkpoint` (None = init), on its own data or on Gaussian input.

    `tasks` caches the loaded data between targets of the same run (several checkpoints in one process).
    """
    state = load_state(checkpoint) if checkpoint is not None else None
    family = family_of(job)
    build = _bert_target if family == "bert" else _vision_target
    target = build(job, state, data, seed, {} if tasks is None else tasks)
    target.model.to(device)
    step = int(state["step"]) if state is not None else 0
    total = _total_steps(job, state, family)
    target.metadata.update(family=family, step=step, total_steps=total,
                           fraction=round(step / total, 6) if total else None,
                           checkpoint=str(checkpoint) if checkpoint is not None else "init",
                           seed_of_run=int(job.get("seed", 0)))
    return target


def _total_steps(job: dict, state: dict | None, family: str) -> int | None:
    if state is not None and "steps" in state.get("config", {}):
        return int(state["config"]["steps"])
    steps = job.get("train", {}).get("steps") if family == "bert" else None
    return int(steps) if steps else None


def _to_device(batch, model: nn.Module):
    from heavytail.batches import to_device

    return to_device(batch, next(model.parameters()).device)


def _init_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    from heavytail.train.checkpoint import seed_everything

    seed_everything(seed)  # as the engine does before build_model(): "init" equals a run's step-0 snapshot
    return build()


# --- BERT masked LM ----------------------------------------------------------------------------------------------

def _cached(tasks: dict, job: dict, seed: int, make: Callable[[], object]):
    key = (json.dumps(job, sort_keys=True, default=str), seed)
    if key not in tasks:
        tasks[key] = make()
    return tasks[key]


def _bert_target(job: dict, state: dict | None, data: str, seed: int, tasks: dict) -> NoiseTarget:
    from heavytail.train.mlm_task import MLMPretrainTask, bert_arch, load_mlm_data

    if job.get("model") not in job.get("models", {}):
        raise ConfigError(f"noise: the pretrain job config has no models entry {job.get('model')!r}")
    variant = job.get("variant", "attention")
    task = _cached(tasks, job, seed, lambda: MLMPretrainTask(
        load_mlm_data(job), bert_arch(job, job["model"]), nsp=bool(job.get("nsp", False)), variant=variant,
        seed=seed, model_name=job["model"]))
    model = _init_model(task.build_model, int(job.get("seed", 0)))
    if state is not None:
        model.load_state_dict(state["model"])
    if data == GAUSSIAN:
        use_gaussian_input(model)
    elif data != "auto":
        raise ConfigError(f"noise: --data for BERT is auto (the run's text) or gaussian (got {data!r})")
    source = job.get("data", {}).get("text", {}).get("source")
    gaussian = data == GAUSSIAN or variant == "gaussian_input"
    meta = {"model": bert_model_name(variant), "data": GAUSSIAN if gaussian else TEXT_DATA_NAMES.get(source, "text"),
            "architecture": job["model"], "variant": variant, "data_dir": str(job["mlm_data"])}

    def loss_fn(model, batch):
        return task.loss(model, _to_device(batch, model))[0]

    def stream(batch_size: int) -> BatchStream:
        return BatchStream(lambda b: task.train_batches(0, b, 0, 1), batch_size)

    return NoiseTarget(model, loss_fn, stream, meta)


def use_gaussian_input(model: nn.Module) -> None:
    """Feed normalised Gaussian vectors instead of token embeddings (paper §5.2), keeping the architecture.

    `BertForMaskedPretraining` (and its rotary twin) draws them when its `variant` is gaussian_input; the ResNet-like BERT with
    Gaussian input (Fig 4d) is the resnet_like model switched this way, which no single variant names.
    """
    if not hasattr(model, "variant"):
        raise ConfigError("noise: Gaussian input needs a heavytail BertForMaskedPretraining model")
    model.variant = "gaussian_input"


# --- image classification --------------------------------------------------------------------------------------

def _vision_target(job: dict, state: dict | None, data: str, seed: int, tasks: dict) -> NoiseTarget:
    from heavytail.data.images import split_root
    from heavytail.train.classify import build_task, model_config, train_config

    if data != "auto":
        raise ConfigError(f"noise: --data for image models is auto, the run's images (got {data!r})")
    model_cfg = model_config(job)
    if state is not None:
        train_cfg = state["config"]
    else:
        manifest, _ = split_root(job["manifest"], "train")
        train_cfg = train_config(job, model_cfg, manifest, {}, int(job.get("seed", 0)))
    task = _cached(tasks, job, seed, lambda: build_task(job, {**train_cfg, "seed": seed}))
    model = _init_model(task.build_model, int(job.get("seed", 0)))
    if state is not None:
        model.load_state_dict(state["model"])
    images = job.get("data", {}).get("images", {}).get("source") or Path(job["manifest"]).parent.name
    meta = {"model": job["model"], "data": images, "architecture": model_cfg["arch"], "variant": None,
            "data_dir": str(job["manifest"])}

    def loss_fn(model, batch):
        return task.loss(model, _to_device(batch, model))[0]

    def stream(batch_size: int) -> BatchStream:
        return BatchStream(lambda b: task.train_batches(0, b, 0, 1), batch_size)

    return NoiseTarget(model, loss_fn, stream, meta)
