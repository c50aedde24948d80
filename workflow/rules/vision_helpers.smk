# Helpers of vision.smk: paths, job configs and input functions (no rules, so the linter can tell them apart).

register_artifact("fig1b", f"results/{SCALE}/figures/fig1b.png")
register_artifact("fig8", f"results/{SCALE}/figures/fig8.png")

VISION = PRESET.get("vision", {})


def vision_run_dir(model, optimizer, seed, scale=SCALE):
    return f"results/{scale}/vision/{model}/{optimizer}/seed{seed}"


def vision_run_dirs(model, optimizers=None):
    """Run folders of `model` at this scale, for `optimizers` (default: the model's own list) and every seed."""
    spec = VISION.get("models", {}).get(model, {})
    return [
        vision_run_dir(model, opt, seed)
        for opt in (optimizers or spec.get("optimizers", []))
        for seed in VISION.get("seeds", [0])
    ]


def vision_metrics(model, optimizers=None):
    return [f"{d}/metrics.jsonl" for d in vision_run_dirs(model, optimizers)]


def vision_snapshot_index(model, optimizer, seed=0):
    """snapshots/index.json of one run ({steps, fractions: {"0.1": "step23.pt"}}), written when the run starts."""
    return f"{vision_run_dir(model, optimizer, seed)}/snapshots/index.json"


def vision_job_config(wildcards):
    return job_config(
        "vision",
        model=wildcards.model,
        optimizer=wildcards.optimizer,
        seed=int(wildcards.seed),
        manifest=f"results/{wildcards.scale}/data/images/manifest.json",
    )


def fig1b_metrics(wildcards):
    return vision_metrics("resnet", ["sgdm", "adam"])


def fig8_metrics(wildcards):
    return vision_metrics("resnet", ["sgdm", "adam", "acclip"])
