"""SQuAD v1.1 fine-tuning: `python -m heavytail.train.finetune_squad --config <json> --out <dir>`.

The config is the squad section of the experiment plus `model`, `optimizer` (a key of `optimizers`), `init_from`
(a pretraining run folder, a Hugging Face model folder or a cached model name; with `random_encoder: true`, only
its architecture: the random-encoder control), `tokenizer` (folder), `qa_dir`
(train.json, dev.json, stats.json): one run per seed of `seeds`, written to --out/seed<N> (tokenisation and
imports are paid once), or, with `seed`, that one run written to --out. Each run folder gets metrics.jsonl, checkpoint.pt,
predictions.json ({id: answer}, the official format) and scores.json (EM/F1 and two trivial baselines).
Run under `torchrun --nproc_per_node N` for data-parallel training. Exit codes: 0 finished or diverged (see
scores.json `status`), 2 bad config, 75 checkpointed on SIGTERM/SIGUSR1 (rerun to resume).
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
from heavytail.io import content_digest, read_json, write_json
from heavytail.provenance import record_run

# the job's own keys beside the squad section; `seed` runs that one seed into --out instead of the section's `seeds`
JOB_KEYS = ("model", "optimizer", "init_from", "tokenizer", "qa_dir", "seed", "random_encoder")
REQUIRED = ("model", "optimizer", "init_from", "tokenizer", "qa_dir")
# what the engine cannot see but that changes the run: a finished or checkpointed run with other values is
# not reused (the engine compares its config)
TASK_KEYS = ("init_from", "random_encoder", "tokenizer", "qa_dir", "max_seq_length", "doc_stride",
             "max_query_length")


def check_config(cfg: dict) -> dict[int, str]:
    """{seed: run folder suffix}; raises ConfigError naming the bad key."""
    if cfg["optimizer"] not in cfg["optimizers"]:
        raise ConfigError(f"squad.optimizers has no entry {cfg['optimizer']!r} "
                          f"(entries: {', '.join(cfg['optimizers'])})")
    if "seed" in cfg:  # one run, written to --out itself
        return {int(cfg["seed"]): ""}
    return {int(seed): f"seed{int(seed)}" for seed in cfg["seeds"]}


def train_config(cfg: dict, seed: int, train_windows: int, inputs: dict) -> dict:
    """The engine's train config of one run: `epochs` over the training windows, the optimizer, BERT's recipe
    (its clipping, no weight decay on 1-D parameters, dev scored at the end), and `inputs`
    (`input_digests(cfg)`, the same for every seed of a job)."""
    train = dict(cfg["train"])
    steps = max(1, math.ceil(cfg["epochs"] * train_windows / train["batch_size"]))
    train["steps"] = steps
    for key in ("log_every", "eval_every", "checkpoint_every"):
        # eval_every null: the dev set is scored once, at the end
        train[key] = max(1, min(int(train[key] or steps), steps))
    train.update(eval_at_start=False, weight_decay_exclude_1d=True, snapshot_steps=[])
    train["task"] = {key: cfg.get(key) for key in TASK_KEYS} | {"inputs": inputs}
    label = cfg["optimizer"]
    train.update(seed=seed, optimizer=cfg["optimizers"][label],
                 grad_clip_norm=(cfg.get("grad_clip_norm") or {}).get(label))
    return train


def input_digests(cfg: dict) -> dict:
    """The content of what a run reads, so that a changed input (a retrained tokenizer, new QA data, a
    retrained encoder) makes the engine train again instead of reusing a finished run of the same paths."""
    qa_dir, init = Path(cfg["qa_dir"]), Path(cfg["init_from"])
    tokenizer = Path(cfg["tokenizer"]) / "vocab.txt"
    pretraining_result = (init.parent if init.name == "checkpoint.pt" else init) / "result.json"
    return {"qa": content_digest(qa_dir / "train.json", qa_dir / "dev.json"),
            "tokenizer": content_digest(tokenizer) if tokenizer.is_file() else None,
            # our pretraining runs: their result (final metrics, recipe); a Hugging Face name stands for itself
            "init": content_digest(pretraining_result) if pretraining_result.is_file() else None}


def prepare_data(cfg: dict, cache_dir: str | None, ctx):
    """Tokenizer, dev examples, training and dev windows, and the data's own description."""
    from heavytail.data.mlm import load_tokenizer
    from heavytail.data.qa import load_squad_json
    from heavytail.data.squad import FeatureSpec, featurize

    qa_dir = Path(cfg["qa_dir"])
    spec = FeatureSpec(int(cfg["max_seq_length"]), int(cfg["doc_stride"]), int(cfg["max_query_length"]))
    tokenizer = load_tokenizer(cfg["tokenizer"])
    train_examples = load_squad_json(qa_dir / "train.json")
    dev_examples = load_squad_json(qa_dir / "dev.json")
    # rank 0 writes the cached windows first; the other ranks then read them
    for turn in (True, False):
        if ctx.is_main == turn:
            train_features = featurize(train_examples, tokenizer, spec, cache_dir)
            dev_features = featurize(dev_examples, tokenizer, spec, cache_dir)
        ctx.barrier()
    stats = qa_dir / "stats.json"
    description = read_json(stats).get("description", "unknown") if stats.is_file() else "unknown"
    return dev_examples, train_features, dev_features, description


