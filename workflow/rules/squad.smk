# SQuAD v1.1 fine-tuning (Table 3): each model size, Adam vs ACClip, 5 seeds, official EM/F1.
# At tiny scale the QA data is generated from Wikipedia (not SQuAD); Table 3 says so in its rows, beside two
# trivial baselines (the first year, the first span of the asked type).
#
#   snakemake table3                      # fine-tune every (model, optimizer, seed) and write the table


include: "squad_helpers.smk"


rule finetune_squad:
    input:
        init=squad_init_input,
        tokenizer="results/{scale}/data/tokenizer",
        qa="results/{scale}/data/qa",
    output:
        scores=expand(f"{SQUAD_RUN}/scores.json", seed=SQUAD_SEEDS, allow_missing=True),
        predictions=expand(f"{SQUAD_RUN}/predictions.json", seed=SQUAD_SEEDS, allow_missing=True),
        metrics=expand(f"{SQUAD_RUN}/metrics.jsonl", seed=SQUAD_SEEDS, allow_missing=True),
    log:
        "logs/{scale}/squad/{model}/{optimizer}.log",
    benchmark:
        "benchmarks/{scale}/squad/{model}/{optimizer}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: threads_for("train")
    resources:
        **resources_for("train"),
    params:
        cfg=squad_job_config,
        out_dir="results/{scale}/squad/{model}/{optimizer}",
        cache_dir="results/{scale}/squad/features",
        launcher=launcher_for("train"),
    shell:
        "{params.launcher} heavytail.train.finetune_squad --config {params.cfg} --threads {threads}"
        " --out {params.out_dir} --cache-dir {params.cache_dir} > {log} 2>&1"


rule tabulate_squad:
    input:
        scores=squad_scores,
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
    output:
        "results/{scale}/tables/table3.csv",
    log:
        "logs/{scale}/squad/tabulate_squad.log",
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        "python -m heavytail.report.figures.squad --scores {input.scores} --paper {input.paper} --out {output}"
        " > {log} 2>&1"


rule table3:
    input:
        f"results/{SCALE}/tables/table3.csv",
