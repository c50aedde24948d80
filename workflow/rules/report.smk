# Aggregation, the cost estimate, and the HTML report. These rules read result files; they never train.
#
#   snakemake report                       # tables + verdicts + reports/<scale>/index.html
#   snakemake budget --config scale=paper  # GPU-hours per target at small and paper scale, before running


AGGREGATED_TABLES = [
    "runs",
    "curves",
    "tuning",
    "noise",
    "theory",
    "adam_clipping",
    "bench",
    "jobs",
]
# the budget estimates small and paper scale whatever scale is selected (presets validated, defaults filled)
BUDGET_PRESETS = {_scale: config["presets"][_scale] for _scale in ("small", "paper")}


rule aggregate_results:
    localrule: True
    input:
        # every registered artifact, so aggregation runs after every experiment of this scale
        artifacts=[ARTIFACTS[name] for name in sorted(ARTIFACTS)],
    output:
        **{name: f"results/{{scale}}/tables/{name}.csv" for name in AGGREGATED_TABLES},
    log:
        "logs/{scale}/report/aggregate_results.log",
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    params:
        cfg=job_config("report"),
    shell:
        "python -m heavytail.report.aggregate --config {params.cfg} --out $(dirname {output.runs}) > {log} 2>&1"


rule estimate_budget:
    localrule: True
    output:
        report(
            "results/{scale}/tables/budget.csv",
            caption="../../reports/captions/budget.rst",
            category="Cost",
        ),
    log:
        "logs/{scale}/report/estimate_budget.log",
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    params:
        cfg=job_config("report", budget_presets=BUDGET_PRESETS),
    shell:
        "python -m heavytail.report.budget --config {params.cfg} --bench-dir results/bench --out {output} > {log} 2>&1"


rule render_report:
    localrule: True
    input:
        **data_summary_inputs(),
        artifacts=[ARTIFACTS[name] for name in sorted(ARTIFACTS)],
        tables=[f"results/{SCALE}/tables/{name}.csv" for name in AGGREGATED_TABLES],
        budget=f"results/{SCALE}/tables/budget.csv",
        # the paper's numbers and the template are sources: editing them re-renders the report
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
        template=str(Path(workflow.basedir) / "reports" / "templates" / "index.html.j2"),
    output:
        html=report(
            "reports/{scale}/index.html",
            caption="../../reports/captions/report.rst",
            category="Report",
        ),
        verdicts="reports/{scale}/verdicts.csv",
    log:
        "logs/{scale}/report/render_report.log",
    conda:
        "../../envs/report.yaml"
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    params:
        cfg=job_config("report", artifacts=ARTIFACTS),
    shell:
        "python -m heavytail.report.render --config {params.cfg} --paper {input.paper} --out {output.html} > {log} 2>&1"


rule report:
    input:
        f"reports/{SCALE}/index.html",


rule budget:
    input:
        f"results/{SCALE}/tables/budget.csv",
