# heavytail: end-to-end reproduction of Zhang et al. (2020),
# "Why are Adaptive Methods Good for Attention Models?" (arXiv 1912.03194).
#
#   snakemake --cores 2 reproduce_all                 # tiny scale (default), CPU, offline
#   snakemake --cores 2 fig3                          # one figure
#   snakemake --profile slurm reproduce_all           # paper scale on a SLURM cluster
#   snakemake -n reproduce_all --config scale=small   # what would run at another scale


configfile: "config.yaml"


# --- configuration: schema validation runs here, before any job -------------
include: "workflow/rules/common.smk"
# --- stages, in data-flow order ----------------------------------------------
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/squad.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/vision.smk"
include: "workflow/rules/noise.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/report.smk"
# --- paper artifacts whose experiment is not built yet ------------------------
include: "workflow/rules/pending.smk"


rule reproduce_all:
    default_target: True
    input:
        get_final_output(),
