"""The later explanations' runs beside the paper's: the batch-size sweep (Kunstner et al. 2023), the loss by token
frequency (Kunstner et al. 2024) with its linear softmax model, their job configs, figures and cost.

The experiment's `explanations` section drives it (workflow/schemas/explanations.schema.yaml); without one, none
of it is planned. Torch-free: imported when the Snakefile is parsed, and by the entry points for their keys.
"""

from __future__ import annotations

from heavytail.constraints import FIG1A_OPTIMIZERS
from heavytail.plan.jobs import job_config
from heavytail.plan.paths import (
    IMAGES_MANIFEST,
    LINEAR_CHOICE,
    MLM_DATA,
    PRETRAIN_METRICS,
    SWEEP_CHOICE,
    SWEEP_NOISE,
    TABLE,
    VISION_METRICS,
    fill,
)

SWEEP_FIGURE, IMBALANCE_FIGURE = "batch_size_sweep", "class_imbalance"
FIGURES = (SWEEP_FIGURE, IMBALANCE_FIGURE)
# the tables each part's aggregation writes (heavytail.report.explanations), by figure
TABLES = {SWEEP_FIGURE: ("batch_size_sweep", "sweep_claims"),
          IMBALANCE_FIGURE: ("frequency_groups", "frequency_group_sizes", "imbalance_claims")}
# what a sweep, noise or linear job reads of the pretrain section; the rest is left out, so that a new tuning grid
# of Fig 3 does not rerun the sweep; the runs train on the first phase's data only (no long phase)
PRETRAIN_OMITTED = ("comparison_seeds", "fig3_optimizers", "long_phase", "optimizers", "seeds", "snapshot_fractions",
                    "table2_models", "tune")
# the noise section's settings a sweep noise measurement uses
NOISE_SETTINGS = ("seed", "mode", "n_boot", "level", "progress_every", "device")


def section(experiment: dict) -> dict | None:
    return experiment.get("explanations")


def optimizer_setting(experiment: dict, label: str) -> dict:
    """The setting of an optimizer label: explanations.optimizers first, then pretrain.optimizers."""
    own = (section(experiment) or {}).get("optimizers") or {}
    return dict(own.get(label) or experiment["pretrain"]["optimizers"][label])


def seeds(experiment: dict) -> list[int]:
    return [int(s) for s in experiment["pretrain"]["seeds"]]


def _job(experiment: dict, **extra) -> dict:
    return job_config(experiment, "pretrain", omit=PRETRAIN_OMITTED, mlm_data=fill(MLM_DATA, scale=experiment["scale"]),
                      **extra)


# --- the batch-size sweep -----------------------------------------------------------------------------------------
def sweep_cells(experiment: dict) -> list[tuple[str, int]]:
    """(optimizer label, batch size) of every sweep job; none without an explanations section."""
    sweep = (section(experiment) or {}).get("batch_size_sweep")
    if not sweep:
        return []
    return [(label, int(b)) for label in sweep["optimizers"] for b in sweep["batch_sizes"]]


def full_batch(experiment: dict) -> int:
    """The subset's size: the last (largest) batch size."""
    return int(section(experiment)["batch_size_sweep"]["batch_sizes"][-1])


def sweep_choices(experiment: dict) -> list[str]:
    return [fill(SWEEP_CHOICE, scale=experiment["scale"], optimizer=o, batch_size=b) for o, b in sweep_cells(experiment)]


def _sweep_settings(experiment: dict) -> dict:
    sweep = section(experiment)["batch_size_sweep"]
    return {"steps": int(sweep["steps"]), "subset": full_batch(experiment),
            "micro_batch_size": sweep.get("micro_batch_size"), "seeds": seeds(experiment)}


def sweep_job(experiment: dict, scale: str, optimizer: str, batch_size: str | int) -> dict:
    """One (optimizer, batch size) cell: its lr grid on seed 0, then the other seeds at the chosen lr."""
    grid = [float(x) for x in section(experiment)["batch_size_sweep"]["lr_grid"][optimizer]]
    return _job(experiment, sweep={**_sweep_settings(experiment), "lr_grid": grid}, optimizer=optimizer,
                optimizer_setting=optimizer_setting(experiment, optimizer), batch_size=int(batch_size))


def noise_batch_sizes(experiment: dict) -> list[int]:
    """The batch sizes whose noise is measured: every one but the full batch, whose noise is zero by construction."""
    return [b for b in section(experiment)["batch_size_sweep"]["batch_sizes"][:-1]] if sweep_cells(experiment) else []


def noise_summaries(experiment: dict) -> list[str]:
    return [fill(SWEEP_NOISE, scale=experiment["scale"], batch_size=b) for b in noise_batch_sizes(experiment)]


def noise_job(experiment: dict) -> dict:
    noise = experiment["noise"]
    return _job(experiment, sweep=_sweep_settings(experiment), batch_sizes=noise_batch_sizes(experiment),
                noise={**{k: noise[k] for k in NOISE_SETTINGS if k in noise},
                       "n_samples": int(section(experiment)["batch_size_sweep"]["noise_samples"])})


# --- loss by token frequency ----------------------------------------------------------------------------------
def frequency_groups_for(experiment: dict, stage: str, model: str) -> int | None:
    """How many frequency groups a training run logs: the base BERT's runs (Fig 1a, Fig 3) and every vision run."""
    imbalance = (section(experiment) or {}).get("class_imbalance")
    if not imbalance:
        return None
    if stage == "pretrain" and model != experiment["pretrain"]["base_model"]:
        return None
    return int(imbalance["groups"])


