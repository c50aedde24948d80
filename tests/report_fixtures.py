"""Constructed result files in the real formats the stages write, for the report tests (no training)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from conftest import tiny_job

from heavytail.io import write_json, write_jsonl

# the tiny experiment's data sections, as a report job receives them
TINY_DATA = tiny_job("report")["data"]
# (output, log) templates as report.smk passes them from the rules (a wildcard rule and a concrete one)
JOB_LOGS = [["results/{scale}/pretrain/{model}/{optimizer}/seed{seed}/metrics.jsonl",
             "logs/{scale}/pretrain/{model}/{optimizer}/seed{seed}.log"],
            ["results/tiny/noise/bert/wiki/step0/summary.json", "logs/tiny/noise/measure_noise_bert.log"]]


def write_run(results: Path, stage: str, model: str, optimizer: str, seed: int, final: dict,
              diverged_at: int | None = None, layers: int | None = None, logs: Path | None = None) -> Path:
    """A training run as the engine leaves it: metrics.jsonl (train, validation, status rows), run.json,
    resolved_config.json, and with `logs` (logs/<scale>) a pretraining job's log where its rule puts it."""
    run_dir = results / stage / model / optimizer / f"seed{seed}"
    rows = [{"split": "validation", "step": 0, **{k: v * 1.5 for k, v in final.items()}},
            {"split": "train", "step": 10, "loss": 3.0, "lr": 1e-3, "grad_norm": 1.0, "it_per_s": 5.0}]
    if diverged_at is None:
        rows.append({"split": "validation", "step": 20, **final})
    else:
        rows[-1]["loss"] = float("nan")
    status = "diverged" if diverged_at is not None else "ok"
    rows.append({"split": "status", "step": 20 if diverged_at is None else diverged_at - 1, "status": status,
                 "diverged_at_step": diverged_at})
    write_jsonl(run_dir / "metrics.jsonl", rows)
    (run_dir / "resolved_config.json").write_text(json.dumps({"seed": seed}))
    if logs is not None and stage == "pretrain":
        log = logs / stage / model / optimizer / f"seed{seed}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"step 20/20 loss {final.get('loss')}\n")
    # the entry point's record_run writes status ok for a diverged run (it exits 0); the status row says more
    write_json(run_dir / "run.json", {"status": "ok", "wall_time_s": 12.5, "peak_rss_mb": 900.0,
                                      "git_commit": "abc123def4567890", "packages": {"torch": "2.14.1"},
                                      "hardware": {"cpu": "Test CPU", "cpu_count": 2},
                                      "config": {"model": {"num_layers": layers}, "seed": seed}})
    return run_dir


def write_noise(results: Path, model: str, data: str, step: int, alpha: tuple[float, float, float],
                fraction: float = 0.0, variance_range: float = 0.01, coordinate: float | None = None) -> None:
    """One noise summary: the whole vector (group all) and, as evidence, one parameter group."""
    rows = []
    for group, shift in (("all", 0.0), ("attention", 0.05)):
        a, lo, hi = (x + shift for x in alpha)
        row = {"model": model, "data": data, "step": step, "fraction": fraction, "batch_size": 32, "group": group,
               "mean": 1.0, "std": 0.1, "quantiles": {"50": 1.0, "99": 1.3},
               "tail_index": {"alpha": a, "lo": lo, "hi": hi}, "block_tail_index": a,
               "block_tail_index_lo": a - 0.02, "block_tail_index_hi": a + 0.02,
               # the same estimator on Gaussian norms of the same count (measure.py's reference)
               "gaussian_tail_index": 2.0, "gaussian_tail_index_lo": 1.9, "gaussian_tail_index_hi": 2.1,
               "variance_relative_range": variance_range}
        if coordinate is not None:
            row.update(coordinate_tail_index=coordinate, coordinate_tail_index_lo=coordinate - 0.05,
                       coordinate_tail_index_hi=coordinate + 0.05)
        rows.append(row)
    write_json(results / "noise" / model / data / f"step{step}" / "summary.json", rows)


def mlm(loss: float, accuracy: float) -> dict:
    """A pretraining validation row as mlm_task writes it (NSP off: loss = mlm_loss)."""
    return {"mlm_loss": loss, "loss": loss, "mlm_accuracy": accuracy}


