# Performance benchmarks (`snakemake bench`). Filled by the optimizer, noise and training capabilities.