def final_predictions(task, run_dir: Path, ctx, precision: str) -> dict[str, str]:
    """Dev predictions of the final weights: from this process's last evaluation, else (a run finished by an
    earlier process) from checkpoint.pt, on the job's devices, every rank its share of the windows."""
    if task.last_predictions is not None:
        return task.last_predictions
    import torch

    from heavytail.device import autocast_context
    from heavytail.train.checkpoint import CHECKPOINT_NAME, load_checkpoint

    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    if state is None:
        raise ConfigError(f"{run_dir} holds a finished run without checkpoint.pt; delete the folder to rerun it")
    model = task.build_model()
    model.load_state_dict(state["model"])
    model.to(ctx.device).eval()
    with torch.no_grad(), autocast_context(ctx.device, precision):
        return task.predict(model, ctx)


def write_outputs(run_dir: Path, task, result: dict, baselines: dict, meta: dict, predictions) -> dict:
    """predictions.json (official {id: text}) and scores.json (EM/F1 in percent, status, baselines)."""
    from heavytail.metrics import squad_v1

    if result["status"] == "ok":
        scores = squad_v1(predictions, task.references)
    else:  # a diverged run has no final model to score; the report shows its status instead
        predictions, scores = {}, {"exact_match": None, "f1": None}
    write_json(run_dir / "predictions.json", predictions)
    payload = {**scores, "status": result["status"], "diverged_at_step": result["diverged_at_step"],
               "steps": result["steps_completed"], **meta, "baselines": baselines}
    write_json(run_dir / "scores.json", payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SQuAD v1.1 fine-tuning on the shared training engine")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--out", required=True, help="run folder (with `seeds`: the parent of seed<N> folders)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of the job, shared by its processes")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the rule's gpu resource); 0 = the CPU. "
                        "Default: a GPU if one is there")
    parser.add_argument("--cache-dir", help="folder for the cached tokenised windows (datasets arrow files)")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_job_config(load_job_config(args.config), "squad", JOB_KEYS, required=REQUIRED)
        runs = check_config(cfg)
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    from heavytail.data.squad import first_of_kind_baseline, first_year_baseline, references
    from heavytail.metrics import squad_v1
    from heavytail.train.distributed import join_job, shutdown_distributed
    from heavytail.train.engine import run_training
    from heavytail.train.pretrain import configure_threads
    from heavytail.train.squad_task import SquadTask

    configure_threads(args.threads)
    ctx = join_job(cfg["train"]["device"], args.gpus)
    if ctx.is_main:
        print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)
    dev_examples, train_features, dev_features, description = prepare_data(cfg, args.cache_dir, ctx)
    inputs = input_digests(cfg)
    # two trivial baselines: the first year of the context, and the first span of the asked type (knows the
    # answer type but not which candidate the question means): a model that learned to read beats both
    first_year = squad_v1(first_year_baseline(dev_examples), references(dev_examples))
    first_of_kind = squad_v1(first_of_kind_baseline(dev_examples), references(dev_examples))
    baselines = {"first_year": first_year, "first_of_asked_type": first_of_kind}
    meta = {"data_description": description, "model": cfg["model"], "optimizer": cfg["optimizer"],
            "init_from": cfg["init_from"], "random_encoder": bool(cfg.get("random_encoder")),
            "train_windows": len(train_features),
            "dev_questions": len(dev_examples), "dev_windows": len(dev_features)}
    if ctx.is_main:
        print(f"data {description}: {len(train_features)} training windows, {len(dev_examples)} dev questions "
              f"({len(dev_features)} windows); baselines EM: first year {first_year['exact_match']:.2f}, first "
              f"of the asked type {first_of_kind['exact_match']:.2f}", flush=True)
    for seed, suffix in runs.items():
        run_dir = Path(args.out) / suffix
        run_cfg = cfg | {"seed": seed}
        record = record_run(run_dir, run_cfg) if ctx.is_main else contextlib.nullcontext({})
        with record as run:
            task = SquadTask(train_features, dev_examples, dev_features, cfg["init_from"], seed=seed,
                             eval_batch_size=int(cfg["eval_batch_size"]), n_best_size=int(cfg["n_best_size"]),
                             max_answer_length=int(cfg["max_answer_length"]),
                             random_encoder=bool(cfg.get("random_encoder")))
            result = run_training(task, train_config(cfg, seed, task.train_windows, inputs), run_dir, ctx)
            predictions = (final_predictions(task, run_dir, ctx, cfg["train"]["precision"])
                           if result["status"] == "ok" else {})  # every rank: a collective under torchrun
            if ctx.is_main:
                scores = write_outputs(run_dir, task, result, baselines, {**meta, "seed": seed}, predictions)
                print(f"seed {seed} {result['status']}: EM {scores['exact_match']} F1 {scores['f1']} "
                      f"(baselines EM {first_year['exact_match']:.2f} / {first_of_kind['exact_match']:.2f})", flush=True)
                run.update(status=result["status"], diverged_at_step=result["diverged_at_step"],
                           exact_match=scores["exact_match"], f1=scores["f1"])
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
