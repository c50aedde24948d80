"""GPU-hours per target before anything runs: counted FLOPs per step x steps over device throughput x utilisation.

    python -m heavytail.report.budget --config <json> --out results/<scale>/tables/budget.csv

FLOPs counted (multiply-add = 2 FLOPs; training = forward + backward = 3 x forward):
  BERT, per token: 6 N + 12 L S h + 6 m (h^2 + h V), N = L (4 h^2 + 2 h f) the encoder's weights, S the sequence
  length, m the masked share of tokens (the MLM head runs on masked positions only).
  ResNet50: 4.1 G multiply-adds forward per 224 px image (torchvision's "4.09 GFLOPS" counts MACs), so
  3 x 2 x 4.1 GFLOPs per training image; AlexNet 0.71 G MACs.
  Noise: each measurement runs forward + backward on (mean batches + samples) x batch examples.
Experiment sizes come from the experiment's pretrain/squad/vision/noise sections where they name them, else from
ASSUMED below; each row says which. Device peak and utilisation come from the experiment's `report` section; a bench JSON
key ending in `mfu` (0-1) whose path names bert or resnet replaces the assumed utilisation of that family.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from heavytail.config import load_job_config, resolve_job_config
from heavytail.io import atomic_path
from heavytail.plan.explanations import cost as explanations_cost
from heavytail.report.aggregate import collect_bench

BUDGET_SCALES = ("small", "paper")
SQUAD_TRAIN_FEATURES = 88_641  # SQuAD v1.1 train at max length 384, stride 128 (BERT's preprocessing)
IMAGENET_TRAIN = 1_281_167
DEVICE_DEFAULTS = {"device_name": "NVIDIA A100 (bf16 dense peak)", "device_tflops": 312.0,
                   "mfu": {"transformer": 0.4, "convnet": 0.2}}
# experiment sizes used when the experiment does not say (paper: the BERT and ResNet50 recipes the paper follows)
ASSUMED = {
    "paper": {
        "pretrain": {"depths": [6, 12, 24], "hidden_size": None, "seq_len": 128, "batch_size": 256,
                     "steps": 1_000_000, "vocab_size": 30522, "mask_fraction": 0.15, "seeds": 1,
                     "base_optimizers": 5, "depth_optimizers": 2, "tune_points": 16, "tune_fraction": 0.05},
        "squad": {"depths": [6, 12, 24], "seq_len": 384, "batch_size": 32, "epochs": 2,
                  "train_features": SQUAD_TRAIN_FEATURES, "optimizers": 2, "seeds": 5},
        "vision": {"epochs": 90, "train_images": IMAGENET_TRAIN, "resnet_optimizers": 3, "seeds": 1,
                   "alexnet_steps": 5000, "alexnet_batch": 256},
        "noise": {"measurements": 16, "batches": 2000, "batch_size": 32},
    },
    "small": {
        "pretrain": {"depths": [2, 4, 6], "hidden_size": 512, "seq_len": 128, "batch_size": 128,
                     "steps": 50_000, "vocab_size": 30522, "mask_fraction": 0.15, "seeds": 3,
                     "base_optimizers": 5, "depth_optimizers": 2, "tune_points": 12, "tune_fraction": 0.1},
        "squad": {"depths": [2, 4, 6], "seq_len": 384, "batch_size": 32, "epochs": 2,
                  "train_features": SQUAD_TRAIN_FEATURES, "optimizers": 2, "seeds": 5},
        "vision": {"epochs": 16, "train_images": IMAGENET_TRAIN, "resnet_optimizers": 3, "seeds": 1,
                   "alexnet_steps": 1000, "alexnet_batch": 256},
        "noise": {"measurements": 16, "batches": 500, "batch_size": 32},
    },
}
ALIASES = {
    "depths": ("depths", "num_layers", "num_hidden_layers", "layers"),
    "hidden_size": ("hidden_size", "hidden"),
    "seq_len": ("seq_len", "max_seq_length", "sequence_length", "max_length", "seq_length"),
    "batch_size": ("batch_size", "global_batch_size"),
    "steps": ("steps", "max_steps", "total_steps", "num_steps"),
    "epochs": ("epochs", "num_epochs"),
    "vocab_size": ("vocab_size",),
    "mask_fraction": ("mask_fraction", "mlm_probability", "mask_probability"),
    "seeds": ("seeds",),
    "batches": ("batches",),
}


class Sizes:
    """Reads experiment sizes from an experiment section, falling back to ASSUMED; remembers which were assumed."""

    def __init__(self, section: dict | None, assumed: dict):
        self.section, self.assumed, self.assumed_keys = section or {}, assumed, []

    def __call__(self, key: str):
        for name in ALIASES.get(key, (key,)):
            value = _find(self.section, name)
            if value is not None:
                if key == "seeds" and isinstance(value, list):
                    return len(value)
                if key == "depths" and not isinstance(value, list):
                    return [value]
                return value
        self.assumed_keys.append(key)
        return self.assumed[key]

    def source(self) -> str:
        return "config" if not self.assumed_keys else "assumed: " + ", ".join(sorted(set(self.assumed_keys)))


def _find(tree, name: str):
    if isinstance(tree, dict):
        if name in tree and not isinstance(tree[name], dict):
            return tree[name]
        for value in tree.values():
            found = _find(value, name)
            if found is not None:
                return found
    return None


def bert_shape(depth: int, hidden: int | None) -> tuple[int, int]:
    """(hidden, feed-forward) of a BERT of this depth: base below 24 layers, large at 24 and above."""
    h = hidden or (1024 if depth >= 24 else 768)
    return h, 4 * h


def bert_train_flops_per_token(depth: int, hidden: int, seq_len: int, vocab: int, mask_fraction: float) -> float:
    """6 N + 12 L S h + 6 m (h^2 + h V): weights, attention scores, the MLM head on masked positions."""
    ff = 4 * hidden
    n_encoder = depth * (4 * hidden * hidden + 2 * hidden * ff)
    return 6 * n_encoder + 12 * depth * seq_len * hidden + 6 * mask_fraction * (hidden * hidden + hidden * vocab)


RESNET50_TRAIN_FLOPS = 3 * 2 * 4.1e9
ALEXNET_TRAIN_FLOPS = 3 * 2 * 0.71e9


def measured_mfu(bench: pd.DataFrame) -> dict[str, float]:
    """Family -> measured model-FLOPs utilisation from bench rows whose key ends in `mfu` (first one wins)."""
    found = {}
    if bench.empty:
        return found
    for _, row in bench.iterrows():
        key, value = str(row["key"]).lower(), pd.to_numeric(row["value"], errors="coerce")
        if not key.endswith("mfu") or not 0 < value <= 1:
            continue
        text = f"{row.get('file', '')} {key}".lower()
        family = "transformer" if "bert" in text else "convnet" if "resnet" in text else None
        if family:
            found.setdefault(family, float(value))
    return found


def estimate(scale: str, experiment: dict, bench: pd.DataFrame) -> list[dict]:
    """One row per target group of `scale`: runs, steps, FLOPs, throughput used, GPU-hours."""
    assumed = ASSUMED[scale]
    device = {**DEVICE_DEFAULTS, **(experiment.get("report") or {})}
    mfu = {**DEVICE_DEFAULTS["mfu"], **(device.get("mfu") or {})}
    measured = measured_mfu(bench)
    rows = []

    def add(target, family, runs, steps, flops_per_step, sizes: Sizes, note=""):
        util = measured.get(family, mfu[family])
        throughput = device["device_tflops"] * 1e12 * util
        total = runs * steps * flops_per_step
        rows.append({"scale": scale, "target": target, "family": family, "runs": runs, "steps_per_run": steps,
                     "flops_per_step": flops_per_step, "total_flops": total, "device": device["device_name"],
                     "device_tflops": device["device_tflops"], "device_tflops_source": "assumed",
                     "mfu": util, "mfu_source": "measured (bench)" if family in measured else "assumed",
                     "sizes_source": sizes.source(), "gpu_hours": total / throughput / 3600, "note": note})

    p = Sizes(experiment.get("pretrain"), assumed["pretrain"])
    depths, seq, batch = p("depths"), p("seq_len"), p("batch_size")
    steps, seeds, vocab, mask = p("steps"), p("seeds"), p("vocab_size"), p("mask_fraction")
    hidden_cfg = p("hidden_size")
    per_depth = []
    long_phase = (experiment.get("pretrain") or {}).get("long_phase")
    for i, depth in enumerate(sorted(depths)):
        h, _ = bert_shape(depth, hidden_cfg)
        flops = bert_train_flops_per_token(depth, h, seq, vocab, mask) * batch * seq
        if long_phase:  # BERT's last steps at the long length: quadratic attention, more tokens a step
            f, long_seq = long_phase["fraction"], long_phase["max_seq_length"]
            flops = (1 - f) * flops + f * bert_train_flops_per_token(depth, h, long_seq, vocab, mask) * batch * long_seq
        per_depth.append(flops)
        # the middle depth is BERT-base for Fig 1a/3 (every optimizer); the others run Adam and ACClip only
        optimizers = p("base_optimizers") if i == len(depths) // 2 else p("depth_optimizers")
        add(f"pretrain depth {depth} (fig1a, fig3, table2)", "transformer", optimizers * seeds, steps,
            per_depth[-1], p, f"hidden {h}, seq {seq}, batch {batch}")
    base_flops = per_depth[len(per_depth) // 2]
    tune_steps = max(1, int(steps * p("tune_fraction")))
    add("tune_pretrain (learning-rate grids)", "transformer", p("tune_points"), tune_steps, base_flops, p,
        "grid points x a fraction of the steps, at the base depth")

    s = Sizes(experiment.get("squad"), assumed["squad"])
    seq_s, batch_s = s("seq_len"), s("batch_size")
    steps_s = int(s("epochs") * s("train_features") / batch_s)
    for depth in sorted(s("depths")):
        h, _ = bert_shape(depth, hidden_cfg)
        flops = bert_train_flops_per_token(depth, h, seq_s, vocab, 0.0) * batch_s * seq_s
        add(f"finetune_squad depth {depth} (table3)", "transformer", s("optimizers") * s("seeds"), steps_s, flops,
            s, f"{s('epochs')} epochs of {s('train_features')} features")

    v = Sizes(experiment.get("vision"), assumed["vision"])
    images = v("epochs") * v("train_images")
    add("train_vision resnet50 (fig1b, fig8)", "convnet", v("resnet_optimizers") * v("seeds"), images,
        RESNET50_TRAIN_FLOPS, v, "steps counted in images")
    add("train_vision alexnet (fig6)", "convnet", 1, v("alexnet_steps"), ALEXNET_TRAIN_FLOPS * v("alexnet_batch"),
        v, "to the paper's 5k iterations")
    tune = (experiment.get("vision") or {}).get("tune") or {}
    if tune:  # every (model, label) tuned alike: grid points x a fraction of the run, one seed
        points = len(tune["lr_factors"]) + 1  # one widening past an edge at most
        add("tune_vision resnet50 (grids)", "convnet", v("resnet_optimizers") * points,
            int(images * tune["fraction"]), RESNET50_TRAIN_FLOPS, v, "steps counted in images")

    n = Sizes(experiment.get("noise"), assumed["noise"])
    examples = n("batches") * n("batch_size")
    add("measure_noise (fig2, fig4-fig7)", "transformer", n("measurements"), examples,
        base_flops / batch, n, "per example at the base depth; steps counted in examples")
    _explanations(experiment, add, base_flops / batch, hidden_cfg, depths, vocab, p)
    return rows


# beyond the paper: the later explanations' rules, at the base depth (the linear model: 3h x V per masked token)
EXPLANATION_TARGETS = {"sweep_batch_size": "batch_size_sweep (sweep_batch_size)",
                       "measure_noise_batch_sizes": "batch_size_sweep noise (measure_noise_batch_sizes)",
                       "train_linear_softmax": "class_imbalance linear model (train_linear_softmax)"}


def _explanations(experiment: dict, add, per_sequence: float, hidden_cfg, depths, vocab: int, sizes: Sizes) -> None:
    hidden, _ = bert_shape(sorted(depths)[len(depths) // 2], hidden_cfg)
    totals: dict[str, list] = {}
    for item in explanations_cost(experiment):
        per_example = per_sequence if item["kind"] == "bert" else 6 * 3 * hidden * vocab
        runs, flops = totals.setdefault(item["rule"], [0, 0.0, item["steps"]])[:2]
        totals[item["rule"]][:2] = [runs + item["runs"], flops + item["runs"] * item["steps"] * item["examples_per_step"]
                                    * per_example]
    for rule, (runs, flops, steps) in totals.items():
        add(EXPLANATION_TARGETS[rule], "transformer", runs, steps, flops / (runs * steps), sizes,
            "every cell's grid and seeds; flops_per_step averaged over the batch sizes")


def budget_table(experiments: dict[str, dict], bench: pd.DataFrame) -> pd.DataFrame:
    """Every target at every budgeted scale, then one total row per scale."""
    rows = []
    for scale in BUDGET_SCALES:
        if scale not in experiments:
            continue
        part = estimate(scale, experiments[scale], bench)
        rows += part + [{"scale": scale, "target": "total", "gpu_hours": sum(r["gpu_hours"] for r in part),
                         "total_flops": sum(r["total_flops"] for r in part)}]
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config with budget_experiments (JSON)")
    parser.add_argument("--out", required=True, type=Path, help="results/<scale>/tables/budget.csv")
    parser.add_argument("--bench-dir", type=Path, default=Path("results/bench"),
                        help="benchmark JSON folder; measured utilisation is read from it where present")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "report", ("budget_experiments",))
    bench = collect_bench(args.bench_dir)
    table = budget_table(cfg.get("budget_experiments") or {cfg["scale"]: cfg}, bench)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    for _, row in table.iterrows():
        print(f"budget {row['scale']:6s} {row['target']:45s} {row['gpu_hours']:12.1f} GPU-h", flush=True)
    print(json.dumps({"written": str(args.out)}), flush=True)


if __name__ == "__main__":
    main()