def make_results(root: Path, scale: str = "tiny", with_figure: bool = True) -> dict[str, str]:
    """Every kind of result file under root/results/<scale>, root/results/bench, root/benchmarks/<scale>.

    Returns the artifacts dict (name -> file) that the render rule would pass.
    """
    results = root / "results" / scale
    logs = root / "logs" / scale
    for i, (model, layers) in enumerate((("bert_l1", 1), ("bert_l2", 2), ("bert_l4", 4))):
        for seed in (0, 1, 2):
            jitter = 0.01 * seed
            write_run(results, "pretrain", model, "adam", seed, mlm(5.0 - i + jitter, 0.30 + 0.05 * i), layers=layers,
                      logs=logs)
            write_run(results, "pretrain", model, "acclip", seed, mlm(4.9 - i + jitter, 0.31 + 0.05 * i),
                      layers=layers, logs=logs)
    for seed in (0, 1, 2):
        write_run(results, "pretrain", "bert_l2", "sgdm", seed, mlm(6.0 + 0.01 * seed, 0.2),
                  diverged_at=7 if seed == 2 else None, layers=2, logs=logs)
        write_run(results, "pretrain", "bert_l2", "gclip", seed, mlm(5.5 + 0.01 * seed, 0.25), layers=2, logs=logs)
        for model in ("bert_l1", "bert_l2"):
            write_run(results, "squad", model, "adam", seed, {"loss": 2.0, "exact_match": 20.0 + seed,
                                                              "f1": 30.0 + seed})
            write_run(results, "squad", model, "acclip", seed, {"loss": 2.0, "exact_match": 20.5 + seed,
                                                                "f1": 29.0 + seed})
        for opt, top1 in (("sgdm", 0.85), ("adam", 0.80), ("acclip", 0.82)):
            write_run(results, "vision", "resnet_tiny", opt, seed, {"loss": 1.0 - top1 + 0.001 * seed,
                                                                    "top1": top1 + 0.001 * seed})
    write_run(results / "pretrain" / "tune", "adam", "lr1e-3", "x", 0, {"loss": 5.1})
    write_json(results / "pretrain" / "tune" / "adam" / "choice.json",
               {"optimizer": "adam", "lr": 1e-3, "grid": [{"lr": 1e-4, "val_loss": 5.6}, {"lr": 1e-3, "val_loss": 5.1}]})
    for model, data, step, alpha in (("bert", "wiki", 0, (1.5, 1.4, 1.6)), ("resnet18", "fashion_mnist", 0, (2.0, 1.9, 2.1)),
                                     ("bert", "wiki", 100, (1.9, 1.8, 2.0)),
                                     ("resnet18", "fashion_mnist", 100, (2.0, 1.9, 2.1)),
                                     ("bert", "gaussian", 0, (1.6, 1.5, 1.7)),
                                     ("bert_noattn", "gaussian", 0, (1.65, 1.55, 1.75)),
                                     ("bert_noattn", "wiki", 0, (1.7, 1.6, 1.8))):
        write_noise(results, model, data, step, alpha, fraction=step / 100,
                    variance_range=0.3 if (model, data) == ("bert", "wiki") else 0.01)
    write_noise(results, "alexnet", "fashion_mnist", 0, (2.1, 1.9, 2.3), coordinate=1.4)
    (logs / "noise").mkdir(parents=True, exist_ok=True)
    (logs / "noise" / "measure_noise_bert.log").write_text("measured bert/wiki/step0\n")
    theory = results / "theory"
    theory.mkdir(parents=True, exist_ok=True)
    (theory / "table1.csv").write_text(
        "experiment,method,noise,alpha,threshold,measured_slope,slope_lo,slope_hi,theory_slope,agrees,verdict,notes\n"
        "strongly_convex,gclip,gaussian,2.0,printed,-0.98,-1.02,-0.94,-1.0,True,matches,\n"
        "lower_bound,gclip,two_point,1.5,printed,-0.60,-0.70,-0.55,-0.6667,True,matches,\n"
        "lower_bound,gclip,two_point,1.2,printed,-0.20,-0.25,-0.15,-0.3333,True,faster,\n"
        "strongly_convex,gclip,pareto,1.5,proof,-0.70,-0.75,-0.65,-0.6667,True,matches,\n"
        "strongly_convex,cclip,pareto,1.5,proof,-0.72,-0.75,-0.69,-0.6667,True,matches,\n"
        "strongly_convex,gclip,pareto,2.0,proof,-0.99,-1.02,-0.96,-1.0,True,matches,\n"
        "strongly_convex,cclip,pareto,1.5,printed,-0.80,-0.82,-0.78,-0.6667,False,faster,\n"
        "strongly_convex,gclip,pareto,1.5,printed,-0.81,-0.84,-0.77,-0.6667,False,faster,\n"
        "lower_bound,gclip,two_point,1.5,proof,-0.45,-0.48,-0.43,-0.6667,False,slower,\n"
        "dimension,gclip,pareto,1.2,printed,1.58,1.54,1.63,2.6667,False,faster,\n"
        "dimension,cclip,pareto,1.2,printed,0.98,0.94,1.03,1.0,True,matches,\n"
        "dimension,gclip,pareto,1.2,proof,1.57,1.44,1.68,2.6667,False,faster,\n"
        "dimension,cclip,pareto,1.2,proof,0.95,0.89,1.02,1.0,True,matches,\n"
        "nonconvex,gclip,pareto,1.5,theorem2,-0.33,-0.33,-0.32,-0.4,True,matches,\n"
        "appendix_a,sgd,pareto,1.2,,0.18,,,,False,no_theory,\n"
        "appendix_a,gclip,pareto,1.2,proof,0.001,,,,False,no_theory,\n")
    write_json(theory / "theory_data.json", {"adam_clipping": {"ratio_min": 0.25, "ratio_max": 0.5,
                                                               "grid_points": 100}})
    write_json(theory / "run.json", {"status": "ok", "wall_time_s": 3.0, "peak_rss_mb": 200.0,
                                     "git_commit": "abc123def4567890"})
    write_json(root / "results" / "bench" / "optimizer_step.json",
               {"device": "cpu", "acclip": {"ms_per_step": 1.5}, "bert_base_seq128": {"mfu": 0.45}})
    tsv = root / "benchmarks" / scale / "pretrain" / "pretrain_bert_l2_adam_seed0.tsv"
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tsv.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                   "61.2\t0:01:01\t850.5\t2000.1\t800.0\t820.0\t1.0\t2.0\t95.0\t58.0\n")
    artifacts = {}
    if with_figure:
        import matplotlib

        matplotlib.use("agg")
        import matplotlib.pyplot as plt

        from heavytail.report.figures.style import save_figure

        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [1, 0], label="adam")
        ax.legend()
        save_figure(fig, results / "figures" / "fig3.png")
        artifacts["fig3"] = str(results / "figures" / "fig3.png")
    artifacts["table1"] = str(theory / "table1.csv")
    return artifacts