def linear_labels(experiment: dict) -> list[str]:
    imbalance = (section(experiment) or {}).get("class_imbalance")
    return list(imbalance["linear"]["lr_grid"]) if imbalance else []


def linear_choices(experiment: dict) -> list[str]:
    return [fill(LINEAR_CHOICE, scale=experiment["scale"], optimizer=o) for o in linear_labels(experiment)]


def linear_job(experiment: dict, scale: str, optimizer: str) -> dict:
    imbalance = section(experiment)["class_imbalance"]
    linear = {"steps": int(imbalance["linear"]["steps"]), "groups": int(imbalance["groups"]), "seeds": seeds(experiment),
              "lr_grid": [float(x) for x in imbalance["linear"]["lr_grid"][optimizer]]}
    return _job(experiment, linear=linear, optimizer=optimizer, optimizer_setting=optimizer_setting(experiment, optimizer))


def imbalance_runs(experiment: dict) -> list[str]:
    """metrics.jsonl of every run that logs its loss by frequency group: the base BERT's, then the vision runs."""
    if not (section(experiment) or {}).get("class_imbalance"):
        return []
    pre, vision, scale = experiment["pretrain"], experiment["vision"], experiment["scale"]
    fig3_seeds = pre["seeds"][:pre["comparison_seeds"]]  # heavytail.plan.pretrain.fig3_runs' seeds
    bert = [(o, s) for o in FIG1A_OPTIMIZERS for s in pre["seeds"]] + [(o, s) for o in pre["fig3_optimizers"]
                                                                      for s in fig3_seeds]
    texts = [fill(PRETRAIN_METRICS, scale=scale, model=pre["base_model"], optimizer=o, seed=s) for o, s in bert]
    images = [fill(VISION_METRICS, scale=scale, model=m, optimizer=o, seed=s)
              for m, spec in vision["models"].items() for o in spec["optimizers"] for s in vision["seeds"]]
    return list(dict.fromkeys(texts)) + images


# --- aggregation, figures, targets ----------------------------------------------------------------------------
def table(experiment: dict, name: str) -> str:
    return fill(TABLE, scale=experiment["scale"], name=name)


def aggregate_inputs(experiment: dict, figure: str) -> list[str]:
    if figure == SWEEP_FIGURE:
        return sweep_choices(experiment) + noise_summaries(experiment)
    return imbalance_runs(experiment) + linear_choices(experiment)


def aggregate_job(experiment: dict, figure: str) -> dict:
    """What one part's aggregation reads: the sweep's choices and noise, or the runs that log their groups."""
    scale = experiment["scale"]
    if figure == SWEEP_FIGURE:
        sweep = (section(experiment) or {}).get("batch_size_sweep") or {}
        spec = {"part": "sweep", "sweep_choices": sweep_choices(experiment),
                "noise_summaries": noise_summaries(experiment),
                "batch_sizes": [int(b) for b in sweep.get("batch_sizes", [])]}
    else:
        imbalance = (section(experiment) or {}).get("class_imbalance") or {}
        spec = {"part": "imbalance", "imbalance_runs": imbalance_runs(experiment),
                "linear_choices": linear_choices(experiment), "mlm_data": fill(MLM_DATA, scale=scale),
                "manifest": fill(IMAGES_MANIFEST, scale=scale), "groups": int(imbalance.get("groups", 0))}
    return job_config(experiment, "report", explanations=spec)


def tables(experiment: dict, figure: str) -> dict[str, str]:
    return {name: table(experiment, name) for name in TABLES[figure]}


def all_tables(experiment: dict) -> list[str]:
    """Every table the later explanations' claims and report section read; none without the section."""
    return [table(experiment, name) for figure in artifacts(experiment) for name in TABLES[figure]]


def artifacts(experiment: dict) -> list[str]:
    """The stage's figures; empty without an explanations section."""
    return list(FIGURES) if section(experiment) else []


# --- cost (the budget prices the stage at small and paper scale) --------------------------------------------------
def cost(experiment: dict) -> list[dict]:
    """Per rule: runs, steps per run and examples per step (sequences; masked tokens for the linear model)."""
    if not section(experiment):
        return []
    rows = []
    sweep = section(experiment)["batch_size_sweep"]
    repeats = len(seeds(experiment)) - 1
    for label, batch in sweep_cells(experiment):
        runs = len(sweep["lr_grid"][label]) + repeats
        rows.append({"rule": "sweep_batch_size", "target": f"batch_size_sweep {label} bs{batch}", "runs": runs,
                     "steps": int(sweep["steps"]), "examples_per_step": batch, "kind": "bert"})
    full = full_batch(experiment)
    for batch in noise_batch_sizes(experiment):
        rows.append({"rule": "measure_noise_batch_sizes", "target": f"batch_size_sweep noise bs{batch}", "runs": 1,
                     "steps": full // batch + int(sweep["noise_samples"]), "examples_per_step": batch, "kind": "bert"})
    pre = experiment["pretrain"]
    masked = min(pre["max_predictions_per_seq"], round(pre["mask_probability"] * (pre["max_seq_length"] - 2)))
    linear = section(experiment)["class_imbalance"]["linear"]
    for label in linear_labels(experiment):
        rows.append({"rule": "train_linear_softmax", "target": f"class_imbalance linear {label}",
                     "runs": len(linear["lr_grid"][label]) + repeats, "steps": int(linear["steps"]),
                     "examples_per_step": int(pre["train"]["batch_size"]) * max(1, int(masked)), "kind": "linear"})
    return rows
