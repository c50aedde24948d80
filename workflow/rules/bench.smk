# Performance benchmarks (`snakemake bench`). Filled by the optimizer, noise and training capabilities.
#
#   snakemake --cores 2 bench        # every benchmark; JSON under results/bench/ for the report
#
# Benchmarks have no {scale}: they time fixed workloads. Each capability appends its output to
# BENCH_OUTPUTS above the `bench` target, which stays the last rule of this file.

BENCH_OUTPUTS = ["results/bench/optim.json"]
BENCH_OUTPUTS.append("results/bench/noise.json")


# ACClip vs torch AdamW on BERT-base shapes (fused, foreach, public-style loop). The inductor cache
# lives in the project so ACClip's fused kernel is compiled once, not once per job.
rule bench_optimizer:
    output:
        "results/bench/optim.json",
    log:
        "logs/bench/bench_optimizer.log",
    benchmark:
        "benchmarks/bench/bench_optimizer.tsv"
    params:
        cfg=job_config("bench"),
    threads: threads_for("bench")
    resources:
        **resources_for("bench"),
    conda:
        "../../envs/train.yaml"
    shell:
        "TORCHINDUCTOR_CACHE_DIR=resources/inductor_cache "
        "python -m heavytail.bench.optim --config {params.cfg} --out {output} --threads {threads} > {log} 2>&1"


# Noise-norm sampler vs plain forward+backward on a small BERT MLM: time ratio and peak extra memory.
rule bench_noise:
    output:
        "results/bench/noise.json",
    log:
        "logs/bench/bench_noise.log",
    benchmark:
        "benchmarks/bench/bench_noise.tsv"
    params:
        cfg=job_config("bench"),
    threads: threads_for("bench")
    resources:
        **resources_for("bench"),
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m heavytail.bench.noise --config {params.cfg} --out {output} --threads {threads} > {log} 2>&1"


# Tiny ResNet training on this CPU: images/s and the in-memory loader's share of the step time.
BENCH_OUTPUTS.append("results/bench/vision.json")


rule bench_vision:
    output:
        "results/bench/vision.json",
    log:
        "logs/bench/bench_vision.log",
    benchmark:
        "benchmarks/bench/bench_vision.tsv"
    params:
        cfg=job_config("bench"),
    threads: threads_for("bench")
    resources:
        **resources_for("bench"),
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m heavytail.bench.vision --config {params.cfg} --out {output} --threads {threads} > {log} 2>&1"


# Our BERT pretraining step (masked-only MLM head) vs stock BertForMaskedLM + torch AdamW, and tokens/s of
# every scale's pretraining model on this machine (GPU MFU of BERT-base where CUDA is visible).
BENCH_OUTPUTS.append("results/bench/pretrain.json")
BENCH_PRETRAIN = {
    "pretrain_presets": {
        _s: config["presets"][_s].get("pretrain", {})
        for _s in ("tiny", "small", "paper")
    },
    # a trained WordPiece vocab has the configured size; the pretrained tokenizers are bert-base-uncased's
    "vocab_sizes": {
        _s: (
            config["presets"][_s]["data"]["tokenizer"].get("vocab_size", 8192)
            if config["presets"][_s]["data"]["tokenizer"].get("kind")
            == "train_wordpiece"
            else 30522
        )
        for _s in ("tiny", "small", "paper")
    },
}


rule bench_pretrain:
    output:
        "results/bench/pretrain.json",
    log:
        "logs/bench/bench_pretrain.log",
    benchmark:
        "benchmarks/bench/bench_pretrain.tsv"
    conda:
        "../../envs/train.yaml"
    threads: threads_for("bench")
    resources:
        **resources_for("bench"),
    params:
        cfg=job_config("bench", **BENCH_PRETRAIN),
    shell:
        "python -m heavytail.bench.pretrain --config {params.cfg} --out {output} --threads {threads} > {log} 2>&1"


# --- keep last: every benchmark above appends to BENCH_OUTPUTS ---------------------------------------
rule bench:
    input:
        BENCH_OUTPUTS,
