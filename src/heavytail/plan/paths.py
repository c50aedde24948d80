"""Every path template of the DAG, each written once: rules declare them, the plan fills them, the report reads them.

Templates keep Snakemake's wildcards ({scale}, {model}, ...); `fill(template, **values)` makes a concrete path.
"""

from __future__ import annotations

# --- data ------------------------------------------------------------------------------------------------
CORPUS = "results/{scale}/data/corpus"
TOKENIZER = "results/{scale}/data/tokenizer"
IMAGES_MANIFEST = "results/{scale}/data/images/manifest.json"
QA = "results/{scale}/data/qa"

# --- pretraining -----------------------------------------------------------------------------------------
MLM_DATA = "results/{scale}/pretrain/mlm_data"
LONG_MLM_DATA = "results/{scale}/pretrain/mlm_data_long"  # BERT's second phase, on longer sequences
TUNE_DIR = "results/{scale}/pretrain/tune/{optimizer}"
TUNE_CHOICE = TUNE_DIR + "/choice.json"
TUNE_GRID = TUNE_DIR + "/grid.json"
PRETRAIN_RUN = "results/{scale}/pretrain/{model}/{optimizer}/seed{seed}"
PRETRAIN_METRICS = PRETRAIN_RUN + "/metrics.jsonl"

# --- SQuAD: one job per (model, optimizer) trains every seed into its own folder --------------------------
SQUAD_JOB = "results/{scale}/squad/{model}/{optimizer}"
SQUAD_RUN = SQUAD_JOB + "/seed{seed}"
SQUAD_FEATURES = "results/{scale}/squad/features"

# --- vision: only metrics.jsonl and run.json are declared outputs, so that Snakemake never deletes the
# checkpoint and snapshots a requeued run resumes from ----------------------------------------------------
VISION_TUNE_DIR = "results/{scale}/vision/tune/{model}/{optimizer}"
VISION_TUNE_CHOICE = VISION_TUNE_DIR + "/choice.json"
VISION_TUNE_GRID = VISION_TUNE_DIR + "/grid.json"
VISION_RUN = "results/{scale}/vision/{model}/{optimizer}/seed{seed}"
VISION_METRICS = VISION_RUN + "/metrics.jsonl"
VISION_RUN_RECORD = VISION_RUN + "/run.json"

# --- noise: results/{scale}/noise/<model>/<data>/pct<NNN>/bs<B>/ per measurement -------------------------
NOISE_ROOT = "results/{scale}/noise"
NOISE_MEASUREMENT = NOISE_ROOT + "/{name}"
NOISE_TABLE = NOISE_ROOT + "/measurements.csv"

# --- theory ----------------------------------------------------------------------------------------------
THEORY_DIR = "results/{scale}/theory"
THEORY_TABLE = THEORY_DIR + "/table1.csv"
THEORY_DATA = THEORY_DIR + "/theory_data.json"
THEORY_ERRORS = THEORY_DIR + "/rate_errors.npz"

# --- later explanations (heavytail.plan.explanations): the batch-size sweep and the linear softmax model ------
EXPLAIN_ROOT = "results/{scale}/explanations"
SWEEP_CELL = EXPLAIN_ROOT + "/batch_size_sweep/{optimizer}/bs{batch_size}"
SWEEP_CHOICE = SWEEP_CELL + "/choice.json"
SWEEP_NOISE = EXPLAIN_ROOT + "/batch_size_sweep/noise/bs{batch_size}/summary.json"
LINEAR_CELL = EXPLAIN_ROOT + "/linear_softmax/{optimizer}"
LINEAR_CHOICE = LINEAR_CELL + "/choice.json"

# --- artifacts and the report ----------------------------------------------------------------------------
FIGURE = "results/{scale}/figures/{name}.png"
FIGURE_SVG = "results/{scale}/figures/{name}.svg"
TABLE = "results/{scale}/tables/{name}.csv"
REPORT_DIR = "reports/{scale}"
REPORT = REPORT_DIR + "/index.html"
VERDICTS = REPORT_DIR + "/verdicts.csv"
VERDICTS_JSON = REPORT_DIR + "/verdicts.json"
PAPER_CHECK = "reports/paper_check.json"  # the rules on the paper's own values: no scale
SCALES_PAGE = "reports/index.html"  # every scale judged so far, side by side
BENCH = "results/bench/{name}.json"


def fill(template: str, **values) -> str:
    """A concrete path: every wildcard of `template` replaced by its value."""
    return template.format(**values)


def named(template: str, name: str) -> str:
    """`template` with its {name} filled and its other wildcards ({scale}) kept: one artifact's rule output."""
    return template.replace("{name}", name)
