"""The one training loop shared by every experiment (BERT pretraining, SQuAD fine-tuning, vision).

An experiment is a `Task`; `run_training(task, cfg, out_dir)` does the rest:
- builds the optimizer from the registry (`heavytail.optim.build_optimizer`) with a warm-up + decay schedule;
- clips the global gradient norm only when `cfg["grad_clip_norm"]` is set (the recipe's own clipping);
- prints `step 120/400 loss 6.812 lr 1.0e-04 gnorm 1.23 2.3 it/s` every `log_every` steps;
- writes `metrics.jsonl` (train rows every `log_every`, validation rows every `eval_every`, one final status row);
- writes an atomic `checkpoint.pt` every `checkpoint_every` steps and at the end; rerunning resumes from it;
- SIGTERM/SIGUSR1: checkpoint, then exit with EXIT_REQUEUE (75) so a scheduler can requeue the job;
- a NaN/inf loss or gradient ends the run as diverged (status row with `diverged_at_step`; the caller exits 0);
- runs under `torchrun --nproc_per_node N` with DDP: same global batch, each rank takes its share of the rows;
  on CUDA it autocasts to bf16 (`precision: auto`), and BERT uses SDPA attention.
A finished run writes `result.json`; rerunning the same command then returns it without training.

Data position is the step count: a task yields the batch of step s as a pure function of (its seed, s), so
resuming needs no data-loader state and a kill at any step resumes bitwise on CPU.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from heavytail.errors import ConfigError
from heavytail.io import read_json, write_json, write_jsonl
from heavytail.train.checkpoint import CHECKPOINT_NAME, seed_everything
from heavytail.train.distributed import DistContext, init_distributed

# EX_TEMPFAIL from sysexits.h: "try again later". A scheduler (SLURM profile, Snakemake retries) requeues it.
EXIT_REQUEUE = 75

METRICS_NAME = "metrics.jsonl"
RESULT_NAME = "result.json"

DEFAULTS: dict[str, Any] = {
    "micro_batch_size": None,
    "seed": 0,
    "grad_clip_norm": None,
    "weight_decay_exclude_1d": True,
    "schedule": {},
    "log_every": 10,
    "eval_every": 100,
    "eval_at_start": True,
    "checkpoint_every": 100,
    "snapshot_steps": [],
    "device": "auto",
    "precision": "auto",
}
SCHEDULE_DEFAULTS = {"warmup_steps": None, "warmup_fraction": 0.0, "decay": "linear", "final_fraction": 0.0,
                     "milestones": [], "gamma": 0.1, "keys": ["lr"]}


class Task(Protocol):
    """What an experiment supplies to the engine."""

    def build_model(self) -> nn.Module:
        """A freshly initialised model (the engine seeds torch first, so every rank builds the same one)."""

    def train_batches(self, start_step: int, batch_size: int, rank: int, world_size: int) -> Iterator[Any]:
        """From `start_step` on, this rank's rows of each step's global batch of `batch_size` examples."""

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """The mean loss of `batch` (differentiable) and per-step statistics to average over a log interval."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics (called on rank 0, in eval mode, without gradients)."""

    # optional: `on_finish(model, out_dir)` runs on rank 0 after a run that did not diverge (e.g. export weights)


def resolve_train_config(cfg: dict) -> dict:
    """Engine config with defaults filled and checked; raises ConfigError naming the bad key."""
    for key in ("steps", "batch_size", "optimizer"):
        if key not in cfg:
            raise ConfigError(f"train.{key} is missing (set it in the stage's preset in config.yaml)")
    resolved = {**DEFAULTS, **cfg}
    resolved["schedule"] = {**SCHEDULE_DEFAULTS, **(cfg.get("schedule") or {})}
    for key in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
        if not isinstance(resolved[key], int) or resolved[key] < 1:
            raise ConfigError(f"train.{key} must be a positive integer (got {resolved[key]!r})")
    if "name" not in resolved["optimizer"] or "lr" not in resolved["optimizer"]:
        raise ConfigError("train.optimizer needs `name` and `lr` (an optimizer_setting of config.yaml)")
    return resolved


