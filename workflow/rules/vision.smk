# Vision experiments: ResNet SGDm vs Adam vs ACClip (Fig 1b, Fig 8, Appendix I accuracies) and AlexNet
# checkpoints for Fig 6. One train_vision job per (model, optimizer label, seed) of presets.<scale>.vision:
#   results/{scale}/vision/{model}/{optimizer}/seed{seed}/  metrics.jsonl, run.json, checkpoint.pt,
#   snapshots/step<N>.pt (+ index.json: fraction -> file) at the model's snapshot_fractions, for the noise rules.
# Only metrics.jsonl and run.json are declared outputs: Snakemake deletes declared outputs before a rerun, and
# checkpoint.pt and the snapshots must survive a requeue for the run to resume. Noise rules take metrics.jsonl
# as input and read snapshots/index.json beside it (vision_snapshot_index()).
# Figures read metrics.jsonl directly (never the aggregated tables: that would be a cycle).


include: "vision_helpers.smk"


rule train_vision:
    input:
        manifest="results/{scale}/data/images/manifest.json",
    output:
        metrics="results/{scale}/vision/{model}/{optimizer}/seed{seed}/metrics.jsonl",
        run="results/{scale}/vision/{model}/{optimizer}/seed{seed}/run.json",
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
    threads: threads_for("train")
    resources:
        **resources_for("train"),
    params:
        cfg=vision_job_config,
        out_dir="results/{scale}/vision/{model}/{optimizer}/seed{seed}",
        launcher=launcher_for("train"),
    shell:
        "{params.launcher} heavytail.train.classify --config {params.cfg} --out {params.out_dir}"
        " --threads {threads} > {log} 2>&1"


rule plot_fig1b:
    input:
        fig1b_metrics,
    output:
        png=report(
            "results/{scale}/figures/fig1b.png",
            caption="../../reports/captions/fig1b.rst",
            category="Vision",
            labels={"figure": "Fig 1b", "scale": "{scale}"},
        ),
        svg="results/{scale}/figures/fig1b.svg",
    log:
        "logs/{scale}/vision/plot_fig1b.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.vision fig1b --runs $(dirname {input}) --out {output.png} > {log} 2>&1"


rule plot_fig8:
    input:
        fig8_metrics,
    output:
        png=report(
            "results/{scale}/figures/fig8.png",
            caption="../../reports/captions/fig8.rst",
            category="Vision",
            labels={"figure": "Fig 8", "scale": "{scale}"},
        ),
        svg="results/{scale}/figures/fig8.svg",
    log:
        "logs/{scale}/vision/plot_fig8.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.vision fig8 --runs $(dirname {input}) --out {output.png} > {log} 2>&1"


# Appendix I: final validation accuracy per optimizer beside the paper's 0.754 / 0.716 / 0.730
rule tabulate_vision_accuracy:
    input:
        fig8_metrics,
    output:
        report(
            "results/{scale}/tables/vision_accuracy.csv",
            caption="../../reports/captions/fig8.rst",
            category="Vision",
            labels={"table": "Appendix I accuracy", "scale": "{scale}"},
        ),
    log:
        "logs/{scale}/vision/tabulate_vision_accuracy.log",
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.vision accuracy --runs $(dirname {input}) --out {output} > {log} 2>&1"


# AlexNet runs of the preset: their snapshots (init, "5k iterations") feed Fig 6
rule train_alexnet:
    input:
        vision_metrics("alexnet"),


rule fig1b:
    input:
        f"results/{SCALE}/figures/fig1b.png",
        f"results/{SCALE}/tables/vision_accuracy.csv",


rule fig8:
    input:
        f"results/{SCALE}/figures/fig8.png",
        f"results/{SCALE}/tables/vision_accuracy.csv",
