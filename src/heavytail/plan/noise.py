"""Which noise measurements the figures need, grouped into jobs, and which measurement feeds which panel.

A measurement is one (training run, fraction of training, batch size[, BERT variant, data]) and lands in
results/{scale}/noise/<model>/<data>/pct<NNN>/bs<B>/. One job measures a whole group: at tiny scale starting
Python with torch costs ~7 s, so per-measurement jobs would spend most of the budget importing.
"""

from __future__ import annotations

import os

from heavytail.noise.names import GAUSSIAN, TEXT_DATA_NAMES, bert_model_name
from heavytail.plan.jobs import job_config
from heavytail.plan.paths import NOISE_MEASUREMENT, NOISE_ROOT, PRETRAIN_RUN, VISION_RUN, fill

# noise role -> the stage whose run it measures; job group -> the role whose run it reads
STAGE_OF_ROLE = {"bert": "pretrain", "image": "vision", "alexnet": "vision"}
ROLE_OF_GROUP = {"bert": "bert", "bert_variants": "bert", "image": "image", "alexnet": "alexnet"}
GROUPS = tuple(ROLE_OF_GROUP)
FIGURES = ("fig2", "fig4", "fig5", "fig6", "fig7")
# Fig 4's other three panels: the BERT run's model at init as (variant, data)
BERT_VARIANTS = (("resnet_like", "auto"), ("attention", "gaussian"), ("resnet_like", "gaussian"))


def run_dir(experiment: dict, role: str) -> str:
    """The training run a noise role reads (pretrain or vision)."""
    run = experiment["noise"]["runs"][role]
    template = PRETRAIN_RUN if STAGE_OF_ROLE[role] == "pretrain" else VISION_RUN
    return fill(template, scale=experiment["scale"], model=run["model"], optimizer=run["optimizer"], seed=run["seed"])


def _data_name(experiment: dict, role: str, data: str) -> str:
    if data == GAUSSIAN:
        return GAUSSIAN
    if role == "bert":
        return TEXT_DATA_NAMES.get(experiment["data"]["text"]["source"], "text")
    return experiment["data"]["images"]["source"]


def _model_name(experiment: dict, role: str, variant: str | None) -> str:
    return bert_model_name(variant or "attention") if role == "bert" else experiment["noise"]["runs"][role]["model"]


def spec(experiment: dict, role: str, fraction: float, batch_size: int, variant: str | None = None,
         data: str = "auto") -> dict:
    """One measurement: a run at a fraction of training (or a BERT variant at init), at one batch size."""
    first = batch_sizes(experiment, role)[0]
    name = (f"{_model_name(experiment, role, variant)}/{_data_name(experiment, role, data)}/"
            f"pct{int(round(100 * fraction)):03d}/bs{batch_size}")
    measurement = {"name": name, "run": run_dir(experiment, role), "fraction": fraction, "batch_size": batch_size,
                   "data": data, "per_coordinate": fraction == 0 and batch_size == first}
    if variant:
        measurement["variant"] = variant
    return measurement


def batch_sizes(experiment: dict, role: str) -> list[int]:
    """noise.batch_sizes for one role's run, `train` replaced by the run's training batch size, each size once."""
    run = experiment["noise"]["runs"][role]
    train = (experiment["pretrain"]["train"]["batch_size"] if STAGE_OF_ROLE[role] == "pretrain"
             else experiment["vision"]["models"][run["model"]]["batch_size"])
    sizes = [train if size == "train" else int(size) for size in experiment["noise"]["batch_sizes"]]
    return list(dict.fromkeys(sizes))


def _training_specs(experiment: dict, role: str) -> list[dict]:
    """Every batch size at init (the batch size changes the picture), the first one later in training."""
    sizes = batch_sizes(experiment, role)
    return [spec(experiment, role, fraction, b)
            for fraction in experiment["noise"]["runs"][role]["fractions"]
            for b in (sizes if fraction == 0 else sizes[:1])]