def warmup_steps_of(cfg: dict) -> int:
    sched = cfg["schedule"]
    if sched["warmup_steps"] is not None:
        return int(sched["warmup_steps"])
    return int(round(float(sched["warmup_fraction"]) * cfg["steps"]))


def param_groups(model: nn.Module, weight_decay: float | None, exclude_1d: bool) -> list[dict]:
    """BERT's split: biases and LayerNorm weights (every 1-D parameter) get no weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not exclude_1d or not weight_decay:
        return [{"params": params}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer_for(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    from heavytail.optim import build_optimizer

    hparams = {k: v for k, v in cfg["optimizer"].items() if k != "name"}
    if isinstance(hparams.get("betas"), list):
        hparams["betas"] = tuple(hparams["betas"])
    groups = param_groups(model, hparams.get("weight_decay"), cfg["weight_decay_exclude_1d"])
    return build_optimizer(cfg["optimizer"]["name"], groups, **hparams)


def split_batch(batch: Any, parts: int) -> list[Any]:
    """Split a tensor, or a dict/tuple of tensors, into `parts` micro-batches along dim 0."""
    if parts == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        return list(batch.chunk(parts))
    if isinstance(batch, dict):
        pieces = {k: split_batch(v, parts) for k, v in batch.items()}
        return [{k: v[i] for k, v in pieces.items()} for i in range(parts)]
    if isinstance(batch, (tuple, list)):
        pieces = [split_batch(v, parts) for v in batch]
        return [type(batch)(p[i] for p in pieces) for i in range(parts)]
    raise TypeError(f"cannot split a batch of type {type(batch).__name__}")


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class StopRequest:
    """SIGTERM/SIGUSR1 set a flag; the loop checks it after each step, checkpoints and exits EXIT_REQUEUE."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers, the loop still runs
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Requeue(SystemExit):
    """Raised after the checkpoint is written on a stop request; its exit code is EXIT_REQUEUE."""

    def __init__(self):
        super().__init__(EXIT_REQUEUE)


def run_training(task: Task, cfg: dict, out_dir: str | Path, dist_ctx: DistContext | None = None) -> dict:
    """Train `task` per `cfg` into `out_dir`; returns the result dict (status ok|diverged, final metrics)."""
    from heavytail.train.loop import TrainingLoop

    cfg = resolve_train_config(cfg)
    out = Path(out_dir)
    ctx = dist_ctx or init_distributed(cfg["device"])
    finished = out / RESULT_NAME
    if finished.is_file() and (out / METRICS_NAME).is_file():
        previous = read_json(finished)
        if previous.get("train_config") == _comparable(cfg):
            return previous  # a finished (or diverged) run: rerunning the command is a no-op
    # Without metrics.jsonl (Snakemake deletes a rerun job's declared outputs) the loop restores the final
    # checkpoint, trains no further step and writes the metrics again.
    seed_everything(int(cfg["seed"]))
    with StopRequest() as stop:
        loop = TrainingLoop(task, cfg, out, ctx, stop)
        result = loop.run()
    result["train_config"] = _comparable(cfg)
    if ctx.is_main:
        write_json(finished, result)
    return result


def _comparable(cfg: dict) -> dict:
    # the keys that change what is trained; logging cadence and device do not invalidate a finished run
    ignored = {"log_every", "device"}
    return {k: v for k, v in cfg.items() if k not in ignored}


def autocast_context(ctx: DistContext, precision: str):
    if ctx.device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def write_metrics(out: Path, rows: list[dict]) -> None:
    write_jsonl(out / METRICS_NAME, rows)


__all__ = ["CHECKPOINT_NAME", "EXIT_REQUEUE", "METRICS_NAME", "RESULT_NAME", "Requeue", "Task", "run_training",
           "resolve_train_config"]
