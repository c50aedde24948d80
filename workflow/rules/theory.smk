# Synthetic checks of the theory (Table 1): measured rates against the printed ones, Appendix A, GClip vs
# CClip as d grows, Theorem 2, and section 3.1's "Adam is clipping". CPU only, seconds at tiny scale.
# Compute and plotting are separate rules: restyling the figure never reruns the simulations.


rule run_theory:
    output:
        table=PATHS.THEORY_TABLE,
        data=PATHS.THEORY_DATA,
        errors=PATHS.THEORY_ERRORS,
    log:
        "logs/{scale}/theory/run_theory.log",
    benchmark:
        "benchmarks/{scale}/theory/run_theory.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        cfg=stage_config("theory"),
        out_dir=PATHS.THEORY_DIR,
    shell:
        "python -m heavytail.theory.run --config {params.cfg} --out {params.out_dir} > {log} 2>&1"


rule plot_table1:
    input:
        table=PATHS.THEORY_TABLE,
        data=PATHS.THEORY_DATA,
    output:
        png=named(PATHS.FIGURE, "table1"),
        svg=named(PATHS.FIGURE_SVG, "table1"),
        table=report(
            named(PATHS.TABLE, "table1"),
            caption="../../reports/captions/table1.rst",
            category="Theory",
            labels={"table": "Table 1", "scale": "{scale}"},
        ),
    log:
        "logs/{scale}/theory/plot_table1.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        'python -m heavytail.report.figures.theory --data "$(dirname {input.data})" --out {output.png} > {log} 2>&1'
        " && cp {input.table} {output.table}"


rule table1:
    input:
        ARTIFACTS["table1"],
        named(PATHS.FIGURE, "table1").format(scale=SCALE),
