"""The paper's artifacts this experiment builds, what the report reads, and which data each target reads."""

from __future__ import annotations

from heavytail.plan.explanations import FIGURES as EXPLANATION_FIGURES
from heavytail.plan.explanations import section as explanations_section
from heavytail.plan.noise import FIGURES as NOISE_FIGURES
from heavytail.plan.paths import (
    BENCH,
    CORPUS,
    FIGURE,
    IMAGES_MANIFEST,
    QA,
    REPORT,
    SCALES_PAGE,
    TABLE,
    TOKENIZER,
    fill,
)

# artifact -> its file (figures as PNG, tables as CSV); reproduce_all and the report collect them all
ARTIFACT_FILES = {
    "fig1a": FIGURE, "fig1b": FIGURE, "fig3": FIGURE, "fig8": FIGURE,
    **{name: FIGURE for name in NOISE_FIGURES},
    "table1": TABLE, "table2": TABLE, "table3": TABLE,
    # beyond the paper: the later explanations (heavytail.plan.explanations), where the experiment has them
    **{name: FIGURE for name in EXPLANATION_FIGURES},
}
# the data kinds (sections of `data`) the jobs behind each target read: the preflight checks only those
DATA_KINDS = {
    "fig1a": {"text", "tokenizer"}, "fig3": {"text", "tokenizer"}, "table2": {"text", "tokenizer"},
    "table3": {"text", "tokenizer", "qa"},
    "fig1b": {"images"}, "fig8": {"images"}, "table1": set(),
    **{name: {"text", "tokenizer", "images"} for name in NOISE_FIGURES},
    "batch_size_sweep": {"text", "tokenizer"}, "class_imbalance": {"text", "tokenizer", "images"},
}
ALL_DATA = {"text", "tokenizer", "images", "qa"}
# targets that read no data at all (the budget reads configs; benchmarks time synthetic workloads)
NO_DATA_TARGETS = {"budget", "estimate_budget", "bench", "run_theory", "plot_table1"}
AGGREGATED_TABLES = ("runs", "curves", "tuning", "noise", "theory", "adam_clipping", "bench", "jobs")
BENCHMARKS = ("optim", "noise", "vision", "pretrain", "packing", "decode")


def artifacts(experiment: dict) -> dict[str, str]:
    """{artifact: its file at this scale}, sorted by name."""
    scale = experiment["scale"]
    skipped = () if explanations_section(experiment) else EXPLANATION_FIGURES
    return {name: fill(ARTIFACT_FILES[name], scale=scale, name=name) for name in sorted(ARTIFACT_FILES)
            if name not in skipped}


def final_outputs(experiment: dict) -> list[str]:
    """Every artifact of this scale, then its HTML report and the page of every scale judged so far: what
    `reproduce_all` builds."""
    return list(artifacts(experiment).values()) + [fill(REPORT, scale=experiment["scale"]), SCALES_PAGE]


def aggregated_tables(experiment: dict) -> dict[str, str]:
    return {name: fill(TABLE, scale=experiment["scale"], name=name) for name in AGGREGATED_TABLES}


def data_summary_inputs(experiment: dict) -> dict[str, str]:
    """The prepared data sets, whose statistics the report states at the top."""
    scale = experiment["scale"]
    return {"corpus": fill(CORPUS, scale=scale), "tokenizer": fill(TOKENIZER, scale=scale),
            "images": fill(IMAGES_MANIFEST, scale=scale), "qa": fill(QA, scale=scale)}


def bench_outputs() -> list[str]:
    return [fill(BENCH, name=name) for name in BENCHMARKS]


def data_kinds_for(targets: list[str]) -> set[str]:
    """The data kinds the requested targets read; every kind when a target is not known by name (a file, a
    rule of a stage, reproduce_all), so that nothing is left unchecked."""
    if not targets:
        return set(ALL_DATA)
    kinds: set[str] = set()
    for target in targets:
        if target in NO_DATA_TARGETS:
            continue
        if target not in DATA_KINDS:
            return set(ALL_DATA)
        kinds |= DATA_KINDS[target]
    return kinds


def vocab_size(experiment: dict) -> int:
    """The tokenizer's vocabulary: the configured size of a trained WordPiece, bert-base-uncased's otherwise."""
    tokenizer = experiment["data"]["tokenizer"]
    return tokenizer["vocab_size"] if tokenizer["kind"] == "train_wordpiece" else 30522


def bench_pretrain_extras(experiments: dict[str, dict]) -> dict:
    """What the pretraining benchmark times at every scale: the pretrain sections and their vocabularies."""
    return {"pretrain_experiments": {s: e["pretrain"] for s, e in experiments.items()},
            "vocab_sizes": {s: vocab_size(e) for s, e in experiments.items()}}
