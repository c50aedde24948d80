# heavytail: end-to-end reproduction of Zhang et al. (2020),
# "Why are Adaptive Methods Good for Attention Models?" (arXiv 1912.03194).
#
#   snakemake --workflow-profile workflow/profiles/local reproduce_all   # tiny scale (default), CPU, offline
#   snakemake fig3                                                       # one figure
#   snakemake --profile slurm reproduce_all                              # paper scale on a SLURM cluster
#   snakemake -n reproduce_all --config scale=small                      # what would run at another scale


configfile: "config.yaml"


# --- the experiment: config.yaml, the scale's changes, overrides; checked here, before any job --------------
include: "workflow/rules/common.smk"
# --- stages, in data-flow order ------------------------------------------------------------------------------
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/squad.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/vision.smk"
include: "workflow/rules/noise.smk"
# --- beyond the paper: later explanations of the Adam-SGD gap, side by side -------------------------------------
include: "workflow/rules/explanations.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/report.smk"


rule reproduce_all:
    default_target: True
    input:
        plan_artifacts.final_outputs(EXPERIMENT),