def groups(experiment: dict) -> dict[str, list[dict]]:
    """{job group: [measurement]} of every measurement the noise figures use."""
    return {
        "bert": _training_specs(experiment, "bert"),
        "bert_variants": [spec(experiment, "bert", 0.0, b, variant, data) for variant, data in BERT_VARIANTS
                          for b in batch_sizes(experiment, "bert")],
        "image": _training_specs(experiment, "image"),
        "alexnet": _training_specs(experiment, "alexnet"),
    }


def measurement_dir(experiment: dict, measurement: dict) -> str:
    return fill(NOISE_MEASUREMENT, scale=experiment["scale"], name=measurement["name"])


def group_summaries(experiment: dict, group: str) -> list[str]:
    return [f"{measurement_dir(experiment, m)}/summary.json" for m in groups(experiment)[group]]


def group_arrays(experiment: dict, group: str) -> list[str]:
    return [f"{measurement_dir(experiment, m)}/noise.npz" for m in groups(experiment)[group]]


def all_summaries(experiment: dict) -> list[str]:
    return [path for group in GROUPS for path in group_summaries(experiment, group)]


def all_dirs(experiment: dict) -> list[str]:
    return [measurement_dir(experiment, m) for group in GROUPS for m in groups(experiment)[group]]


def group_input(experiment: dict, group: str) -> str:
    """The measured run's declared output; its snapshots/, result.json and checkpoint.pt lie beside it."""
    return f"{run_dir(experiment, ROLE_OF_GROUP[group])}/metrics.jsonl"


def measure_job(experiment: dict, group: str) -> dict:
    # figure settings and the other roles' runs are left out: changing them must not re-measure
    return job_config(experiment, "noise", omit=("figures", "runs"), measurements=groups(experiment)[group])


def output_root(experiment: dict, summaries: list[str]) -> str:
    """The folder under which one job writes <model>/<data>/pct<NNN>/bs<B>/ for each of its measurements."""
    root = fill(NOISE_ROOT, scale=experiment["scale"])
    return os.path.commonpath([os.path.dirname(path) for path in summaries] + [root])


def _select(experiment: dict, role: str, fraction=None, batch_size=None, variant=None, data="auto") -> list[dict]:
    group = "bert_variants" if variant else role
    return [m for m in groups(experiment)[group]
            if (fraction is None or m["fraction"] == fraction) and (batch_size is None or m["batch_size"] == batch_size)
            and m.get("variant") == variant and m["data"] == data]


def figure_panels(experiment: dict, figure: str) -> dict:
    """Measurement folders each noise figure draws, by panel."""
    def one(role, fraction=0.0, variant=None, data="auto"):
        first = batch_sizes(experiment, role)[0]
        return measurement_dir(experiment, _select(experiment, role, fraction, first, variant, data)[0])

    def course(role):
        first = batch_sizes(experiment, role)[0]
        return [measurement_dir(experiment, m) for m in _select(experiment, role, batch_size=first)]

    if figure == "fig2":
        return {"image": one("image"), "bert": one("bert")}
    if figure == "fig4":
        return {"a": one("bert"), "b": one("bert", variant="attention", data="gaussian"),
                "c": one("bert", variant="resnet_like"), "d": one("bert", variant="resnet_like", data="gaussian")}
    if figure == "fig5":
        return {"bert": course("bert"), "image": course("image")}
    if figure == "fig6":
        trained = max(experiment["noise"]["runs"]["alexnet"]["fractions"])
        return {"init": one("alexnet"), "trained": one("alexnet", fraction=trained)}
    if figure == "fig7":
        return {"image": course("image"), "bert": course("bert")}
    raise ValueError(f"not a noise figure: {figure}")


def figure_inputs(experiment: dict, figure: str) -> list[str]:
    panels = figure_panels(experiment, figure)
    folders = [p for v in panels.values() for p in (v if isinstance(v, list) else [v])]
    return [f"{folder}/summary.json" for folder in folders]


def figure_job(experiment: dict, figure: str) -> dict:
    return job_config(experiment, "noise", figure=figure, panels=figure_panels(experiment, figure))


def table_job(experiment: dict) -> dict:
    return job_config(experiment, "noise", figure="table", panels=all_dirs(experiment))
