"""Training throughput of the tiny ResNet (images/s) and the in-memory loader's share of the step time; write JSON.

    python -m heavytail.bench.vision --out results/bench/vision.json [--threads 1] [--steps 20] [--manifest M]

Workload: the tiny preset's recipe (resnet_narrow width 16, stride-2 stem, batch 128, SGDm) on Fashion-MNIST-shaped
uint8 tensors (10k x 1 x 28 x 28, random pixels unless --manifest names real images), fed by the same seeded
in-memory loader as training (`heavytail.data.image_batches`: index, pad-crop, flip, normalise). Each step is
timed in two parts: producing the batch, and forward + backward + optimizer step. Goal: loader share <= 10 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from heavytail.bench.common import write_result
from heavytail.config import load_job_config
from heavytail.data.image_batches import MemoryImages, load_split_tensors, memory_train_batches
from heavytail.models.vision import build_vision_model

GOALS = {"loader_share": 0.10}
WORKLOAD = {"arch": "resnet_narrow", "width": 16, "stem_stride": 2, "batch_size": 128, "train_images": 10_000,
            "image_size": 28, "num_classes": 10, "crop_padding": 2}


def time_steps(steps: int, warmup: int, manifest: str | None = None) -> dict:
    """Per-step seconds spent producing batches and computing, after `warmup` untimed steps."""
    w = WORKLOAD
    if manifest:
        images, labels = load_split_tensors(manifest, "train")
    else:
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (w["train_images"], 1, w["image_size"], w["image_size"]), generator=gen,
                               dtype=torch.uint8)
        labels = torch.randint(0, w["num_classes"], (w["train_images"],), generator=gen)
    data = MemoryImages(images, labels, [0.286], [0.353], pad=w["crop_padding"])
    torch.manual_seed(0)
    model = build_vision_model({**w, "in_channels": 1}).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    batches = memory_train_batches(data, 0, 0, w["batch_size"], 0, 1)
    load_s, compute_s = [], []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        x, y = next(batches)
        t1 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if step >= warmup:
            load_s.append(t1 - t0)
            compute_s.append(t2 - t1)
    return {"load_s": load_s, "compute_s": compute_s}


def summarise(times: dict, batch_size: int) -> dict:
    load, compute = statistics.median(times["load_s"]), statistics.median(times["compute_s"])
    step = load + compute
    return {"images_per_s": batch_size / step, "step_ms": 1e3 * step, "loader_ms": 1e3 * load,
            "compute_ms": 1e3 * compute, "loader_share": load / step,
            "meets_goal": {"loader_share": load / step <= GOALS["loader_share"]}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--config", help="resolved job config (JSON string or path); optional")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (medians are reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--manifest", default=None, help="image manifest.json: time real images instead")
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config) if args.config else {}
    if args.threads:
        torch.set_num_threads(args.threads)
    result = summarise(time_steps(args.steps, args.warmup, args.manifest), WORKLOAD["batch_size"])
    result.update(workload=WORKLOAD, steps=args.steps, goals=GOALS,
                  data="real images" if args.manifest else "random uint8 tensors")
    print(f"tiny resnet: {result['images_per_s']:.0f} images/s, step {result['step_ms']:.1f} ms, loader "
          f"{100 * result['loader_share']:.1f} % ({torch.get_num_threads()} threads)", flush=True)
    write_result(args.out, result, cfg)


if __name__ == "__main__":
    main()
