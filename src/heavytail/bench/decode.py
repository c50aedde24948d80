"""ImageNet training-input throughput per CPU core: the torchvision.io decode path against the PIL path; write JSON.

    python -m heavytail.bench.decode --out results/bench/decode.json [--images 96] [--rounds 7] [--device cuda]

Workload: the ResNet50 recipe (RandomResizedCrop 224 + flip + normalise) through the real loader
(`heavytail.data.image_batches.worker_train_batches`, in the main process, one torch thread), over JPEG files at
ImageNet's typical sizes (333-640 px a side, quality 90) cut from the photo that ships with matplotlib, so the
decoder sees real photo content. Paths, timed in interleaved rounds (the machine is shared, so each round runs
every path once and the ratios come from the per-round medians):
  pil_before   the PIL path as it was: torch.manual_seed per sample, which also queues a CUDA seeding with a
               formatted stack trace each time
  pil          torchvision's PIL transforms per sample, seeding the CPU generator only (the baseline)
  torchvision  libjpeg-turbo into uint8 tensors, crop and flip on uint8, one normalise per batch
  read_only    the CPU's share when a GPU decodes (decode_device): file bytes, JPEG header, crop draws
  device       with --device: the whole batch decoded, cropped and normalised on that device in the main
               process (decode_device; nvjpeg on a GPU), synchronised before the clock stops
Goal: torchvision >= 1.3 x the PIL path's images per second per core.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

GOALS = {"torchvision_vs_pil": 1.3}
SIZES = [(500, 375), (375, 500), (500, 333), (500, 500), (333, 500), (640, 480)]  # (width, height)
WNIDS = ("n01440764", "n01443537")


def write_photo_folder(root: Path, n_images: int, seed: int = 0) -> Path:
    """An ImageNet-layout train/ of JPEGs cut from matplotlib's sample photo, and a manifest pointing at it."""
    import matplotlib.cbook as cbook
    from PIL import Image

    from heavytail.data.images import IMAGENET_MEAN, IMAGENET_STD
    from heavytail.io import write_json

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
        base = photo.convert("RGB")
    rng = np.random.default_rng(seed)
    for i in range(n_images):
        width, height = SIZES[i % len(SIZES)]
        cw, ch = int(base.width * rng.uniform(0.5, 1.0)), int(base.height * rng.uniform(0.5, 1.0))
        x, y = int(rng.integers(0, base.width - cw + 1)), int(rng.integers(0, base.height - ch + 1))
        folder = root / "train" / WNIDS[i % len(WNIDS)]
        folder.mkdir(parents=True, exist_ok=True)
        base.crop((x, y, x + cw, y + ch)).resize((width, height), Image.BICUBIC).save(
            folder / f"{WNIDS[i % len(WNIDS)]}_{i}.JPEG", "JPEG", quality=90)
    manifest = root / "manifest.json"
    write_json(manifest, {"root": ".", "splits": {"train": "train"}, "classes": list(WNIDS), "channels": 3,
                          "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)})
    return manifest


def pil_before(manifest: Path, batch_size: int, image_size: int):
    """The PIL loader as it was before the CPU-only seeding: the same samples, seeded with torch.manual_seed."""
    from heavytail.data.image_batches import SeededSamples, StepBatches, image_folder, imagenet_transforms
    from heavytail.data.images import IMAGENET_MEAN, IMAGENET_STD

    class GlobalSeeded(SeededSamples):
        def __getitem__(self, key):
            index, sample_seed = key
            path, label = self.folder.samples[index]
            image = self.read(path)
            torch.manual_seed(sample_seed)
            return self.transform(image), label

    folder = image_folder(manifest, "train")
    samples = GlobalSeeded(folder, imagenet_transforms(image_size, IMAGENET_MEAN, IMAGENET_STD, train=True))
    sampler = StepBatches(len(folder), 0, 0, batch_size, 0, 1)
    return iter(torch.utils.data.DataLoader(samples, batch_sampler=sampler, num_workers=0))


def time_path(manifest: Path, decoder: str | None, batches: int, batch_size: int, image_size: int,
              device: str | None = None) -> float:
    """Images per second of `batches` batches through the loader (decoder None: the device path's CPU part)."""
    from heavytail.data import jpeg
    from heavytail.data.image_batches import worker_train_batches
    from heavytail.data.images import IMAGENET_MEAN, IMAGENET_STD

    if decoder is None:  # what the CPU still does when a GPU decodes: bytes, header and crop draws
        from heavytail.data.image_batches import SeededSamples, StepBatches, image_folder

        folder = image_folder(manifest, "train")
        samples = SeededSamples(folder, jpeg.EncodedCrop(), jpeg.read_encoded)
        steps = iter(StepBatches(len(folder), 0, 0, batch_size, 0, 1))
        start = time.perf_counter()
        for _ in range(batches):
            jpeg.encoded_batch([samples[key] for key in next(steps)])
        return batches * batch_size / (time.perf_counter() - start)
    if decoder == "pil_before":
        loader = pil_before(manifest, batch_size, image_size)
    else:
        loader = worker_train_batches(manifest, 0, 0, batch_size, 0, 1, image_size, IMAGENET_MEAN, IMAGENET_STD,
                                      num_workers=0, decoder=decoder, decode_device=device)
    next(loader)  # warm-up: first-call costs are not throughput
    start = time.perf_counter()
    for _ in range(batches):
        images, _ = next(loader)
    if images.is_cuda:
        torch.cuda.synchronize()
    assert images.shape == (batch_size, 3, image_size, image_size) and images.dtype == torch.float32
    return batches * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="job config, recorded beside the result (the pipeline's bench rules)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--images", type=int, default=96, help="JPEG files to decode (cycled)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--batches", type=int, default=4, help="batches per path and round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="the rule's cores; decoding is timed on one thread, as each loader worker runs one")
    parser.add_argument("--device", default=None, help="also time decoding on this device (e.g. cuda)")
    args = parser.parse_args(argv)
    import warnings

    from heavytail.bench.common import write_result
    from heavytail.config import load_job_config

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(1)  # per core: the loader's workers each run one thread
    paths = {"pil_before": "pil_before", "pil": "pil", "torchvision": "torchvision", "read_only": None}
    if args.device:
        paths["device"] = "torchvision"
    per_round: dict[str, list[float]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory(prefix="bench-decode.") as tmp:
        manifest = write_photo_folder(Path(tmp), args.images)
        for _ in range(args.rounds):
            for name, decoder in paths.items():
                device = args.device if name == "device" else None
                per_round[name].append(time_path(manifest, decoder, args.batches, args.batch_size, 224, device))
    medians = {name: statistics.median(v) for name, v in per_round.items()}
    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(per_round[a], per_round[b], strict=True))

    pairs = [("torchvision", "pil"), ("pil", "pil_before"), ("torchvision", "pil_before"), ("read_only", "pil")]
    pairs += [("device", "pil")] if args.device else []
    ratios = {f"{a}_vs_{b}": ratio(a, b) for a, b in pairs}
    result = {"images_per_s_per_core": medians, "per_round": per_round, "ratios": ratios, "goals": GOALS,
              "meets_goal": {"torchvision_vs_pil": ratios["torchvision_vs_pil"] >= GOALS["torchvision_vs_pil"]},
              "workload": {"images": args.images, "sizes": SIZES, "jpeg_quality": 90, "crop": 224,
                           "batch_size": args.batch_size, "batches": args.batches, "rounds": args.rounds,
                           "device": args.device}}
    for name, value in medians.items():
        print(f"decode {name:12s} {value:7.1f} images/s per core", flush=True)
    print("  ".join(f"{name.replace('_vs_', ' / ')} = {value:.2f}" for name, value in ratios.items())
          + f"  (goal: torchvision / pil >= {GOALS['torchvision_vs_pil']})", flush=True)
    write_result(args.out, result, load_job_config(args.config) if args.config else {})


if __name__ == "__main__":
    main()
