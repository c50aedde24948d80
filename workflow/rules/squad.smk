# SQuAD v1.1 fine-tuning (Table 3): each model size, Adam vs ACClip, 5 seeds, official EM/F1.
# At tiny scale the QA data is generated from Wikipedia (not SQuAD); Table 3 says so in its rows, beside two
# trivial baselines (the first year, the first span of the asked type).
#
#   snakemake table3
#
# One job runs every seed of a (model, optimizer): at tiny scale a run trains for seconds while starting
# Python with torch, transformers and datasets takes ~7 s, so per-seed jobs would spend most of the
# budget on imports. Each seed still has its own run folder, scores and predictions.


rule finetune_squad:
    input:
        init=from_wildcards(plan_squad.init_input),
        tokenizer=PATHS.TOKENIZER,
        qa=PATHS.QA,
    output:
        scores=plan_squad.seed_outputs(EXPERIMENT, "scores.json"),
        predictions=plan_squad.seed_outputs(EXPERIMENT, "predictions.json"),
        metrics=plan_squad.seed_outputs(EXPERIMENT, "metrics.jsonl"),
    log:
        "logs/{scale}/squad/{model}/{optimizer}.log",
    benchmark:
        "benchmarks/{scale}/squad/{model}/{optimizer}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        attempt=attempt_number,
    params:
        cfg=job_param(plan_squad.squad_job),
        out_dir=PATHS.SQUAD_JOB,
        cache_dir=PATHS.SQUAD_FEATURES,
        launcher=launcher,
        gpus=gpu_count,
    shell:
        retried(
            "{params.launcher} heavytail.train.finetune_squad --config {params.cfg} --threads {threads}"
            " --gpus {params.gpus} --out {params.out_dir} --cache-dir {params.cache_dir}",
            "{params.out_dir}/attempts.jsonl",
        )


rule tabulate_squad:
    input:
        scores=plan_squad.run_files(EXPERIMENT, "scores.json"),
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
    output:
        report(
            named(PATHS.TABLE, "table3"),
            caption="../../reports/captions/table3.rst",
            category="SQuAD",
            labels={"table": "Table 3", "scale": "{scale}"},
        ),
    log:
        "logs/{scale}/squad/tabulate_squad.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.figures.squad --scores {input.scores} --paper {input.paper} --out {output}"
        " > {log} 2>&1"


rule table3:
    input:
        ARTIFACTS["table3"],
