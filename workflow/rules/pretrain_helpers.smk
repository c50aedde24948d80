# Helpers of the pretraining stage (workflow/rules/pretrain.smk): run lists, job configs, the launcher.
# Kept apart from the rules so that each .smk holds either functions or rules (snakemake --lint).

PRETRAIN = PRESET.get("pretrain", {})
PRETRAIN_RUN = "results/{scale}/pretrain/{model}/{optimizer}/seed{seed}"
PRETRAIN_TUNED = sorted(PRETRAIN.get("tune", {}).get("lr_grid", {}))

register_artifact("fig1a", f"results/{SCALE}/figures/fig1a.png")
register_artifact("fig3", f"results/{SCALE}/figures/fig3.png")
register_artifact("table2", f"results/{SCALE}/tables/table2.csv")


def _alternation(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


def tuned_choice_path(wildcards):
    if wildcards.optimizer not in PRETRAIN_TUNED:
        return []  # untuned labels (acclip_paper) train with their config values
    return [
        f"results/{wildcards.scale}/pretrain/tune/{wildcards.optimizer}/choice.json"
    ]


def snapshot_fractions(wildcards):
    """The run the noise stage measures keeps snapshots at the noise preset's fractions of training."""
    fractions = set(PRETRAIN.get("snapshot_fractions", []))
    run = PRESET.get("noise", {}).get("runs", {}).get("bert", {})
    if (run.get("model"), run.get("optimizer"), int(run.get("seed", 0))) == (
        wildcards.model,
        wildcards.optimizer,
        int(wildcards.seed),
    ):
        fractions |= set(run.get("fractions", []))
    return sorted(fractions)


def pretrain_job_config(wildcards):
    choice = tuned_choice_path(wildcards)
    return job_config(
        "pretrain",
        model=wildcards.model,
        optimizer=wildcards.optimizer,
        seed=int(wildcards.seed),
        mlm_data=f"results/{wildcards.scale}/pretrain/mlm_data",
        tuned_choice=choice[0] if choice else None,
        snapshot_fractions=snapshot_fractions(wildcards),
    )


def tune_job_config(wildcards):
    return job_config(
        "pretrain",
        optimizer=wildcards.optimizer,
        mlm_data=f"results/{wildcards.scale}/pretrain/mlm_data",
    )


def pretrain_metrics(models, optimizers, seeds):
    return expand(
        f"{PRETRAIN_RUN}/metrics.jsonl",
        scale=SCALE,
        model=models,
        optimizer=optimizers,
        seed=seeds,
    )


FIRST_SEED = PRETRAIN.get("seeds", [0])[:1]
FIG1A_RUNS = pretrain_metrics(
    [PRETRAIN.get("base_model")], ["sgdm", "adam"], PRETRAIN.get("seeds", [0])
)
FIG3_RUNS = pretrain_metrics(
    [PRETRAIN.get("base_model")], PRETRAIN.get("fig3_optimizers", []), FIRST_SEED
)
TABLE2_RUNS = pretrain_metrics(
    PRETRAIN.get("table2_models", []), ["adam", "acclip"], FIRST_SEED
)


PRETRAIN_MODELS = _alternation(PRETRAIN.get("models", {}))
PRETRAIN_OPTIMIZERS = _alternation(PRETRAIN.get("optimizers", {}))
