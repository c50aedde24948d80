# BERT pretraining (Fig 1a, Fig 3, Table 2): pack the corpus once, tune each optimizer's learning rate on a
# short grid, train every (model, optimizer, seed) the figures need, then plot.
#
#   snakemake fig1a fig3 table2
#
# Training jobs exit 75 after checkpointing on SIGTERM/SIGUSR1; rerunning (or a profile's retries) resumes
# them from results/{scale}/pretrain/<model>/<optimizer>/seed<seed>/checkpoint.pt.


rule prepare_mlm_data:
    input:
        corpus=PATHS.CORPUS,
        tokenizer=PATHS.TOKENIZER,
    output:
        directory(PATHS.MLM_DATA),
    log:
        "logs/{scale}/pretrain/prepare_mlm_data.log",
    benchmark:
        "benchmarks/{scale}/pretrain/prepare_mlm_data.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        cfg=quoted(plan_pretrain.mlm_data_job(EXPERIMENT)),
    shell:
        "python -m heavytail.data.mlm --config {params.cfg} --corpus {input.corpus} --tokenizer {input.tokenizer}"
        " --out {output} > {log} 2>&1"


# BERT's second phase reads the corpus packed at its own length
use rule prepare_mlm_data as prepare_long_mlm_data with:
    output:
        directory(PATHS.LONG_MLM_DATA),
    log:
        "logs/{scale}/pretrain/prepare_long_mlm_data.log",
    benchmark:
        "benchmarks/{scale}/pretrain/prepare_long_mlm_data.tsv"
    params:
        cfg=quoted(plan_pretrain.mlm_data_job(EXPERIMENT, long=True)),


rule tune_pretrain:
    input:
        data=from_wildcards(plan_pretrain.data_inputs),
    output:
        choice=PATHS.TUNE_CHOICE,
        grid=PATHS.TUNE_GRID,
    log:
        "logs/{scale}/pretrain/tune_{optimizer}.log",
    benchmark:
        "benchmarks/{scale}/pretrain/tune_{optimizer}.tsv"
    wildcard_constraints:
        optimizer="|".join(plan_pretrain.tuned_labels(EXPERIMENT)),
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_pretrain.tune_job),
        gpus=gpu_count,
    shell:
        retried(
            "python -m heavytail.train.tune --config {params.cfg} --threads {threads} --gpus {params.gpus}"
            " --out $(dirname {output.choice})",
            "$(dirname {output.choice})/attempts.jsonl",
        )


rule pretrain_bert:
    input:
        data=from_wildcards(plan_pretrain.data_inputs),
        choice=from_wildcards(plan_pretrain.tuned_choice_input),
    output:
        PATHS.PRETRAIN_METRICS,
    log:
        "logs/{scale}/pretrain/{model}/{optimizer}/seed{seed}.log",
    benchmark:
        "benchmarks/{scale}/pretrain/{model}/{optimizer}/seed{seed}.tsv"
    wildcard_constraints:
        model="|".join(EXPERIMENT["pretrain"]["models"]),
        optimizer="|".join(EXPERIMENT["pretrain"]["optimizers"]),
        seed=r"\d+",
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_pretrain.pretrain_job),
        launcher=launcher,
        gpus=gpu_count,
    shell:
        retried(
            "{params.launcher} heavytail.train.pretrain --config {params.cfg} --threads {threads}"
            " --gpus {params.gpus} --out $(dirname {output})",
            "$(dirname {output})/attempts.jsonl",
        )


rule plot_fig1a:
    input:
        plan_pretrain.fig1a_runs(EXPERIMENT),
    output:
        png=report(
            named(PATHS.FIGURE, "fig1a"),
            caption="../../reports/captions/fig1a.rst",
            category="Pretraining",
            labels={"figure": "Fig 1a", "scale": "{scale}"},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig1a"),
    log:
        "logs/{scale}/pretrain/plot_fig1a.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.pretrain fig1a --metrics {input} --out {output.png} > {log} 2>&1"


rule plot_fig3:
    input:
        plan_pretrain.fig3_runs(EXPERIMENT),
    output:
        png=report(
            named(PATHS.FIGURE, "fig3"),
            caption="../../reports/captions/fig3.rst",
            category="Pretraining",
            labels={"figure": "Fig 3", "scale": "{scale}"},
        ),
        svg=named(PATHS.FIGURE_SVG, "fig3"),
    log:
        "logs/{scale}/pretrain/plot_fig3.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.pretrain fig3 --metrics {input} --out {output.png} > {log} 2>&1"


rule write_table2:
    input:
        plan_pretrain.table2_runs(EXPERIMENT),
    output:
        report(
            named(PATHS.TABLE, "table2"),
            caption="../../reports/captions/table2.rst",
            category="Pretraining",
            labels={"table": "Table 2", "scale": "{scale}"},
        ),
    log:
        "logs/{scale}/pretrain/write_table2.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.pretrain table2 --metrics {input} --out {output} > {log} 2>&1"


rule fig1a:
    input:
        ARTIFACTS["fig1a"],


rule fig3:
    input:
        ARTIFACTS["fig3"],


rule table2:
    input:
        ARTIFACTS["table2"],
