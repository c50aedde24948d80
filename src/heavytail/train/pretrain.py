"""BERT pretraining: `python -m heavytail.train.pretrain --config <json> --out <dir>`.

The config is the pretrain preset plus `model` (a key of `models`), `optimizer` (a key of `optimizers`),
`seed`, `mlm_data` (prepared data folder; built from `corpus` + `tokenizer` if missing) and optionally
`tuned_choice` (a tune stage's choice.json whose hparams override the optimizer's). Run under
`torchrun --nproc_per_node N` for data-parallel training. `frequency_groups` (optional) logs the training loss
of that many token-frequency groups (the class-imbalance analysis). Exit codes: 0 finished or diverged (see run.json
`status`), 75 checkpointed on SIGTERM/SIGUSR1 (rerun to resume), anything else an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.provenance import record_run

# the job's own keys beside the pretrain section; corpus + tokenizer build mlm_data when it is missing (the
# section's snapshot_fractions are the run's own: the plan adds the noise stage's for the run it measures)
JOB_KEYS = ("model", "optimizer", "seed", "mlm_data", "long_mlm_data", "tuned_choice", "corpus", "tokenizer",
            "frequency_groups")
REQUIRED = ("model", "optimizer", "seed", "mlm_data")


def configure_threads(threads: int | None) -> None:
    import torch

    if threads:
        # the job's cores are shared by the processes torchrun starts on this node
        per_process = int(threads) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, per_process))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BERT masked-LM pretraining on the shared training engine")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of the job, shared by its processes")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the rule's gpu resource); 0 = the CPU. "
                        "Default: a GPU if one is there")
    parser.add_argument("--out", required=True, help="run folder: metrics.jsonl, checkpoint.pt, run.json")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_job_config(load_job_config(args.config), "pretrain", JOB_KEYS, required=REQUIRED)
        from heavytail.train.engine import run_training
        from heavytail.train.mlm_task import (
            MLMPretrainTask,
            bert_arch,
            ensure_mlm_data,
            load_mlm_data,
            long_phase_of,
            resolve_optimizer,
            train_config,
        )

        configure_threads(args.threads)
        if cfg["model"] not in cfg["models"]:
            raise ConfigError(f"pretrain.models has no entry {cfg['model']!r} (entries: {', '.join(cfg['models'])})")
        cfg = {**cfg, "optimizer_setting": resolve_optimizer(cfg)}
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    from heavytail.train.distributed import join_job, shutdown_distributed

    ctx = join_job(cfg["train"]["device"], args.gpus)
    if ctx.is_main:
        print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)
    # one provenance record per run: rank 0 writes it, the other ranks fill a throwaway dict
    record = record_run(args.out, cfg) if ctx.is_main else contextlib.nullcontext({})
    with record as run:
        if ctx.is_main:
            ensure_mlm_data(cfg)
        ctx.barrier()
        data = load_mlm_data(cfg)
        seed = int(cfg["seed"])
        task = MLMPretrainTask(data, bert_arch(cfg, cfg["model"]), nsp=cfg["nsp"], variant=cfg["variant"], seed=seed,
                               eval_batch_size=cfg["eval_batch_size"], model_name=cfg["model"],
                               frequency_groups=cfg.get("frequency_groups"),
                               long_phase=long_phase_of(cfg, cfg["train"]["steps"]))
        if ctx.is_main:
            print(f"unigram baseline (validation MLM loss of training frequencies): {data.unigram_loss:.4f}; "
                  f"context-free floor (sees only the token at the masked position): {data.context_free_loss:.4f}",
                  flush=True)
        result = run_training(task, train_config(cfg, cfg["optimizer_setting"], seed), args.out, ctx)
        run.update(status=result["status"], diverged_at_step=result["diverged_at_step"],
                   unigram_loss=data.unigram_loss, context_free_loss=data.context_free_loss,
                   final_validation=result["final_validation"])
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
