# Aggregation, the cost estimate, and the HTML report. These rules read result files; they never train.
#
#   snakemake report                       # tables + verdicts + reports/<scale>/index.html
#   snakemake budget --config scale=paper  # GPU-hours per target at small and paper scale, before running


rule aggregate_results:
    input:
        # every artifact, so that aggregation runs after every experiment of this scale
        artifacts=list(ARTIFACTS.values()),
    output:
        **{name: named(PATHS.TABLE, name) for name in plan_artifacts.AGGREGATED_TABLES},
    log:
        "logs/{scale}/report/aggregate_results.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=stage_config("report"),
    shell:
        "python -m heavytail.report.aggregate --config {params.cfg} --out $(dirname {output.runs}) > {log} 2>&1"


rule estimate_budget:
    output:
        report(
            named(PATHS.TABLE, "budget"),
            caption="../../reports/captions/budget.rst",
            category="Cost",
        ),
    log:
        "logs/{scale}/report/estimate_budget.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=stage_config(
            "report", budget_experiments=experiments_of(("small", "paper"))
        ),
    shell:
        "python -m heavytail.report.budget --config {params.cfg} --bench-dir results/bench --out {output} > {log} 2>&1"


rule render_report:
    input:
        **plan_artifacts.data_summary_inputs(EXPERIMENT),
        artifacts=list(ARTIFACTS.values()),
        tables=list(plan_artifacts.aggregated_tables(EXPERIMENT).values()),
        budget=named(PATHS.TABLE, "budget").format(scale=SCALE),
        # the paper's numbers and the template are sources: editing them re-renders the report
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
        template=str(Path(workflow.basedir) / "reports" / "templates" / "index.html.j2"),
    output:
        html=report(
            PATHS.REPORT,
            caption="../../reports/captions/report.rst",
            category="Report",
        ),
        verdicts=PATHS.VERDICTS,
    log:
        "logs/{scale}/report/render_report.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=stage_config("report", artifacts=ARTIFACTS),
    shell:
        "python -m heavytail.report.render --config {params.cfg} --paper {input.paper} --out {output.html} > {log} 2>&1"


rule report:
    input:
        PATHS.REPORT.format(scale=SCALE),


rule budget:
    input:
        named(PATHS.TABLE, "budget").format(scale=SCALE),
