# Performance benchmarks (`snakemake bench`): each prints ratios against a baseline measured in the same run.
#
#   snakemake --cores 2 bench        # every benchmark; JSON under results/bench/ for the report
#
# Benchmarks have no {scale}: they time fixed workloads. The inductor cache lives in the project so ACClip's
# fused kernel is compiled once, not once per job.


# ACClip vs torch AdamW on BERT-base shapes (fused, foreach, public-style loop)
rule bench_optimizer:
    output:
        PATHS.BENCH.format(name="optim"),
    log:
        "logs/bench/bench_optimizer.log",
    benchmark:
        "benchmarks/bench/bench_optimizer.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        module="optim",
        cfg=stage_config("bench"),
    shell:
        "TORCHINDUCTOR_CACHE_DIR=resources/inductor_cache python -m heavytail.bench.{params.module}"
        " --config {params.cfg} --out {output} --threads {threads} > {log} 2>&1"


# Noise-norm sampler vs plain forward+backward on a small BERT MLM: time ratio and peak extra memory
use rule bench_optimizer as bench_noise with:
    output:
        PATHS.BENCH.format(name="noise"),
    log:
        "logs/bench/bench_noise.log",
    benchmark:
        "benchmarks/bench/bench_noise.tsv"
    params:
        module="noise",
        cfg=stage_config("bench"),


# Tiny ResNet training on this CPU: images/s and the in-memory loader's share of the step time
use rule bench_optimizer as bench_vision with:
    output:
        PATHS.BENCH.format(name="vision"),
    log:
        "logs/bench/bench_vision.log",
    benchmark:
        "benchmarks/bench/bench_vision.tsv"
    params:
        module="vision",
        cfg=stage_config("bench"),


# Our BERT pretraining step (masked-only MLM head) vs stock BertForMaskedLM + torch AdamW, and tokens/s of
# every scale's pretraining model on this machine (GPU MFU of BERT-base where CUDA is visible)
use rule bench_optimizer as bench_pretrain with:
    output:
        PATHS.BENCH.format(name="pretrain"),
    log:
        "logs/bench/bench_pretrain.log",
    benchmark:
        "benchmarks/bench/bench_pretrain.tsv"
    params:
        module="pretrain",
        cfg=stage_config(
            "bench",
            **plan_artifacts.bench_pretrain_extras(
                experiments_of(("tiny", "small", "paper"))
            ),
        ),


# packing the MLM corpus: peak memory at 1x and 10x the corpus (flat: counted in chunks, compact dtypes)
use rule bench_optimizer as bench_packing with:
    output:
        PATHS.BENCH.format(name="packing"),
    log:
        "logs/bench/bench_packing.log",
    benchmark:
        "benchmarks/bench/bench_packing.tsv"
    params:
        module="packing",
        cfg=stage_config("bench"),


# JPEG decoding for the ImageNet loaders: images per second per core, torchvision.io against PIL
use rule bench_optimizer as bench_decode with:
    output:
        PATHS.BENCH.format(name="decode"),
    log:
        "logs/bench/bench_decode.log",
    benchmark:
        "benchmarks/bench/bench_decode.tsv"
    params:
        module="decode",
        cfg=stage_config("bench"),


rule bench:
    input:
        plan_artifacts.bench_outputs(),
