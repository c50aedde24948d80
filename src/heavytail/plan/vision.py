"""The vision runs (Fig 1b, Fig 8, the AlexNet snapshots of Fig 6) and their job configs."""

from __future__ import annotations

from heavytail.constraints import FIG1B_OPTIMIZERS, FIG8_OPTIMIZERS
from heavytail.plan.explanations import frequency_groups_for
from heavytail.plan.jobs import job_config
from heavytail.plan.paths import IMAGES_MANIFEST, VISION_METRICS, VISION_RUN, VISION_TUNE_CHOICE, fill


def run_dir(experiment: dict, model: str, optimizer: str, seed: int) -> str:
    return fill(VISION_RUN, scale=experiment["scale"], model=model, optimizer=optimizer, seed=seed)


def metrics(experiment: dict, model: str, optimizers=None) -> list[str]:
    """metrics.jsonl of `model`'s runs for `optimizers` (default: the model's own list), every seed."""
    vision = experiment["vision"]
    spec = vision["models"][model]
    return [fill(VISION_METRICS, scale=experiment["scale"], model=model, optimizer=o, seed=s)
            for o in (optimizers or spec["optimizers"]) for s in vision["seeds"]]


def tuned_choice(scale: str, model: str, optimizer: str) -> str:
    """The tune stage's choice a final run merges in: every (model, label) is tuned alike."""
    return fill(VISION_TUNE_CHOICE, scale=scale, model=model, optimizer=optimizer)


def tuned_choice_input(experiment: dict, scale: str, model: str, optimizer: str) -> list[str]:
    return [tuned_choice(scale, model, optimizer)]


def vision_job(experiment: dict, scale: str, model: str, optimizer: str, seed: str | int) -> dict:
    groups = frequency_groups_for(experiment, "vision", model)  # the class-balanced control of the frequency groups
    return job_config(experiment, "vision", model=model, optimizer=optimizer, seed=int(seed),
                      manifest=fill(IMAGES_MANIFEST, scale=scale), tuned_choice=tuned_choice(scale, model, optimizer),
                      **({"frequency_groups": groups} if groups else {}))


def tune_job(experiment: dict, scale: str, model: str, optimizer: str) -> dict:
    return job_config(experiment, "vision", model=model, optimizer=optimizer,
                      manifest=fill(IMAGES_MANIFEST, scale=scale))


def fig1b_runs(experiment: dict) -> list[str]:
    return metrics(experiment, "resnet", list(FIG1B_OPTIMIZERS))


def fig8_runs(experiment: dict) -> list[str]:
    return metrics(experiment, "resnet", list(FIG8_OPTIMIZERS))
