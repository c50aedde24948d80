"""The linear softmax model of the class-imbalance analysis: `python -m heavytail.train.linear_softmax --config <json> --out <dir>`.

Kunstner et al. (2024) show the rare-class slowdown of (S)GD without attention, on linear softmax models. Ours
predicts each masked token from frozen random embeddings of the tokens at offsets -1, 0, +1 of its position (the
masked input, as BERT sees it): a fixed random projection of one-hot contexts, so that the model is linear in its
only trainable layer and the problem convex. The decoder starts at zero (every token has loss log V). It trains on
the MLM data's masked batches with the engine and logs the loss of every token-frequency group.

The config is a job of heavytail.plan.explanations.linear_job: the pretrain section (less the sweep's omissions)
plus `optimizer`, `optimizer_setting`, `mlm_data` and `linear` {steps, groups, seeds, lr_grid}. One job tunes the
lr of its label on seed 0 by final validation MLM loss (heavytail.train.sweep), then runs the other seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.plan.explanations import PRETRAIN_OMITTED
from heavytail.provenance import record_run
from heavytail.train.mlm_task import MLMPretrainTask, load_mlm_data, train_config

JOB_KEYS = ("linear", "optimizer", "optimizer_setting", "mlm_data")
OFFSETS = (-1, 0, 1)
FEATURE_SEED = 1009  # the frozen embeddings: the same for every run, whatever its seed


class LinearSoftmax(nn.Module):
    """logits = W [e(x_{p-1}); e(x_p); e(x_{p+1})] + b at each masked position p, with e frozen and W, b trained."""

    def __init__(self, vocab_size: int, dim: int, offsets=OFFSETS):
        super().__init__()
        generator = torch.Generator().manual_seed(FEATURE_SEED)
        embedding = torch.randn(vocab_size, dim, generator=generator)
        # unit-norm features: the step size that suits one vocabulary suits another
        self.register_buffer("embedding", F.normalize(embedding, dim=1) / math.sqrt(len(offsets)))
        self.offsets = tuple(offsets)
        self.decoder = nn.Linear(len(offsets) * dim, vocab_size)
        nn.init.zeros_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)

    def features(self, input_ids: torch.Tensor, masked_positions: torch.Tensor) -> torch.Tensor:
        last = input_ids.shape[1] - 1
        parts = [self.embedding[input_ids.gather(1, (masked_positions + o).clamp(0, last))] for o in self.offsets]
        return torch.cat(parts, dim=-1)

    def forward(self, input_ids, masked_positions, masked_labels, masked_weights=None, **_) -> dict:
        """The masked-LM model's outputs (loss, mlm_loss, mlm_correct, mlm_count, mlm_token_loss)."""
        logits = self.decoder(self.features(input_ids, masked_positions)).float()
        weights = torch.ones_like(masked_labels, dtype=logits.dtype) if masked_weights is None else masked_weights
        token_loss = F.cross_entropy(logits.flatten(0, 1), masked_labels.flatten(), reduction="none")
        count = weights.sum().clamp_min(1.0)
        loss = (token_loss * weights.flatten()).sum() / count
        correct = ((logits.argmax(-1) == masked_labels).to(logits.dtype) * weights).sum()
        return {"loss": loss, "mlm_loss": loss.detach(), "mlm_correct": correct.detach(), "mlm_count": count.detach(),
                "mlm_token_loss": token_loss.detach().view_as(masked_labels)}


class LinearSoftmaxTask(MLMPretrainTask):
    """The MLM task (batches, validation loss, frequency groups) with the linear softmax model."""

    def __init__(self, data, dim: int, seed: int, groups: int, eval_batch_size: int = 256):
        super().__init__(data, {}, seed=seed, eval_batch_size=eval_batch_size, export_hf=False,
                         frequency_groups=groups)
        self.dim = dim

    def build_model(self):
        return LinearSoftmax(self.data.vocab_size, self.dim)


def feature_dim(cfg: dict) -> int:
    """The embedding width: the base model's hidden size."""
    return int(cfg["models"][cfg["base_model"]]["hidden_size"])


def linear_train_config(cfg: dict, lr: float, seed: int) -> dict:
    """The pretraining recipe (schedule, BERT's clipping of Adam) shrunk to the linear model's steps."""
    steps = int(cfg["linear"]["steps"])
    train = train_config({**cfg, "model": cfg["base_model"]}, {**cfg["optimizer_setting"], "lr": float(lr)}, seed,
                         steps=steps)
    train.update(snapshot_steps=[], checkpoint_every=steps, eval_every=max(1, steps // 4))
    train["task"] = {**train["task"], "model": {"linear_softmax": feature_dim(cfg), "offsets": list(OFFSETS),
                                                "feature_seed": FEATURE_SEED}, "frequency_groups": cfg["linear"]["groups"]}
    return train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the linear softmax model of the class-imbalance analysis")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given; 0 = the CPU. Default: a GPU if one is there")
    parser.add_argument("--out", required=True, help="the label's folder: choice.json, grid.json, one folder per run")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_job_config(load_job_config(args.config), "pretrain", JOB_KEYS, omitted=PRETRAIN_OMITTED,
                                 required=JOB_KEYS)
        if cfg["base_model"] not in cfg["models"]:
            raise ConfigError(f"pretrain.base_model {cfg['base_model']!r} is not a key of pretrain.models")
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
        data = load_mlm_data(cfg)
        linear = cfg["linear"]

        def run(lr: float, seed: int, folder: Path) -> dict:
            task = LinearSoftmaxTask(data, feature_dim(cfg), seed, int(linear["groups"]), int(cfg["eval_batch_size"]))
            if ctx.is_main:
                print(f"linear softmax {cfg['optimizer']} lr {lr:g} seed {seed}", flush=True)
            result = run_training(task, linear_train_config(cfg, lr, seed), folder, ctx, keep_checkpoint=False)
            final = result["final_validation"] or {}
            return {"status": result["status"], "loss": final.get("mlm_loss", float("nan"))
                    if result["status"] == "ok" else float("nan"), "accuracy": final.get("mlm_accuracy")}

        choice = tune_then_repeat(run, linear["lr_grid"], linear["seeds"], out,
                                  {"optimizer": cfg["optimizer"], "steps": int(linear["steps"]),
                                   "criterion": "final validation MLM loss"}, write=ctx.is_main)
        run_record.update(choice=choice["hparams"], on_edge=choice["on_edge"])
        if ctx.is_main:
            print(f"choice for {cfg['optimizer']}: {choice['hparams']} ({choice['selected_by']}"
                  f"{'; still on the grid edge' if choice['on_edge'] else ''})", flush=True)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