@lru_cache(maxsize=1)
def paper_check_json() -> str:
    """reports/paper_check.json as its CLI writes it (the rules on the paper's own values: they read no results)."""
    import tempfile

    from heavytail.report import paper_check

    with tempfile.TemporaryDirectory() as tmp:
        paper_check.main(["--out", f"{tmp}/paper_check.json"])
        return Path(f"{tmp}/paper_check.json").read_text()


def build_report(root: Path, scale: str = "tiny", scales_page: bool = True) -> dict:
    """The report of constructed results as the DAG builds it (aggregate, judge, render); cwd must be `root`.

    The check on the paper's own values runs once per test process (it reads no results)."""
    from heavytail.report import aggregate, judge, render

    artifacts = make_results(root, scale)
    check = root / "reports" / "paper_check.json"
    check.parent.mkdir(parents=True, exist_ok=True)
    check.write_text(paper_check_json())
    cfg = {"scale": scale, "data": TINY_DATA, "artifacts": artifacts, "job_logs": JOB_LOGS,
           **({"scales_page": "reports/index.html"} if scales_page else {})}
    aggregate.main(["--config", json.dumps({"scale": scale, "data": TINY_DATA}), "--out", f"results/{scale}/tables"])
    judge.main(["--config", json.dumps(cfg), "--paper-check", str(check), "--out", f"reports/{scale}/verdicts.json"])
    done = render.render(cfg, Path("reports") / scale / "index.html")
    return {"cfg": cfg, **done}
