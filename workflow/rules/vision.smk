# Vision experiments: ResNet SGDm vs Adam vs ACClip (Fig 1b, Fig 8, Appendix I accuracies) and AlexNet
# checkpoints for Fig 6. One train_vision job per (model, optimizer label, seed) of the experiment's vision:
#   results/{scale}/vision/{model}/{optimizer}/seed{seed}/  metrics.jsonl, run.json, checkpoint.pt,
#   snapshots/step<N>.pt (+ index.json: fraction -> file) at the model's snapshot_fractions, for the noise rules.
# Only metrics.jsonl and run.json are declared outputs: Snakemake deletes declared outputs before a rerun, and
# checkpoint.pt and the snapshots must survive a requeue for the run to resume. Figures read metrics.jsonl.


# every (model, optimizer label) tuned alike: short runs over vision.tune.lr_factors x the label's lr
rule tune_vision:
    input:
        manifest=PATHS.IMAGES_MANIFEST,
    output:
        choice=PATHS.VISION_TUNE_CHOICE,
        grid=PATHS.VISION_TUNE_GRID,
    log:
        "logs/{scale}/vision/tune_vision/{model}/{optimizer}.log",
    benchmark:
        "benchmarks/{scale}/vision/tune_vision/{model}_{optimizer}.tsv"
    wildcard_constraints:
        model="[^/]+",
        optimizer="[^/]+",
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_vision.tune_job),
        launcher=launcher,
        gpus=gpu_count,
    shell:
        retried(
            "{params.launcher} heavytail.train.tune_vision --config {params.cfg} --threads {threads}"
            " --gpus {params.gpus} --out $(dirname {output.choice})",
            "$(dirname {output.choice})/attempts.jsonl",
        )


rule train_vision:
    input:
        manifest=PATHS.IMAGES_MANIFEST,
        choice=from_wildcards(plan_vision.tuned_choice_input),
    output:
        metrics=PATHS.VISION_METRICS,
        run=PATHS.VISION_RUN_RECORD,
    log:
        "logs/{scale}/vision/train_vision/{model}/{optimizer}/seed{seed}.log",
    benchmark:
        "benchmarks/{scale}/vision/train_vision/{model}_{optimizer}_seed{seed}.tsv"
    wildcard_constraints:
        model="[^/]+",
        optimizer="[^/]+",
        seed=r"\d+",
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_vision.vision_job),
        out_dir=PATHS.VISION_RUN,
        launcher=launcher,
        gpus=gpu_count,
    shell:
        retried(
            "{params.launcher} heavytail.train.classify --config {params.cfg} --out {params.out_dir}"
            " --threads {threads} --gpus {params.gpus}",
            "{params.out_dir}/attempts.jsonl",
        )


rule plot_fig1b:
    input:
        plan_vision.fig1b_runs(EXPERIMENT),
    output:
        png=report(
            named(PATHS.FIGURE, "fig1b"),
            caption="../../reports/captions/fig1b.rst",
            category="Vision",
            labels={"figure": "Fig 1b", "scale": "{scale}"},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig1b"),
    log:
        "logs/{scale}/vision/plot_fig1b.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.vision fig1b --runs $(dirname {input}) --out {output.png} > {log} 2>&1"


rule plot_fig8:
    input:
        plan_vision.fig8_runs(EXPERIMENT),
    output:
        png=report(
            named(PATHS.FIGURE, "fig8"),
            caption="../../reports/captions/fig8.rst",
            category="Vision",
            labels={"figure": "Fig 8", "scale": "{scale}"},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig8"),
    log:
        "logs/{scale}/vision/plot_fig8.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.vision fig8 --runs $(dirname {input}) --out {output.png} > {log} 2>&1"


# Appendix I: final validation accuracy per optimizer beside the paper's 0.754 / 0.716 / 0.730
rule tabulate_vision_accuracy:
    input:
        plan_vision.fig8_runs(EXPERIMENT),
    output:
        report(
            named(PATHS.TABLE, "vision_accuracy"),
            caption="../../reports/captions/fig8.rst",
            category="Vision",
            labels={"table": "Appendix I accuracy", "scale": "{scale}"},
        ),
    log:
        "logs/{scale}/vision/tabulate_vision_accuracy.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.vision accuracy --runs $(dirname {input}) --out {output} > {log} 2>&1"


# AlexNet runs of the experiment: their snapshots (init, "5k iterations") feed Fig 6
rule train_alexnet:
    input:
        plan_vision.metrics(EXPERIMENT, "alexnet"),


rule fig1b:
    input:
        ARTIFACTS["fig1b"],
        named(PATHS.TABLE, "vision_accuracy").format(scale=SCALE),


rule fig8:
    input:
        ARTIFACTS["fig8"],
        named(PATHS.TABLE, "vision_accuracy").format(scale=SCALE),
