# BERT pretraining (Fig 1a, Fig 3, Table 2): pack the corpus once, tune each optimizer's learning rate on a
# short grid, train every (model, optimizer, seed) the figures need, then aggregate and plot.
#
#   snakemake fig1a fig3 table2
#
# Training jobs exit 75 after checkpointing on SIGTERM/SIGUSR1; rerunning (or a profile's retries) resumes
# them from results/{scale}/pretrain/<model>/<optimizer>/seed<seed>/checkpoint.pt.


include: "pretrain_helpers.smk"


rule prepare_mlm_data:
    input:
        corpus="results/{scale}/data/corpus",
        tokenizer="results/{scale}/data/tokenizer",
    output:
        directory("results/{scale}/pretrain/mlm_data"),
    log:
        "logs/{scale}/pretrain/prepare_mlm_data.log",
    benchmark:
        "benchmarks/{scale}/pretrain/prepare_mlm_data.tsv"
    conda:
        "../../envs/train.yaml"
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    params:
        cfg=job_config("pretrain"),
    shell:
        "python -m heavytail.data.mlm --config {params.cfg} --corpus {input.corpus} --tokenizer {input.tokenizer}"
        " --out {output} > {log} 2>&1"


rule tune_pretrain:
    input:
        data="results/{scale}/pretrain/mlm_data",
    output:
        choice="results/{scale}/pretrain/tune/{optimizer}/choice.json",
        grid="results/{scale}/pretrain/tune/{optimizer}/grid.json",
    log:
        "logs/{scale}/pretrain/tune_{optimizer}.log",
    benchmark:
        "benchmarks/{scale}/pretrain/tune_{optimizer}.tsv"
    wildcard_constraints:
        optimizer=_alternation(PRETRAIN_TUNED),
    conda:
        "../../envs/train.yaml"
    threads: threads_for("tune")
    resources:
        **resources_for("tune"),
    params:
        cfg=tune_job_config,
    shell:
        "python -m heavytail.train.tune --config {params.cfg} --threads {threads}"
        " --out $(dirname {output.choice}) > {log} 2>&1"


rule pretrain_bert:
    input:
        data="results/{scale}/pretrain/mlm_data",
        choice=tuned_choice_path,
    output:
        f"{PRETRAIN_RUN}/metrics.jsonl",
    log:
        "logs/{scale}/pretrain/{model}/{optimizer}/seed{seed}.log",
    benchmark:
        "benchmarks/{scale}/pretrain/{model}/{optimizer}/seed{seed}.tsv"
    wildcard_constraints:
        model=PRETRAIN_MODELS,
        optimizer=PRETRAIN_OPTIMIZERS,
        seed=r"\d+",
    conda:
        "../../envs/train.yaml"
    threads: threads_for("train")
    resources:
        **resources_for("train"),
    params:
        cfg=pretrain_job_config,
        launcher=launcher_for("train"),
    shell:
        "{params.launcher} heavytail.train.pretrain --config {params.cfg} --threads {threads}"
        " --out $(dirname {output}) > {log} 2>&1"


rule plot_fig1a:
    input:
        FIG1A_RUNS,
    output:
        png="results/{scale}/figures/fig1a.png",
        svg="results/{scale}/figures/fig1a.svg",
    log:
        "logs/{scale}/pretrain/plot_fig1a.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.pretrain fig1a --metrics {input} --out {output.png} > {log} 2>&1"


rule plot_fig3:
    input:
        FIG3_RUNS,
    output:
        png="results/{scale}/figures/fig3.png",
        svg="results/{scale}/figures/fig3.svg",
    log:
        "logs/{scale}/pretrain/plot_fig3.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.pretrain fig3 --metrics {input} --out {output.png} > {log} 2>&1"


rule write_table2:
    input:
        TABLE2_RUNS,
    output:
        "results/{scale}/tables/table2.csv",
    log:
        "logs/{scale}/pretrain/write_table2.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.pretrain table2 --metrics {input} --out {output} > {log} 2>&1"


rule fig1a:
    input:
        f"results/{SCALE}/figures/fig1a.png",


rule fig3:
    input:
        f"results/{SCALE}/figures/fig3.png",


rule table2:
    input:
        f"results/{SCALE}/tables/table2.csv",
