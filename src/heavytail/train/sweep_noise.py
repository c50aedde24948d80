"""The batch-size sweep's noise: `python -m heavytail.train.sweep_noise --config <json> --out <dir>`.

At each batch size B of `batch_sizes` (every sweep batch size but the full batch, whose noise is zero), the base
model at initialisation (seed 0, dropout off, as the sweep trains it) on the sweep's fixed subset: grad f is the
exact full-subset gradient (the first subset/B minibatches are one pass over it), then `noise.n_samples`
minibatches of B sequences drawn without replacement give the noise norms ||g_B - grad f||, their spread and
tail index (heavytail.noise). Writes <out>/bs<B>/summary.json and noise.npz. The config is a sweep job's
(heavytail.plan.explanations.noise_job) with `batch_sizes` and `noise` {seed, mode, n_boot, level, n_samples}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from heavytail.errors import ConfigError
from heavytail.provenance import record_run


class SubsetBatches:
    """Re-iterable minibatches of one batch size: a pass over the subset in a seeded order, then random draws."""

    def __init__(self, subset: dict, batch_size: int, seed: int):
        self.subset, self.batch_size, self.seed = subset, batch_size, seed
        self.size = len(subset["input_ids"])

    def __iter__(self):
        from heavytail.train.mlm_task import to_tensors

        rng = np.random.default_rng([self.seed, self.batch_size])
        order = rng.permutation(self.size)
        for k in range(self.size // self.batch_size):
            yield to_tensors({key: v[order[k * self.batch_size:(k + 1) * self.batch_size]]
                              for key, v in self.subset.items()})
        while True:
            rows = rng.choice(self.size, self.batch_size, replace=False)
            yield to_tensors({key: v[rows] for key, v in self.subset.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gradient noise of the sweep's base model at each batch size")
    parser.add_argument("--config", required=True, help="resolved job config (JSON string or path)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--gpus", type=int, help="GPUs the job was given; 0 = the CPU. Default: a GPU if one is there")
    parser.add_argument("--out", required=True, help="root of bs<B>/summary.json")
    args = parser.parse_args(argv)
    from heavytail.train.batch_sweep import SubsetMLMTask, fixed_subset, load_cell, sweep_arch

    try:
        cfg = load_cell(args.config)
        noise, sizes = cfg.get("noise") or {}, [int(b) for b in cfg.get("batch_sizes") or []]
        subset_size = int(cfg["sweep"]["subset"])
        bad = [b for b in sizes if subset_size % b or b >= subset_size]
        if bad:
            raise ConfigError(f"explanations.batch_size_sweep: noise batch sizes {bad} must divide the subset of "
                              f"{subset_size} and be smaller than it")
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        return 2
    import torch

    from heavytail.device import resolve_device
    from heavytail.noise.core import measure_noise, save_noise_result
    from heavytail.train.checkpoint import seed_everything
    from heavytail.train.mlm_task import MLMData

    if args.threads:
        torch.set_num_threads(int(args.threads))
    device = resolve_device(noise.get("device", "auto"), args.gpus)
    print("resolved config: " + json.dumps(cfg, sort_keys=True), flush=True)
    data = MLMData(cfg["mlm_data"], float(cfg["mask_probability"]), int(cfg["max_predictions_per_seq"]), 1)
    subset = fixed_subset(data, subset_size)
    seed = int(cfg["sweep"]["seeds"][0])
    task = SubsetMLMTask(data, sweep_arch(cfg), subset, seed, model_name=cfg["base_model"])
    for batch_size in sizes:
        folder = Path(args.out) / f"bs{batch_size}"
        with record_run(folder, {**cfg, "batch_size": batch_size}) as run:
            seed_everything(seed)  # the init every sweep run of the first seed starts from
            model = task.build_model().to(device)

            def loss_fn(model, batch):
                return task.loss(model, {k: v.to(device) for k, v in batch.items()})[0]

            n_mean = subset_size // batch_size
            print(f"noise at batch {batch_size}: grad f from {n_mean} minibatches (the whole subset), "
                  f"{noise['n_samples']} samples", flush=True)
            result = measure_noise(model, loss_fn, SubsetBatches(subset, batch_size, int(noise.get("seed", 0))),
                                   n_mean=n_mean, n_samples=int(noise["n_samples"]),
                                   mode=noise.get("mode", "train_frozen_bn"), n_boot=int(noise.get("n_boot", 200)),
                                   level=float(noise.get("level", 0.9)), seed=int(noise.get("seed", 0)),
                                   progress_every=int(noise.get("progress_every", 0)))
            summary = save_noise_result(result, folder, {"model": cfg["base_model"], "batch_size": batch_size,
                                                         "subset": subset_size, "step": 0, "data": "sweep subset"})
            overall = summary["overall"]
            run.update(seconds=summary["seconds"])
            print(f"done batch {batch_size}: noise norm mean {overall['mean']:.4g}, gradient norm "
                  f"{overall['mean_gradient_norm']:.4g}, q99/median "
                  f"{overall['quantiles']['0.99'] / overall['quantiles']['0.5']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
