"""Noise entry point: `python -m heavytail.noise.measure --checkpoint <ckpt|init> --data <auto|gaussian> --out <dir>`.

One measurement: the model of a training run at a checkpoint (`<run>/snapshots/step<N>.pt`, `<run>/checkpoint.pt`)
or at initialisation, its loss and an independent batch stream (heavytail.noise.targets), then
`measure_noise` + `save_noise_result` into `<out>/`: noise.npz, summary.json (with flat `rows`, one per
parameter group, for the report's noise table), resolved_config.json and run.json. `--per-coordinate` also
records sampled coordinates of the measured minibatches' noise vectors g_B - grad f (Fig 6c) into
per_coordinate.npz, with their tail indices.

--config is the noise section of the experiment (seed, n_mean, n_samples or target_halfwidth, mode, n_boot, level,
per_coordinate, ...) and, for --checkpoint init, the training run's job config under `job`. With a list
`measurements` in --config, one process measures them all (each {name, checkpoint, data, batch_size,
per_coordinate, n_samples?, job?}) into `<out>/<name>/`, skipping the ones whose summary.json is already there.
A batch size "train" is the measured run's own training batch size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from heavytail.config import load_job_config, resolve_job_config
from heavytail.errors import ConfigError
from heavytail.io import read_json
from heavytail.provenance import record_run

# the job's own keys beside the noise section; a measurement job is built without the figures' settings and
# the other roles' runs (changing them must not re-measure)
JOB_KEYS = ("measurements", "job", "overwrite")
OMITTED = ("runs", "figures")
SETTINGS = ("seed", "n_mean", "n_samples", "target_halfwidth", "mode", "n_boot", "level", "progress_every", "device",
            "per_coordinate")


def resolve_settings(cfg: dict) -> dict:
    """The measurement settings of a resolved job config; n_samples from `target_halfwidth` when it is null."""
    from heavytail.noise.tail_estimators import recommend_sample_count

    settings = {key: cfg[key] for key in SETTINGS}
    if settings["n_samples"] is None:
        # the norm estimator works on n // 2 paired differences, hence 2x the count for scalar samples
        settings["n_samples"] = 2 * recommend_sample_count(float(settings["target_halfwidth"]),
                                                           level=float(settings["level"]))
    for key in ("n_mean", "n_samples"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise ConfigError(f"noise.{key} must be a positive integer (got {settings[key]!r})")
    return settings


def measure_one(spec: dict, settings: dict, out_dir: str | Path, tasks: dict | None = None) -> dict:
    """Measure one (checkpoint, data, batch size) into `out_dir`; returns the summary."""
    import torch

    from heavytail.device import resolve_device
    from heavytail.noise.core import measure_noise, save_noise_result, summarise
    from heavytail.noise.targets import build_target, job_config_of, training_batch_size

    steps = None
    if spec.get("run"):
        checkpoint, job, steps = run_point(spec["run"], float(spec.get("fraction", 0.0)), spec.get("variant"))
    else:
        checkpoint = spec.get("checkpoint", "init")
        job = spec.get("job") or (None if checkpoint in (None, "init") else job_config_of(checkpoint))
    at_init = checkpoint in (None, "init")
    if job is None:
        raise ConfigError("noise: --checkpoint init needs the training run's job config as `job` in --config")
    batch_size = spec.get("batch_size")
    batch_size = training_batch_size(job) if batch_size == "train" else int(batch_size or 0)
    if batch_size < 2:
        raise ConfigError(f"noise: batch_size must be >= 2 (got {spec.get('batch_size')!r}); set noise.batch_sizes")
    device = resolve_device(settings["device"], settings.get("gpus"))
    seed = int(settings["seed"])
    target = build_target(job, None if at_init else checkpoint, spec.get("data", "auto"), seed, device, tasks)
    if steps:
        target.metadata.update(total_steps=steps, fraction=round(target.metadata["step"] / steps, 6))
    n_samples = int(spec.get("n_samples") or settings["n_samples"])  # a spec may ask for a longer stream (Fig 2c/f)
    print(f"measuring {spec.get('name', out_dir)}: {target.metadata['model']} on {target.metadata['data']} at step "
          f"{target.metadata['step']}, batch {batch_size}, {settings['n_mean']} mean + {n_samples} "
          f"samples, mode {settings['mode']}", flush=True)
    pc = settings["per_coordinate"]
    result = measure_noise(target.model, target.loss_fn, target.stream(batch_size), n_mean=settings["n_mean"],
                           n_samples=n_samples, mode=settings["mode"], n_boot=settings["n_boot"],
                           coordinates_per_set=int(pc["coordinates_per_group"]) if spec.get("per_coordinate") else 0,
                           coordinate_minibatches=pc["minibatches"], max_coordinate_samples=int(pc["max_samples"]),
                           level=settings["level"], seed=seed, progress_every=settings["progress_every"])
    metadata = {**target.metadata, "name": spec.get("name"), "batch_size": batch_size}
    result.extra["rows"] = summary_rows(summarise(result, metadata))
    summary = save_noise_result(result, Path(out_dir), metadata)
    overall = summary["overall"]
    alpha = {k: (v if v is not None else float("inf")) for k, v in (overall["tail_index_block_sums"] or {}).items()}
    print(f"done {spec.get('name', out_dir)}: mean {overall['mean']:.4g} std {overall['std']:.4g} "
          f"max/median {overall['max'] / overall['quantiles']['0.5']:.3f} alpha {alpha.get('alpha', float('nan')):.3f} "
          f"[{alpha.get('lo', float('nan')):.3f}, {alpha.get('hi', float('nan')):.3f}]", flush=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return summary


def run_point(run_dir: str | Path, fraction: float, variant: str | None = None) -> tuple[str, dict, int]:
    """(checkpoint or "init", job config, total steps) of a finished training run at `fraction` of its steps.

    The snapshot `snapshots/step<round(fraction * steps)>.pt`; at the last step `checkpoint.pt` will do, at step 0
    the run's own init (equal to its step-0 snapshot). With a `variant` other than the run's (the ResNet-like
    BERT of Fig 4), the run's config builds that variant at init, so only fraction 0 is possible.
    """
    run = Path(run_dir)
    job = read_json(run / "resolved_config.json") if (run / "resolved_config.json").is_file() else None
    if job is None or not (run / "result.json").is_file():
        raise ConfigError(f"noise: {run} is not a finished training run (no resolved_config.json/result.json); "
                          "run its training rule first")
    steps = int(read_json(run / "result.json")["train_config"]["steps"])
    if variant and variant != job.get("variant", "attention"):
        if fraction != 0:
            raise ConfigError(f"noise: variant {variant} of run {run} exists only at init (fraction 0, got {fraction})")
        return "init", {**job, "variant": variant}, steps
    step = int(round(fraction * steps))
    snapshot = run / "snapshots" / f"step{step}.pt"
    if snapshot.is_file():
        return str(snapshot), job, steps
    if step == steps and (run / "checkpoint.pt").is_file():
        return str(run / "checkpoint.pt"), job, steps
    if step == 0:
        return "init", job, steps
    kept = sorted(int(p.stem[4:]) for p in (run / "snapshots").glob("step*.pt"))
    raise ConfigError(f"noise: run {run} has no snapshot at step {step} ({fraction:g} of {steps}; kept: {kept}); "
                      "add the fraction to the training preset's snapshot steps and retrain")


ROW_METADATA = ("name", "model", "data", "step", "fraction", "total_steps", "batch_size", "architecture", "variant",
                "family", "checkpoint", "n_mean", "n_samples", "mode", "seed")


def summary_rows(summary: dict) -> list[dict]:
    """Flat rows, one per parameter group ("all" = whole model), in the report's noise-table layout.

    `tail_index` is the paper's Fig 7 estimator (Simsekli's block sums of whole noise vectors), beside its
    reading on Gaussian noise measured alike (`gaussian_tail_index*`) and the paired-difference estimator on
    the norms (`paired_tail_index*`).
    """
    meta = summary["metadata"]
    coordinates = (summary.get("per_coordinate") or {}).get("tail_index", {})
    rows = []
    for group, stats in [("all", summary["overall"]), *sorted(summary["groups"].items())]:
        median = stats["quantiles"]["0.5"]
        curve = stats["variance_curve"]
        paired = stats["tail_index_norms"] or {}
        gaussian = stats.get("tail_index_block_sums_gaussian") or {}
        row = {key: meta.get(key) for key in ROW_METADATA}
        row.update(group=group, dim=stats.get("dim"), effective_dim=stats.get("effective_dim"), mean=stats["mean"], std=stats["std"], min=stats["min"],
                   max=stats["max"], excess_kurtosis=stats["excess_kurtosis"], quantiles=stats["quantiles"],
                   max_over_median=stats["max"] / median if median > 0 else None,
                   q99_over_median=stats["quantiles"]["0.99"] / median if median > 0 else None,
                   mean_gradient_norm=stats["mean_gradient_norm"], tail_index=stats["tail_index_block_sums"],
                   tail_index_estimator="block_sums", gaussian_tail_index=gaussian.get("alpha"),
                   gaussian_tail_index_lo=gaussian.get("lo"), gaussian_tail_index_hi=gaussian.get("hi"),
                   paired_tail_index=paired.get("alpha"), paired_tail_index_lo=paired.get("lo"),
                   paired_tail_index_hi=paired.get("hi"), variance_first=curve["first"], variance_last=curve["last"],
                   variance_relative_range=curve.get("relative_range_last_half"),
                   variance_max_jump=curve.get("max_relative_jump_last_half"),
                   variance_settles=curve.get("settles"))
        est = coordinates.get(group)
        if est:
            row.update(coordinate_tail_index=est["alpha"], coordinate_tail_index_lo=est["lo"],
                       coordinate_tail_index_hi=est["hi"], coordinate_tail_index_first=est["first_minibatch"],
                       coordinate_tail_index_median=est["minibatch_median"],
                       coordinate_tail_index_q05=est["minibatch_q05"], coordinate_tail_index_q95=est["minibatch_q95"],
                       coordinate_excess_kurtosis=est["excess_kurtosis"])
        rows.append(row)
    return rows


def measurement_specs(cfg: dict, args: argparse.Namespace) -> list[tuple[dict, Path]]:
    """(spec, out dir) of every measurement: the `measurements` list of --config, or the one on the command line."""
    out = Path(args.out)
    if cfg.get("measurements"):
        specs = []
        for spec in cfg["measurements"]:
            if not spec.get("name"):
                raise ConfigError("noise: every entry of `measurements` needs a `name` (its folder under --out)")
            specs.append(({**spec, "batch_size": spec.get("batch_size") or (cfg.get("batch_sizes") or [None])[0]},
                          out / spec["name"]))
        return specs
    if args.checkpoint is None:
        raise ConfigError("noise: pass --checkpoint <ckpt|init>, or a `measurements` list in --config")
    batch_size = args.batch_size or (cfg.get("batch_sizes") or [None])[0]
    return [({"name": out.name, "checkpoint": args.checkpoint, "data": args.data, "batch_size": batch_size,
              "per_coordinate": args.per_coordinate, "job": cfg.get("job")}, out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gradient-noise norms, variance curves and tail indices of a model")
    parser.add_argument("--config", required=True, help="noise preset JSON (string or path); `job` for init")
    parser.add_argument("--out", required=True, help="measurement folder (or the root of `measurements`)")
    parser.add_argument("--checkpoint", help="<run>/snapshots/step<N>.pt, <run>/checkpoint.pt, or init")
    parser.add_argument("--data", default="auto", help="auto (the run's data) or gaussian (BERT: Gaussian input)")
    parser.add_argument("--batch-size", help="minibatch size or train (default: the first of noise.batch_sizes)")
    parser.add_argument("--per-coordinate", action="store_true",
                        help="also record sampled coordinates of the measured minibatches' noise vectors (Fig 6c)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the rule's gpu resource); 0 = the CPU. "
                        "Default: a GPU if one is there")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_job_config(load_job_config(args.config), "noise", JOB_KEYS, omitted=OMITTED)
        settings = {**resolve_settings(cfg), "gpus": args.gpus}
        specs = measurement_specs(cfg, args)
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(int(args.threads))
    tasks: dict = {}
    for spec, out in specs:
        if cfg.get("measurements") and (out / "summary.json").is_file() and not cfg.get("overwrite"):
            print(f"kept {out}/summary.json (delete it to measure again)", flush=True)
            continue
        with record_run(out, {**cfg, "measurements": None, "measurement": spec, "settings": settings}) as run:
            try:
                summary = measure_one(spec, settings, out, tasks)
            except ConfigError as exc:
                sys.stderr.write(f"heavytail: {exc}\n")
                run["status"] = "error"
                return 2
            run["seconds"] = summary["seconds"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
