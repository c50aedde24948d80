# Synthetic checks of the theory (Table 1): measured rates against the printed ones, Appendix A, GClip vs
# CClip as d grows, Theorem 2, and section 3.1's "Adam is clipping". CPU only, seconds at tiny scale.
# Compute and plotting are separate rules: restyling the figure never reruns the simulations.


register_artifact("table1", f"results/{SCALE}/tables/table1.csv")


rule run_theory:
    output:
        table="results/{scale}/theory/table1.csv",
        data="results/{scale}/theory/theory_data.json",
        errors="results/{scale}/theory/rate_errors.npz",
    log:
        "logs/{scale}/theory/run_theory.log",
    benchmark:
        "benchmarks/{scale}/theory/run_theory.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: threads_for("theory")
    resources:
        **resources_for("theory"),
    params:
        cfg=job_config("theory"),
        out_dir="results/{scale}/theory",
    shell:
        "python -m heavytail.theory.run --config {params.cfg} --out {params.out_dir} > {log} 2>&1"


rule plot_table1:
    localrule: True
    input:
        table="results/{scale}/theory/table1.csv",
        data="results/{scale}/theory/theory_data.json",
    output:
        png="results/{scale}/figures/table1.png",
        svg="results/{scale}/figures/table1.svg",
        table="results/{scale}/tables/table1.csv",
    log:
        "logs/{scale}/theory/plot_table1.log",
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    shell:
        'python -m heavytail.report.figures.theory --data "$(dirname {input.data})" --out {output.png} > {log} 2>&1'
        " && cp {input.table} {output.table}"


rule table1:
    input:
        f"results/{SCALE}/tables/table1.csv",
        f"results/{SCALE}/figures/table1.png",
