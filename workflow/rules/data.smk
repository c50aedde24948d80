# Data preparation: corpus, tokenizer, images, QA. Cached: each output is rebuilt only when its config or
# input file changes. Same rules at every scale; the data section of the preset picks the sources.


rule prepare_corpus:
    input:
        corpus_input_files(),
    output:
        directory("results/{scale}/data/corpus"),
    log:
        "logs/{scale}/data/prepare_corpus.log",
    benchmark:
        "benchmarks/{scale}/data/prepare_corpus.tsv"
    params:
        # threads: worker processes for cleaning Wikipedia + BookCorpus at small/paper scale
        cfg=job_config("corpus", threads=threads_for("data")),
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m heavytail.data.corpus --config {params.cfg} --out {output} > {log} 2>&1"


rule train_tokenizer:
    input:
        corpus="results/{scale}/data/corpus",
    output:
        directory("results/{scale}/data/tokenizer"),
    log:
        "logs/{scale}/data/train_tokenizer.log",
    benchmark:
        "benchmarks/{scale}/data/train_tokenizer.tsv"
    params:
        cfg=job_config("tokenizer"),
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m heavytail.data.tokenizer --config {params.cfg} --corpus {input.corpus} --out {output} > {log} 2>&1"


rule prepare_images:
    output:
        "results/{scale}/data/images/manifest.json",
    log:
        "logs/{scale}/data/prepare_images.log",
    benchmark:
        "benchmarks/{scale}/data/prepare_images.tsv"
    params:
        cfg=job_config("images"),
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m heavytail.data.images --config {params.cfg} --out {output} > {log} 2>&1"


rule generate_qa:
    input:
        corpus="results/{scale}/data/corpus",
    output:
        directory("results/{scale}/data/qa"),
    log:
        "logs/{scale}/data/generate_qa.log",
    benchmark:
        "benchmarks/{scale}/data/generate_qa.tsv"
    params:
        cfg=job_config("qa"),
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m heavytail.data.qa --config {params.cfg} --corpus {input.corpus} --out {output} > {log} 2>&1"
