# Aggregation, figures and the HTML report.


rule render_report:
    input:
        artifacts=[ARTIFACTS[name] for name in sorted(ARTIFACTS)],
        **data_summary_inputs(),
    output:
        "reports/{scale}/index.html",
    log:
        "logs/{scale}/report/render_report.log",
    params:
        cfg=job_config("report", artifacts=ARTIFACTS),
    threads: threads_for("report")
    resources:
        **resources_for("report"),
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m heavytail.report.render --config {params.cfg} --out {output} > {log} 2>&1"


rule report:
    input:
        f"reports/{SCALE}/index.html",
