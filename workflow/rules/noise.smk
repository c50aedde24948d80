# Gradient noise (Figs 2, 4, 5, 6, 7): noise norms, variance curves and tail indices of the training runs'
# snapshots, never a retraining. One measure_noise_<group> job per group of measurements (BERT run, BERT
# variants at init, image model run, AlexNet run): at tiny scale starting Python with torch costs ~7 s, so a
# job measures its whole list; each measurement still has its own folder
# results/{scale}/noise/<model>/<data>/pct<NNN>/bs<B>/ with summary.json (+ flat rows for the report's noise
# table), noise.npz and, at init, per_coordinate.npz. Plotting is separate: restyling never re-measures.
#
#   snakemake fig2 fig4 fig5 fig6 fig7


include: "noise_helpers.smk"


for _group, _specs in NOISE_GROUPS.items():

    rule:
        name:
            f"measure_noise_{_group}"
        input:
            # the run's declared output; its snapshots/, result.json and checkpoint.pt lie beside it
            f"{noise_run_dir(NOISE_ROLE_OF_GROUP[_group])}/metrics.jsonl",
        output:
            summaries=[noise_summary(s) for s in _specs],
            arrays=[f"{noise_dir(s)}/noise.npz" for s in _specs],
        log:
            f"logs/{SCALE}/noise/measure_noise_{_group}.log",
        benchmark:
            f"benchmarks/{SCALE}/noise/measure_noise_{_group}.tsv"
        conda:
            "../../envs/train.yaml"
        threads: threads_for("noise")
        resources:
            **resources_for("noise"),
        params:
            # figure settings and the other roles' runs are left out: changing them must not re-measure
            cfg=job_config("noise", measurements=_specs, figures=None, runs=None),
            out_dir=noise_output_root,
        shell:
            "python -m heavytail.noise.measure --config {params.cfg} --out {params.out_dir} --threads {threads}"
            " > {log} 2>&1"


if NOISE_GROUPS:

    rule tabulate_noise:
        localrule: True
        input:
            [noise_summary(s) for specs in NOISE_GROUPS.values() for s in specs],
        output:
            "results/{scale}/noise/measurements.csv",
        log:
            "logs/{scale}/noise/tabulate_noise.log",
        conda:
            "../../envs/report.yaml"
        threads: threads_for("report")
        resources:
            **resources_for("report"),
        params:
            cfg=job_config("noise", figure="table",
                           panels=[noise_dir(s) for specs in NOISE_GROUPS.values() for s in specs]),
        shell:
            "python -m heavytail.report.figures.noise --config {params.cfg} --out {output} > {log} 2>&1"

    for _figure in NOISE_FIGURES:

        rule:
            name:
                f"plot_noise_{_figure}"
            localrule: True
            input:
                noise_panel_inputs(noise_figure_panels(_figure)),
            output:
                png=report(
                    f"results/{SCALE}/figures/{_figure}.png",
                    caption=f"../../reports/captions/{_figure}.rst",
                    category="Noise",
                    labels={"figure": _figure.replace("fig", "Fig "), "scale": SCALE},
                ),
                svg=f"results/{SCALE}/figures/{_figure}.svg",
            log:
                f"logs/{SCALE}/noise/plot_{_figure}.log",
            conda:
                "../../envs/report.yaml"
            threads: threads_for("report")
            resources:
                **resources_for("report"),
            params:
                cfg=job_config("noise", figure=_figure, panels=noise_figure_panels(_figure)),
            shell:
                "python -m heavytail.report.figures.noise --config {params.cfg} --out {output.png} > {log} 2>&1"

        rule:
            name:
                _figure
            input:
                f"results/{SCALE}/figures/{_figure}.png",
                # the table of every measurement (all groups, batch sizes) goes with the tail-index figure
                [f"results/{SCALE}/noise/measurements.csv"] if _figure == "fig7" else [],

    rule noise_table:
        input:
            f"results/{SCALE}/noise/measurements.csv",
