"""SQuAD fine-tuning (Table 3): one job per (model, run label) trains every seed. A run label is an optimizer
label of squad.optimizers, or the random-encoder control's `<label>_random_encoder`."""

from __future__ import annotations

from heavytail.plan.jobs import job_config
from heavytail.plan.paths import PRETRAIN_METRICS, PRETRAIN_RUN, QA, SQUAD_RUN, TOKENIZER, fill


def init_from(experiment: dict, scale: str, model: str) -> str:
    """The encoder a model starts from: a cached Hugging Face model, or our pretraining run of that depth."""
    init = experiment["squad"]["init"]
    hub_name = init.get("huggingface", {}).get(model)
    if hub_name:
        return hub_name
    return fill(PRETRAIN_RUN, scale=scale, model=model, optimizer=init["optimizer"], seed=init["seed"])


def init_input(experiment: dict, scale: str, model: str) -> list[str]:
    """The pretraining run's declared output, so that fine-tuning waits for (and follows) pretraining."""
    init = experiment["squad"]["init"]
    if init.get("huggingface", {}).get(model):
        return []
    return [fill(PRETRAIN_METRICS, scale=scale, model=model, optimizer=init["optimizer"], seed=init["seed"])]


CONTROL_SUFFIX = "_random_encoder"


def run_labels(experiment: dict) -> list[str]:
    """Every optimizer label, then the control's (the same fine-tuning from a random encoder), if there is one."""
    squad = experiment["squad"]
    control = squad.get("random_encoder_control")
    return list(squad["optimizers"]) + ([control + CONTROL_SUFFIX] if control else [])


def squad_job(experiment: dict, scale: str, model: str, optimizer: str) -> dict:
    """The job of run label `optimizer`: the control runs its optimizer from the pretrained architecture's random
    init (it waits for the pretraining run all the same: its architecture and vocabulary are that run's)."""
    control = optimizer.endswith(CONTROL_SUFFIX) and optimizer.removesuffix(CONTROL_SUFFIX)
    extra = {"optimizer": control, "random_encoder": True} if control else {"optimizer": optimizer}
    return job_config(experiment, "squad", model=model, init_from=init_from(experiment, scale, model),
                      tokenizer=fill(TOKENIZER, scale=scale), qa_dir=fill(QA, scale=scale), **extra)


def run_files(experiment: dict, name: str, scale: str | None = None, models=None, optimizers=None) -> list[str]:
    """`name` (scores.json, predictions.json, metrics.jsonl) of every seed's run folder."""
    squad = experiment["squad"]
    scale = scale or experiment["scale"]
    return [f"{fill(SQUAD_RUN, scale=scale, model=m, optimizer=o, seed=s)}/{name}"
            for m in (models or squad["models"]) for o in (optimizers or run_labels(experiment))
            for s in squad["seeds"]]


def seed_outputs(experiment: dict, name: str) -> list[str]:
    """The outputs of one finetune_squad job: `name` in each seed's folder, {scale}/{model}/{optimizer} kept."""
    return [f"{SQUAD_RUN.replace('{seed}', str(seed))}/{name}" for seed in experiment["squad"]["seeds"]]
