"""The BERT pretraining runs the artifacts need (Fig 1a, Fig 3, Table 2), their tuning and their job configs."""

from __future__ import annotations

from heavytail.constraints import FIG1A_OPTIMIZERS, TABLE2_OPTIMIZERS
from heavytail.plan.explanations import frequency_groups_for
from heavytail.plan.jobs import job_config
from heavytail.plan.paths import LONG_MLM_DATA, MLM_DATA, PRETRAIN_METRICS, TUNE_CHOICE, fill


def tuned_labels(experiment: dict) -> list[str]:
    """Optimizer labels with a tuning grid; the others train with their config values (acclip_paper)."""
    return sorted(experiment["pretrain"]["tune"]["lr_grid"])


def tuned_choice(experiment: dict, scale: str, optimizer: str) -> str | None:
    """The tune stage's choice.json that a run of `optimizer` merges into its setting, if it is tuned."""
    return fill(TUNE_CHOICE, scale=scale, optimizer=optimizer) if optimizer in tuned_labels(experiment) else None


def snapshot_fractions(experiment: dict, model: str, optimizer: str, seed: int) -> list[float]:
    """Every run keeps pretrain.snapshot_fractions; the run the noise stage measures adds its own fractions."""
    fractions = set(experiment["pretrain"]["snapshot_fractions"])
    run = experiment["noise"]["runs"]["bert"]
    if (run["model"], run["optimizer"], int(run["seed"])) == (model, optimizer, int(seed)):
        fractions |= set(run["fractions"])
    return sorted(fractions)


def data_folders(experiment: dict, scale: str) -> dict[str, str]:
    """The packed data a pretraining job reads: the first phase's, and the long phase's when there is one."""
    folders = {"mlm_data": fill(MLM_DATA, scale=scale)}
    if experiment["pretrain"]["long_phase"]:
        folders["long_mlm_data"] = fill(LONG_MLM_DATA, scale=scale)
    return folders


def data_inputs(experiment: dict, scale: str) -> list[str]:
    return list(data_folders(experiment, scale).values())


def pretrain_job(experiment: dict, scale: str, model: str, optimizer: str, seed: str | int) -> dict:
    groups = frequency_groups_for(experiment, "pretrain", model)  # the base model's runs log the loss by frequency
    return job_config(experiment, "pretrain", model=model, optimizer=optimizer, seed=int(seed),
                      **data_folders(experiment, scale),
                      tuned_choice=tuned_choice(experiment, scale, optimizer),
                      snapshot_fractions=snapshot_fractions(experiment, model, optimizer, int(seed)),
                      **({"frequency_groups": groups} if groups else {}))


def tune_job(experiment: dict, scale: str, optimizer: str) -> dict:
    return job_config(experiment, "pretrain", optimizer=optimizer, **data_folders(experiment, scale))


def mlm_data_job(experiment: dict, long: bool = False) -> dict:
    """Packing reads the sequence length, NSP and its seed: a new optimizer setting never repacks the corpus."""
    pre = experiment["pretrain"]
    length = pre["long_phase"]["max_seq_length"] if long else pre["max_seq_length"]
    return job_config(experiment, "mlm_data", max_seq_length=length, nsp=pre["nsp"], data_seed=pre["data_seed"])


def _metrics(experiment: dict, models, optimizers, seeds) -> list[str]:
    scale = experiment["scale"]
    return [fill(PRETRAIN_METRICS, scale=scale, model=m, optimizer=o, seed=s)
            for m in models for o in optimizers for s in seeds]


def fig1a_runs(experiment: dict) -> list[str]:
    pre = experiment["pretrain"]
    return _metrics(experiment, [pre["base_model"]], FIG1A_OPTIMIZERS, pre["seeds"])


def comparison_seeds(experiment: dict) -> list[int]:
    pre = experiment["pretrain"]
    return pre["seeds"][:pre["comparison_seeds"]]


def fig3_runs(experiment: dict) -> list[str]:
    pre = experiment["pretrain"]
    return _metrics(experiment, [pre["base_model"]], pre["fig3_optimizers"], comparison_seeds(experiment))


def table2_runs(experiment: dict) -> list[str]:
    pre = experiment["pretrain"]
    return _metrics(experiment, pre["table2_models"], TABLE2_OPTIMIZERS, comparison_seeds(experiment))


def tuned_choice_input(experiment: dict, scale: str, optimizer: str) -> list[str]:
    """The tune stage's choice as a rule input: a tuned run waits for (and follows) its grid."""
    choice = tuned_choice(experiment, scale, optimizer)
    return [choice] if choice else []
