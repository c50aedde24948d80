"""The one training loop shared by every experiment (BERT pretraining, SQuAD fine-tuning, vision).

An experiment is a `Task`; `run_training(task, cfg, out_dir)` does the rest:
- builds the optimizer from the registry (`heavytail.optim.build_optimizer`) with a warm-up + decay schedule;
- clips the global gradient norm only when `cfg["grad_clip_norm"]` is set (the recipe's own clipping);
- prints `step 120/400 loss 6.812 lr 1.0e-04 gnorm 1.23 2.3 it/s` every `log_every` steps;
- writes `metrics.jsonl` (train rows every `log_every`, validation rows every `eval_every`, one final status row);
- writes an atomic `checkpoint.pt` every `checkpoint_every` steps and at the end; rerunning resumes from it
  (`keep_checkpoint=False`, for grid points: deleted once the run has finished);
- SIGTERM/SIGUSR1: checkpoint, then exit with EXIT_REQUEUE (75) so a scheduler can requeue the job;
- a NaN/inf loss or gradient ends the run as diverged (status row with `diverged_at_step`; the caller exits 0);
- runs under `torchrun --nproc_per_node N` with DDP: same global batch, each rank takes its share of the rows;
  on CUDA it autocasts to bf16 (`precision: auto`), and BERT uses SDPA attention.
A finished run writes `result.json`; rerunning the same command then returns it without training.

Data position is the step count: a task yields the batch of step s as a pure function of (its seed, s), so
resuming needs no data-loader state and a kill at any step resumes bitwise on CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from heavytail.errors import ConfigError
from heavytail.io import read_json, write_json
from heavytail.train.checkpoint import CHECKPOINT_NAME, seed_everything
from heavytail.train.distributed import DistContext, init_distributed
from heavytail.train.records import METRICS_NAME, RESULT_NAME, comparable
from heavytail.train.signals import EXIT_REQUEUE, Requeue, StopRequest

# Every key a train config states. There are no defaults here: the stage's schema (workflow/schemas/) fills the
# mechanics, and each task's train-config builder states the recipe, so that a command-line run and a pipeline
# run of the same job train the same way.
TRAIN_KEYS = ("steps", "batch_size", "micro_batch_size", "optimizer", "seed", "grad_clip_norm",
              "weight_decay_exclude_1d", "schedule", "log_every", "eval_every", "eval_at_start", "checkpoint_every",
              "snapshot_steps", "device", "precision")
SCHEDULE_KEYS = ("warmup_steps", "warmup_fraction", "decay", "final_fraction", "milestones", "gamma", "keys")


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


def check_train_config(train_config: dict) -> dict:
    """The train config, checked: every key stated, counts positive; raises ConfigError naming the key."""
    missing = [k for k in TRAIN_KEYS if k not in train_config]
    missing += [f"schedule.{k}" for k in SCHEDULE_KEYS if k not in (train_config.get("schedule") or {})]
    if missing:
        raise ConfigError(f"train config misses {', '.join(missing)} (build it with the stage's train-config "
                          "function from a job config the schema has resolved)")
    for key in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
        value = train_config[key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"train.{key} must be a positive integer (got {value!r})")
    if "name" not in train_config["optimizer"] or "lr" not in train_config["optimizer"]:
        raise ConfigError("train.optimizer needs `name` and `lr` (an optimizer setting of config.yaml)")
    return train_config


def run_training(task: Task, train_config: dict, out_dir: str | Path, dist_ctx: DistContext | None = None,
                 keep_checkpoint: bool = True) -> dict:
    """Train `task` per `train_config` into `out_dir`; returns the result (status ok|diverged, final metrics).

    `keep_checkpoint=False` deletes the final checkpoint once `result.json` is written: a tuning or sweep point
    is read only through its metrics, and its finished result makes a rerun a no-op, while its weights and
    optimizer state (paper scale's 6-layer BERT with Adam: ~0.8 GB a point) would pile up over a grid. A killed
    run still resumes: its checkpoint goes only once the run has finished."""
    from heavytail.train.loop import TrainingLoop

    cfg = check_train_config(train_config)
    out = Path(out_dir)
    ctx = dist_ctx or init_distributed(cfg["device"])
    finished = out / RESULT_NAME
    if finished.is_file() and (out / METRICS_NAME).is_file():
        previous = read_json(finished)
        if previous.get("train_config") == comparable(cfg):
            return previous  # a finished (or diverged) run: rerunning the command is a no-op
    # Without metrics.jsonl (Snakemake deletes a rerun job's declared outputs) the loop restores the final
    # checkpoint, trains no further step and writes the metrics again.
    seed_everything(int(cfg["seed"]))
    with StopRequest() as stop:
        loop = TrainingLoop(task, cfg, out, ctx, stop)
        result = loop.run()
    result["train_config"] = comparable(cfg)
    if ctx.is_main:
        write_json(finished, result)
        if not keep_checkpoint:
            (out / CHECKPOINT_NAME).unlink(missing_ok=True)
    return result


__all__ = ["CHECKPOINT_NAME", "EXIT_REQUEUE", "METRICS_NAME", "RESULT_NAME", "Requeue", "Task", "TRAIN_KEYS",
           "check_train_config", "run_training"]
