# Data preparation: corpus, tokenizer, images, QA. Cached: each output is rebuilt only when its config or
# input file changes. Same rules at every scale; the experiment's `data` section picks the sources.


rule prepare_corpus:
    input:
        corpus_input_files(),
    output:
        directory(PATHS.CORPUS),
    log:
        "logs/{scale}/data/prepare_corpus.log",
    benchmark:
        "benchmarks/{scale}/data/prepare_corpus.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        cfg=stage_config("corpus"),
    shell:
        # threads: worker processes for cleaning Wikipedia + BookCorpus at small/paper scale
        "python -m heavytail.data.corpus --config {params.cfg} --threads {threads} --out {output} > {log} 2>&1"


rule train_tokenizer:
    input:
        corpus=PATHS.CORPUS,
    output:
        directory(PATHS.TOKENIZER),
    log:
        "logs/{scale}/data/train_tokenizer.log",
    benchmark:
        "benchmarks/{scale}/data/train_tokenizer.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        cfg=stage_config("tokenizer"),
    shell:
        "python -m heavytail.data.tokenizer --config {params.cfg} --corpus {input.corpus} --out {output} > {log} 2>&1"


rule prepare_images:
    output:
        PATHS.IMAGES_MANIFEST,
    log:
        "logs/{scale}/data/prepare_images.log",
    benchmark:
        "benchmarks/{scale}/data/prepare_images.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        cfg=stage_config("images"),
    shell:
        "python -m heavytail.data.images --config {params.cfg} --out {output} > {log} 2>&1"


rule generate_qa:
    input:
        corpus=PATHS.CORPUS,
    output:
        directory(PATHS.QA),
    log:
        "logs/{scale}/data/generate_qa.log",
    benchmark:
        "benchmarks/{scale}/data/generate_qa.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        cfg=stage_config("qa"),
    shell:
        "python -m heavytail.data.qa --config {params.cfg} --corpus {input.corpus} --out {output} > {log} 2>&1"
