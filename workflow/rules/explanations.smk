# Beyond the paper: two later explanations of Adam's lead, tested on the same base BERT and data, side by side
# with the paper's (heavytail.plan.explanations; the claims are reports/paper.yaml's `later_explanations`).
#
#   snakemake batch_size_sweep    # Kunstner et al. 2023: final training loss against batch size up to the full
#                                 # batch (same steps at each), SGDm / Adam / GClip / sign descent, every lr tuned
#                                 # per batch size; the noise at each batch size
#   snakemake class_imbalance     # Kunstner et al. 2024: loss by token-frequency group of the Fig 1a / Fig 3 runs,
#                                 # a linear softmax model, the class-balanced vision runs as the control
#
# Sweep and linear jobs tune on seed 0 and then run the other seeds, each run resumable in its own folder.

from heavytail.constraints import check_explanations  # noqa: E402
from heavytail.plan import explanations as plan_explanations  # noqa: E402

_explanation_problems = check_explanations(EXPERIMENT)
if _explanation_problems:
    stop(_explanation_problems)


rule sweep_batch_size:
    input:
        data=PATHS.MLM_DATA,
    output:
        PATHS.SWEEP_CHOICE,
    log:
        "logs/{scale}/explanations/sweep_batch_size/{optimizer}_bs{batch_size}.log",
    benchmark:
        "benchmarks/{scale}/explanations/sweep_batch_size/{optimizer}_bs{batch_size}.tsv"
    wildcard_constraints:
        optimizer="|".join(
            sorted({o for o, _ in plan_explanations.sweep_cells(EXPERIMENT)})
        )
        or "none",
        batch_size=r"\d+",
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_explanations.sweep_job),
        launcher=launcher,
        gpus=gpu_count,
    shell:
        retried(
            "{params.launcher} heavytail.train.batch_sweep --config {params.cfg} --threads {threads}"
            " --gpus {params.gpus} --out $(dirname {output})",
            "$(dirname {output})/attempts.jsonl",
        )


rule measure_noise_batch_sizes:
    input:
        data=PATHS.MLM_DATA.format(scale=SCALE),
    output:
        plan_explanations.noise_summaries(EXPERIMENT),
    log:
        f"logs/{SCALE}/explanations/measure_noise_batch_sizes.log",
    benchmark:
        f"benchmarks/{SCALE}/explanations/measure_noise_batch_sizes.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_explanations.noise_job),
        gpus=gpu_count,
    shell:
        retried(
            "python -m heavytail.train.sweep_noise --config {params.cfg} --threads {threads} --gpus {params.gpus}"
            f" --out results/{SCALE}/explanations/batch_size_sweep/noise",
            "{log}.attempts.jsonl",
        )


rule train_linear_softmax:
    input:
        data=PATHS.MLM_DATA,
    output:
        PATHS.LINEAR_CHOICE,
    log:
        "logs/{scale}/explanations/train_linear_softmax/{optimizer}.log",
    benchmark:
        "benchmarks/{scale}/explanations/train_linear_softmax/{optimizer}.tsv"
    wildcard_constraints:
        optimizer="|".join(plan_explanations.linear_labels(EXPERIMENT)) or "none",
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_explanations.linear_job),
        gpus=gpu_count,
    shell:
        retried(
            "python -m heavytail.train.linear_softmax --config {params.cfg} --threads {threads}"
            " --gpus {params.gpus} --out $(dirname {output})",
            "$(dirname {output})/attempts.jsonl",
        )


rule aggregate_batch_size_sweep:
    input:
        plan_explanations.aggregate_inputs(EXPERIMENT, "batch_size_sweep"),
    output:
        **plan_explanations.tables(EXPERIMENT, "batch_size_sweep"),
    log:
        f"logs/{SCALE}/explanations/aggregate_batch_size_sweep.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=quoted(plan_explanations.aggregate_job(EXPERIMENT, "batch_size_sweep")),
        out_dir=lambda wildcards, output: str(Path(output[0]).parent),
    shell:
        "python -m heavytail.report.explanations --config {params.cfg} --out {params.out_dir} > {log} 2>&1"


use rule aggregate_batch_size_sweep as aggregate_class_imbalance with:
    input:
        plan_explanations.aggregate_inputs(EXPERIMENT, "class_imbalance"),
        PATHS.MLM_DATA.format(scale=SCALE),
        PATHS.IMAGES_MANIFEST.format(scale=SCALE),
    output:
        **plan_explanations.tables(EXPERIMENT, "class_imbalance"),
    log:
        f"logs/{SCALE}/explanations/aggregate_class_imbalance.log",
    params:
        cfg=quoted(plan_explanations.aggregate_job(EXPERIMENT, "class_imbalance")),
        out_dir=lambda wildcards, output: str(Path(output[0]).parent),


rule plot_batch_size_sweep:
    input:
        **plan_explanations.tables(EXPERIMENT, "batch_size_sweep"),
    output:
        png=report(
            named(PATHS.FIGURE, "batch_size_sweep"),
            caption="../../reports/captions/batch_size_sweep.rst",
            category="Beyond the paper",
            labels={"figure": "batch_size_sweep", "scale": "{scale}"},
        ),
        svg=named(PATHS.FIGURE_SVG, "batch_size_sweep"),
    log:
        "logs/{scale}/explanations/plot_batch_size_sweep.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        figure="batch_size_sweep",
        tables_dir=lambda wildcards, input: str(Path(input[0]).parent),
    shell:
        "python -m heavytail.report.figures.explanations {params.figure} --tables {params.tables_dir}"
        " --out {output.png} > {log} 2>&1"


use rule plot_batch_size_sweep as plot_class_imbalance with:
    input:
        **plan_explanations.tables(EXPERIMENT, "class_imbalance"),
    output:
        png=report(
            named(PATHS.FIGURE, "class_imbalance"),
            caption="../../reports/captions/class_imbalance.rst",
            category="Beyond the paper",
            labels={"figure": "class_imbalance", "scale": "{scale}"},
        ),
        svg=named(PATHS.FIGURE_SVG, "class_imbalance"),
    log:
        "logs/{scale}/explanations/plot_class_imbalance.log",
    params:
        figure="class_imbalance",
        tables_dir=lambda wildcards, input: str(Path(input[0]).parent),


rule batch_size_sweep:
    input:
        ARTIFACTS.get("batch_size_sweep", []),


rule class_imbalance:
    input:
        ARTIFACTS.get("class_imbalance", []),
