# Aggregation, the verdicts, the cost estimate and the reports. These rules read result files; they never train.
#
#   snakemake report                        # tables, verdicts, reports/<scale>/index.html, reports/index.html
#   snakemake budget --config scale=paper   # GPU-hours per target at small and paper scale, before running
#   snakemake --report reports/tiny/snakemake-report.zip   # Snakemake's own report: same captions, one zip
#
# Judging and rendering are separate rules: restyling the report (templates, captions) re-runs render_report
# alone, in seconds; the rules on the paper's own values do not depend on any scale and run once.

from heavytail.config import SCALES
from heavytail.report import workflow_outputs

REPORT_DIR = PATHS.REPORT_DIR
VERDICTS_JSON = PATHS.VERDICTS_JSON
PAPER_CHECK = PATHS.PAPER_CHECK
SCALES_PAGE = PATHS.SCALES_PAGE
TEMPLATES = Path(workflow.basedir) / "reports" / "templates"
CAPTIONS = Path(workflow.basedir) / "reports" / "captions"
# the runs a claim cites link to their jobs' logs, found from every rule's (output, log) templates
JUDGE_CONFIG = stage_config(
    "report", job_logs=workflow_outputs.job_logs(workflow.rules)
)
# artifacts no stage rule puts in Snakemake's report go in it as render_report's copies, with their captions
REPORT_COPIES = workflow_outputs.report_copies(
    workflow.rules, ARTIFACTS, REPORT_DIR, report
)


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


rule check_paper_values:
    input:
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
        values=str(Path(workflow.basedir) / "reports" / "paper_values.yaml"),
    output:
        PAPER_CHECK,
    log:
        "logs/report/check_paper_values.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.paper_check --paper {input.paper} --values {input.values} --out {output}"
        " > {log} 2>&1"


rule judge_claims:
    input:
        tables=list(plan_artifacts.aggregated_tables(EXPERIMENT).values()),
        # beyond the paper: the later explanations' claims read their own tables
        explanations=plan_explanations.all_tables(EXPERIMENT),
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
        check=PAPER_CHECK,
    output:
        json=VERDICTS_JSON,
        csv=PATHS.VERDICTS,
    log:
        "logs/{scale}/report/judge_claims.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        # a function: the log templates' {wildcards} must reach the job as they are
        cfg=constant_param(JUDGE_CONFIG),
    shell:
        "python -m heavytail.report.judge --config {params.cfg} --paper {input.paper} --paper-check {input.check}"
        " --out {output.json} > {log} 2>&1"


rule render_report:
    input:
        **plan_artifacts.data_summary_inputs(EXPERIMENT),
        artifacts=list(ARTIFACTS.values()),
        tables=list(plan_artifacts.aggregated_tables(EXPERIMENT).values()),
        explanations=plan_explanations.all_tables(EXPERIMENT),
        budget=named(PATHS.TABLE, "budget").format(scale=SCALE),
        verdicts=VERDICTS_JSON,
        # the paper's numbers, the templates and the captions are sources: editing them re-renders the report
        paper=str(Path(workflow.basedir) / "reports" / "paper.yaml"),
        templates=[
            str(TEMPLATES / name)
            for name in (
                "index.html.j2",
                "_macros.html.j2",
                "style.css",
                "explanations.html.j2",
            )
        ],
        captions=[str(CAPTIONS / f"{name}.rst") for name in ARTIFACTS],
    output:
        **REPORT_COPIES,
        html=report(
            PATHS.REPORT,
            caption="../../reports/captions/report.rst",
            category="Report",
        ),
        provenance=f"{REPORT_DIR}/provenance.json",
        config=f"{REPORT_DIR}/report_config.json",
    log:
        "logs/{scale}/report/render_report.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        cfg=stage_config("report", artifacts=ARTIFACTS, scales_page=SCALES_PAGE),
    shell:
        "python -m heavytail.report.render --config {params.cfg} --paper {input.paper} --out {output.html}"
        " > {log} 2>&1"


# reports/index.html: every scale judged so far side by side (a small rule of its own: it reads only verdicts)
rule render_scales_page:
    input:
        verdicts=workflow_outputs.judged_scales(VERDICTS_JSON, SCALES, SCALE),
        templates=[
            str(TEMPLATES / name)
            for name in ("scales.html.j2", "_macros.html.j2", "style.css")
        ],
    output:
        report(
            SCALES_PAGE,
            caption="../../reports/captions/scales.rst",
            category="Report",
        ),
    log:
        "logs/report/render_scales_page.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.scales --out {output} {input.verdicts} > {log} 2>&1"


rule report:
    input:
        PATHS.REPORT.format(scale=SCALE),
        SCALES_PAGE,


rule budget:
    input:
        named(PATHS.TABLE, "budget").format(scale=SCALE),
