# Gradient noise (Figs 2, 4, 5, 6, 7): noise norms, variance curves and tail indices of the training runs'
# snapshots, never a retraining. One job per group of measurements (the BERT run, the BERT variants at init,
# the ResNet run, the AlexNet run; heavytail.plan.noise): each measurement still has its own folder
# results/{scale}/noise/<model>/<data>/pct<NNN>/bs<B>/ with summary.json, noise.npz and, at init,
# per_coordinate.npz. Plotting is separate: restyling never re-measures.
#
#   snakemake fig2 fig4 fig5 fig6 fig7


rule measure_noise_bert:
    input:
        plan_noise.group_input(EXPERIMENT, "bert"),
    output:
        summaries=plan_noise.group_summaries(EXPERIMENT, "bert"),
        arrays=plan_noise.group_arrays(EXPERIMENT, "bert"),
    log:
        f"logs/{SCALE}/noise/measure_noise_bert.log",
    benchmark:
        f"benchmarks/{SCALE}/noise/measure_noise_bert.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=quoted(plan_noise.measure_job(EXPERIMENT, "bert")),
        out_dir=noise_output_root,
        gpus=gpu_count,
    # a GPU job: retried only after a kill or time-out, which starts the measurement over
    shell:
        retried(
            "python -m heavytail.noise.measure --config {params.cfg} --out {params.out_dir} --threads {threads}"
            " --gpus {params.gpus}",
            "{log}.attempts.jsonl",
        )


use rule measure_noise_bert as measure_noise_bert_variants with:
    input:
        plan_noise.group_input(EXPERIMENT, "bert_variants"),
    output:
        summaries=plan_noise.group_summaries(EXPERIMENT, "bert_variants"),
        arrays=plan_noise.group_arrays(EXPERIMENT, "bert_variants"),
    log:
        f"logs/{SCALE}/noise/measure_noise_bert_variants.log",
    benchmark:
        f"benchmarks/{SCALE}/noise/measure_noise_bert_variants.tsv"
    params:
        cfg=quoted(plan_noise.measure_job(EXPERIMENT, "bert_variants")),
        out_dir=noise_output_root,
        gpus=gpu_count,


use rule measure_noise_bert as measure_noise_image with:
    input:
        plan_noise.group_input(EXPERIMENT, "image"),
    output:
        summaries=plan_noise.group_summaries(EXPERIMENT, "image"),
        arrays=plan_noise.group_arrays(EXPERIMENT, "image"),
    log:
        f"logs/{SCALE}/noise/measure_noise_image.log",
    benchmark:
        f"benchmarks/{SCALE}/noise/measure_noise_image.tsv"
    params:
        cfg=quoted(plan_noise.measure_job(EXPERIMENT, "image")),
        out_dir=noise_output_root,
        gpus=gpu_count,


use rule measure_noise_bert as measure_noise_alexnet with:
    input:
        plan_noise.group_input(EXPERIMENT, "alexnet"),
    output:
        summaries=plan_noise.group_summaries(EXPERIMENT, "alexnet"),
        arrays=plan_noise.group_arrays(EXPERIMENT, "alexnet"),
    log:
        f"logs/{SCALE}/noise/measure_noise_alexnet.log",
    benchmark:
        f"benchmarks/{SCALE}/noise/measure_noise_alexnet.tsv"
    params:
        cfg=quoted(plan_noise.measure_job(EXPERIMENT, "alexnet")),
        out_dir=noise_output_root,
        gpus=gpu_count,


rule tabulate_noise:
    input:
        plan_noise.all_summaries(EXPERIMENT),
    output:
        PATHS.NOISE_TABLE,
    log:
        "logs/{scale}/noise/tabulate_noise.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=quoted(plan_noise.table_job(EXPERIMENT)),
    shell:
        "python -m heavytail.report.figures.noise --config {params.cfg} --out {output} > {log} 2>&1"


rule plot_noise_fig2:
    input:
        plan_noise.figure_inputs(EXPERIMENT, "fig2"),
    output:
        png=report(
            ARTIFACTS["fig2"],
            caption="../../reports/captions/fig2.rst",
            category="Noise",
            labels={"figure": "Fig 2", "scale": SCALE},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig2").format(scale=SCALE),
    log:
        f"logs/{SCALE}/noise/plot_fig2.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=quoted(plan_noise.figure_job(EXPERIMENT, "fig2")),
    shell:
        "python -m heavytail.report.figures.noise --config {params.cfg} --out {output.png} > {log} 2>&1"


use rule plot_noise_fig2 as plot_noise_fig4 with:
    input:
        plan_noise.figure_inputs(EXPERIMENT, "fig4"),
    output:
        png=report(
            ARTIFACTS["fig4"],
            caption="../../reports/captions/fig4.rst",
            category="Noise",
            labels={"figure": "Fig 4", "scale": SCALE},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig4").format(scale=SCALE),
    log:
        f"logs/{SCALE}/noise/plot_fig4.log",
    params:
        cfg=quoted(plan_noise.figure_job(EXPERIMENT, "fig4")),


use rule plot_noise_fig2 as plot_noise_fig5 with:
    input:
        plan_noise.figure_inputs(EXPERIMENT, "fig5"),
    output:
        png=report(
            ARTIFACTS["fig5"],
            caption="../../reports/captions/fig5.rst",
            category="Noise",
            labels={"figure": "Fig 5", "scale": SCALE},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig5").format(scale=SCALE),
    log:
        f"logs/{SCALE}/noise/plot_fig5.log",
    params:
        cfg=quoted(plan_noise.figure_job(EXPERIMENT, "fig5")),


use rule plot_noise_fig2 as plot_noise_fig6 with:
    input:
        plan_noise.figure_inputs(EXPERIMENT, "fig6"),
    output:
        png=report(
            ARTIFACTS["fig6"],
            caption="../../reports/captions/fig6.rst",
            category="Noise",
            labels={"figure": "Fig 6", "scale": SCALE},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig6").format(scale=SCALE),
    log:
        f"logs/{SCALE}/noise/plot_fig6.log",
    params:
        cfg=quoted(plan_noise.figure_job(EXPERIMENT, "fig6")),


use rule plot_noise_fig2 as plot_noise_fig7 with:
    input:
        plan_noise.figure_inputs(EXPERIMENT, "fig7"),
    output:
        png=report(
            ARTIFACTS["fig7"],
            caption="../../reports/captions/fig7.rst",
            category="Noise",
            labels={"figure": "Fig 7", "scale": SCALE},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig7").format(scale=SCALE),
    log:
        f"logs/{SCALE}/noise/plot_fig7.log",
    params:
        cfg=quoted(plan_noise.figure_job(EXPERIMENT, "fig7")),


rule fig2:
    input:
        ARTIFACTS["fig2"],


rule fig4:
    input:
        ARTIFACTS["fig4"],


rule fig5:
    input:
        ARTIFACTS["fig5"],


rule fig6:
    input:
        ARTIFACTS["fig6"],


rule fig7:
    input:
        ARTIFACTS["fig7"],
        # the table of every measurement (all groups, batch sizes) goes with the tail-index figure
        PATHS.NOISE_TABLE.format(scale=SCALE),


rule noise_table:
    input:
        PATHS.NOISE_TABLE.format(scale=SCALE),
