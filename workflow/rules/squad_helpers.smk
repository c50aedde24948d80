# Helpers of squad.smk: paths, job configs and input functions (no rules, so the linter can tell them apart).

SQUAD = PRESET.get("squad", {})
SQUAD_SEEDS = SQUAD.get("seeds", [])
SQUAD_RUN = "results/{scale}/squad/{model}/{optimizer}/seed{seed}"

register_artifact("table3", f"results/{SCALE}/tables/table3.csv")


def squad_init_from(wildcards):
    """The encoder a model starts from: a cached Hugging Face model, or our pretraining run of that depth."""
    init = SQUAD.get("init", {})
    hub_name = init.get("huggingface", {}).get(wildcards.model)
    if hub_name:
        return hub_name
    # the pretraining stage's run folder (PRETRAIN_RUN of pretrain.smk: checkpoint.pt, resolved_config.json)
    return f"results/{wildcards.scale}/pretrain/{wildcards.model}/{init.get('optimizer', 'adam')}/seed{init.get('seed', 0)}"


def squad_init_input(wildcards):
    """The pretraining run's declared output, so fine-tuning waits for (and follows) pretraining."""
    source = squad_init_from(wildcards)
    return [f"{source}/metrics.jsonl"] if source.startswith("results/") else []


def squad_job_config(wildcards):
    return job_config(
        "squad",
        model=wildcards.model,
        optimizer=wildcards.optimizer,
        seeds=SQUAD_SEEDS,
        init_from=squad_init_from(wildcards),
        tokenizer=f"results/{wildcards.scale}/data/tokenizer",
        qa_dir=f"results/{wildcards.scale}/data/qa",
    )


def squad_scores(wildcards):
    return expand(
        f"{SQUAD_RUN}/scores.json",
        scale=wildcards.scale,
        model=SQUAD.get("models", []),
        optimizer=list(SQUAD.get("optimizers", {})),
        seed=SQUAD_SEEDS,
    )


# One job runs every seed of a (model, optimizer): at tiny scale a run trains for seconds while starting
# Python with torch, transformers and datasets takes ~7 s, so per-seed jobs would spend most of the
# 4-minute budget on imports. Each seed still has its own run folder, scores and predictions.
