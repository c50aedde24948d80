# Helpers of noise.smk: paths, job configs and input functions (no rules, so the linter can tell them apart).

import os  # noqa: E402

from heavytail.noise.targets import TEXT_DATA_NAMES, bert_model_name  # noqa: E402

NOISE = PRESET.get("noise", {})
NOISE_BATCH_SIZES = NOISE.get("batch_sizes", [])
NOISE_RUNS = NOISE.get("runs", {})
NOISE_STAGE = {"bert": "pretrain", "image": "vision", "alexnet": "vision"}
# Fig 4's other three panels: the BERT run's model at init as (variant, data)
BERT_VARIANTS = [("resnet_like", "auto"), ("attention", "gaussian"), ("resnet_like", "gaussian")]

def noise_run_dir(role):
    """The training run a noise role reads (pretrain or vision), at this scale."""
    run = NOISE_RUNS[role]
    return f"results/{SCALE}/{NOISE_STAGE[role]}/{run['model']}/{run['optimizer']}/seed{run.get('seed', 0)}"


def noise_data_name(role, data="auto"):
    if data == "gaussian":
        return "gaussian"
    if role == "bert":
        return TEXT_DATA_NAMES.get(PRESET["data"]["text"]["source"], "text")
    return PRESET["data"]["images"]["source"]


def noise_model_name(role, variant=None):
    return bert_model_name(variant or "attention") if role == "bert" else NOISE_RUNS[role]["model"]


def noise_spec(role, fraction, batch_size, variant=None, data="auto"):
    """One measurement: a run at a fraction of training (or a BERT variant at init), at one batch size."""
    name = (f"{noise_model_name(role, variant)}/{noise_data_name(role, data)}/"
            f"pct{int(round(100 * fraction)):03d}/bs{batch_size}")
    spec = {"name": name, "run": noise_run_dir(role), "fraction": fraction, "batch_size": batch_size,
            "data": data, "per_coordinate": fraction == 0 and batch_size == NOISE_BATCH_SIZES[0]}
    if variant:
        spec["variant"] = variant
    return spec


def noise_training_specs(role):
    """Every batch size at init (the batch size changes the picture), the first one later in training."""
    specs = []
    for fraction in NOISE_RUNS[role]["fractions"]:
        for batch_size in NOISE_BATCH_SIZES if fraction == 0 else NOISE_BATCH_SIZES[:1]:
            specs.append(noise_spec(role, fraction, batch_size))
    return specs


def noise_groups():
    """{job group: [measurement spec]} of every measurement the noise figures use."""
    if not NOISE_RUNS:
        return {}
    return {
        "bert": noise_training_specs("bert"),
        "bert_variants": [noise_spec("bert", 0.0, b, variant, data)
                          for variant, data in BERT_VARIANTS for b in NOISE_BATCH_SIZES],
        "image": noise_training_specs("image"),
        "alexnet": noise_training_specs("alexnet"),
    }


NOISE_GROUPS = noise_groups()
NOISE_ROLE_OF_GROUP = {"bert": "bert", "bert_variants": "bert", "image": "image", "alexnet": "alexnet"}
NOISE_FIGURES = ("fig2", "fig4", "fig5", "fig6", "fig7") if NOISE_GROUPS else ()
for _artifact in NOISE_FIGURES:
    register_artifact(_artifact, f"results/{SCALE}/figures/{_artifact}.png")


def noise_dir(spec):
    return f"results/{SCALE}/noise/{spec['name']}"


def noise_summary(spec):
    return f"{noise_dir(spec)}/summary.json"


def noise_specs_of(role, fraction=None, batch_size=None, variant=None, data="auto"):
    """Measurements of one role, filtered; variant None = the run's own model."""
    group = "bert_variants" if variant else role
    return [s for s in NOISE_GROUPS.get(group, [])
            if (fraction is None or s["fraction"] == fraction)
            and (batch_size is None or s["batch_size"] == batch_size)
            and s.get("variant") == variant and s["data"] == data]


def noise_figure_panels(figure):
    """Measurement folders each noise figure draws, by panel."""
    first = NOISE_BATCH_SIZES[0] if NOISE_BATCH_SIZES else None

    def one(role, fraction=0.0, variant=None, data="auto"):
        return noise_dir(noise_specs_of(role, fraction, first, variant, data)[0])

    def course(role):
        return [noise_dir(s) for s in noise_specs_of(role, batch_size=first)]

    if figure == "fig2":
        return {"image": one("image"), "bert": one("bert")}
    if figure == "fig4":
        return {"a": one("bert"), "b": one("bert", variant="attention", data="gaussian"),
                "c": one("bert", variant="resnet_like"), "d": one("bert", variant="resnet_like", data="gaussian")}
    if figure == "fig5":
        return {"bert": course("bert"), "image": course("image")}
    if figure == "fig6":
        trained = max(NOISE_RUNS["alexnet"]["fractions"])
        return {"init": one("alexnet"), "trained": one("alexnet", fraction=trained)}
    if figure == "fig7":
        return {"image": course("image"), "bert": course("bert")}
    raise ValueError(figure)


def noise_panel_inputs(panels):
    folders = [p for v in panels.values() for p in (v if isinstance(v, list) else [v])]
    return [f"{folder}/summary.json" for folder in folders]


def noise_output_root(wildcards, output):
    """The folder under which measure_noise writes <model>/<data>/pct<NNN>/bs<B>/ for each measurement."""
    return os.path.commonpath([os.path.dirname(path) for path in output.summaries] + [f"results/{SCALE}/noise"])
