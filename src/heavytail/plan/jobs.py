"""The config one job receives: its stage's section of the experiment, the data sections it reads, its own keys.

A job config holds only what its job reads, so that Snakemake reruns exactly the jobs a change affects (a new
QA generator setting reruns QA and SQuAD, not pretraining). Passed inline on the command line, it makes a job
whose config changed rerun, and the entry point writes it beside its outputs (resolved_config.json).
"""

from __future__ import annotations

import copy

# The data sections (of the experiment's `data`) each stage's jobs read; the data rules are stages of their
# own (corpus, tokenizer, images, qa), as is the packing of the MLM data.
DATA_SECTIONS = {
    "corpus": ("text",),
    "tokenizer": ("text", "tokenizer"),
    "images": ("images",),
    "qa": ("text", "qa"),
    "mlm_data": ("text", "tokenizer"),
    "pretrain": ("text", "tokenizer"),
    "squad": ("text", "tokenizer", "qa"),
    "vision": ("images",),
    "noise": ("text", "tokenizer", "images"),
    "theory": (),
    "bench": ("text", "tokenizer", "images"),
    "report": ("text", "tokenizer", "images", "qa"),
}
# the experiment section a stage's jobs receive (the data stages receive none)
SECTION_OF = {"pretrain": "pretrain", "squad": "squad", "vision": "vision", "noise": "noise", "theory": "theory",
              "report": "report"}


def job_config(experiment: dict, stage: str, omit: tuple[str, ...] = (), **extra) -> dict:
    """The job config of one job of `stage`: its section (less `omit`), scale, paths, data sections, extras."""
    section = experiment.get(SECTION_OF.get(stage, ""), {})
    job = {k: copy.deepcopy(v) for k, v in section.items() if k not in omit}
    data = {key: copy.deepcopy(experiment["data"][key]) for key in DATA_SECTIONS[stage]}
    job.update(scale=experiment["scale"], paths=copy.deepcopy(experiment["paths"]), data=data, stage=stage)
    job.update(extra)
    return job
