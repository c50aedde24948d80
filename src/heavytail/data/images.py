"""Labelled images as a torchvision ImageFolder, so one loader serves Fashion-MNIST (tiny) and ImageNet (paper).

fashion_mnist: the four idx .gz files of Debian's dataset-fashion-mnist, read by torchvision's FashionMNIST,
written as PNGs to `<out dir>/{train,val}/<label>_<class>/`. imagenet: `paths.imagenet_dir` is validated and
pointed to, never copied or changed. Its val/ may be sorted into <wnid> folders or flat, as ILSVRC ships it,
with the devkit's LOC_val_solution.csv (`paths.imagenet_val_labels`, or found next to the data); a flat val/ is
read through a label list written next to the manifest (50k symlinks would take seconds to make and to scan
at every job start; the list takes milliseconds). Both write `manifest.json` (root, splits, classes, counts,
normalisation, and `labels` for a split read through a label list).

    python -m heavytail.data.images --config <json> --out results/{scale}/data/images/manifest.json
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path

from heavytail.config import load_job_config, resolve_job_config
from heavytail.data.hub import raise_problems
from heavytail.data.imagenet import (
    IMAGE_SUFFIXES,
    LabelledFiles,
    imagenet_layout_problems,
    imagenet_val_labels,
    val_is_flat,
    write_label_list,
)
from heavytail.errors import ConfigError
from heavytail.io import atomic_dir, read_json, write_json
from heavytail.provenance import record_run

FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PROGRESS_EVERY = 2000


IMAGENET_LAYOUT = ("<imagenet_dir>/train/<wnid>/*.JPEG and <imagenet_dir>/val/<wnid>/*.JPEG "
                   "(val sorted into class folders, e.g. with the valprep.sh script)")


def check_image_folder(root: Path, key: str, splits: tuple[str, ...] = ("train", "val")) -> None:
    """An ImageFolder root needs one folder per split, each with at least one class folder."""
    if not root.is_dir():
        raise ConfigError(f"{key}: image folder {root} does not exist; expected layout {IMAGENET_LAYOUT}")
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir() or not any(p.is_dir() for p in split_dir.iterdir()):
            raise ConfigError(f"{key}: {split_dir} is missing or has no class folders; "
                              f"expected layout {IMAGENET_LAYOUT}")


def check_fashion_mnist_dir(raw: Path) -> None:
    missing = [name for name in FASHION_MNIST_FILES if not (raw / name).is_file()]
    if missing:
        raise ConfigError(f"data.images.fashion_mnist_dir: {raw} lacks {', '.join(missing)}; install Debian's "
                          "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or point the key at a "
                          "folder with the four Fashion-MNIST .gz files")


def class_folder_name(label: int, name: str) -> str:
    # the label prefix makes ImageFolder's alphabetical class order equal the dataset's label order
    return f"{label}_{re.sub(r'[^A-Za-z0-9-]+', '_', name)}"


def unpack_fashion_mnist(raw: Path, root: Path) -> None:
    """Gunzip the idx files into root/FashionMNIST/raw/, where torchvision's FashionMNIST reads them."""
    dest = root / "FashionMNIST" / "raw"
    dest.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:
        try:
            with gzip.open(raw / name, "rb") as src, open(dest / name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"data.images.fashion_mnist_dir: {raw / name} is corrupt or truncated ({exc}); "
                              "reinstall dataset-fashion-mnist") from exc


def first_per_class(targets: list[int], per_class: int | None) -> list[int]:
    """Indices of the first `per_class` examples of every class, in file order (deterministic)."""
    taken: dict[int, int] = {}
    keep = []
    for index, label in enumerate(targets):
        if per_class is None or taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            keep.append(index)
    return keep


def write_fashion_mnist(images_cfg: dict, out_dir: Path, work_dir: Path) -> dict:
    """Write the selected Fashion-MNIST images as PNGs in an ImageFolder tree; returns the manifest."""
    import numpy as np
    from PIL import Image
    from torchvision.datasets import FashionMNIST

    raw = Path(images_cfg["fashion_mnist_dir"])
    unpack_fashion_mnist(raw, work_dir)
    splits = {"train": (True, images_cfg.get("train_per_class")), "val": (False, images_cfg.get("val_per_class"))}
    counts, classes, pixel_sum, pixel_sq, pixel_n = {}, [], 0.0, 0.0, 0
    for split, (is_train, per_class) in splits.items():
        ds = FashionMNIST(str(work_dir), train=is_train, download=False)
        classes = [class_folder_name(i, name) for i, name in enumerate(ds.classes)]
        for name in classes:
            (out_dir / split / name).mkdir(parents=True, exist_ok=True)
        targets = ds.targets.tolist()
        keep = first_per_class(targets, per_class)
        data = ds.data.numpy()
        for done, index in enumerate(keep, start=1):
            Image.fromarray(data[index]).save(out_dir / split / classes[targets[index]] / f"{index:05d}.png")
            if done % PROGRESS_EVERY == 0:
                print(f"images {split} {done:6d}/{len(keep)}", flush=True)
        counts[split] = {name: sum(1 for i in keep if classes[targets[i]] == name) for name in classes}
        if split == "train":
            pixels = data[keep].astype(np.float64) / 255.0
            pixel_sum, pixel_sq, pixel_n = pixels.sum(), (pixels**2).sum(), pixels.size
        print(f"images {split} wrote {len(keep)} images in {len(classes)} classes", flush=True)
    mean = pixel_sum / pixel_n
    std = (pixel_sq / pixel_n - mean**2) ** 0.5
    return {"root": ".", "splits": {"train": "train", "val": "val"}, "classes": classes, "counts": counts,
            "source": {"kind": "fashion_mnist", "dir": str(raw), "files": list(FASHION_MNIST_FILES),
                       "selection": "first N per class in file order; val from the t10k test files"},
            "image_size": [28, 28], "channels": 1, "mean": [round(mean, 6)], "std": [round(std, 6)]}


def count_images(folder: Path) -> dict[str, int]:
    return {d.name: sum(1 for f in os.scandir(d) if f.name.lower().endswith(IMAGE_SUFFIXES))
            for d in sorted(os.scandir(folder), key=lambda e: e.name) if d.is_dir()}


def imagenet_manifest(paths: dict, out_dir: Path) -> dict:
    """A manifest pointing at the user's ImageNet folder, after checking its layout; a flat val/ gets a label
    list in `out_dir`."""
    root = Path(paths["imagenet_dir"]).resolve()
    raise_problems(imagenet_layout_problems(root, paths.get("imagenet_val_labels")))
    counts = {"train": count_images(root / "train")}
    classes = sorted(counts["train"])
    manifest = {"root": str(root), "splits": {"train": "train", "val": "val"}, "classes": classes,
                "source": {"kind": "imagenet", "dir": str(root)}, "image_size": [224, 224], "channels": 3,
                "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    if val_is_flat(root / "val"):
        labels_file = imagenet_val_labels(root, paths.get("imagenet_val_labels"))
        labels = write_label_list(root / "val", labels_file, out_dir / "val_labels.csv")
        counts["val"] = {wnid: sum(1 for w in labels.values() if w == wnid) for wnid in classes}
        manifest["labels"] = {"val": "val_labels.csv"}
        manifest["source"]["val_labels"] = str(labels_file)
    else:
        counts["val"] = count_images(root / "val")
    manifest["counts"] = counts
    val_from = f", val labels from {manifest['source']['val_labels']}" if "labels" in manifest else ""
    print(f"images imagenet {root}: {sum(counts['train'].values())} train, {sum(counts['val'].values())} val "
          f"images in {len(classes)} classes{val_from}", flush=True)
    return manifest


def split_root(manifest_path: str | Path, split: str) -> tuple[dict, Path]:
    """The manifest and the folder of one split, resolved relative to the manifest."""
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise ConfigError(f"image manifest {manifest_path} does not exist (build it with heavytail.data.images)")
    manifest = read_json(manifest_path)
    if split not in manifest.get("splits", {}):
        raise ConfigError(f"image manifest {manifest_path} has no split {split!r} "
                          f"(splits: {', '.join(manifest.get('splits', {}))})")
    return manifest, manifest_path.parent / manifest["root"] / manifest["splits"][split]


def load_grayscale(path: str):
    from PIL import Image

    with open(path, "rb") as fh:
        return Image.open(fh).convert("L")


def load_rgb(path: str):
    from PIL import Image

    with open(path, "rb") as fh:
        return Image.open(fh).convert("RGB")


def image_folder(manifest_path: str | Path, split: str, transform=None):
    """The torchvision ImageFolder of one split named by a manifest; a clear ConfigError if the folder is bad.

    Images load with the manifest's channel count (1: PIL mode L, 3: RGB), so transforms see the real data.
    """
    from torchvision.datasets import ImageFolder

    manifest, folder = split_root(manifest_path, split)
    labels = manifest.get("labels", {}).get(split)
    if not folder.is_dir() or not (labels or any(p.is_dir() for p in folder.iterdir())):
        raise ConfigError(f"image folder {folder} (split {split!r} of {manifest_path}) is missing or has no class "
                          "folders; expected <root>/<split>/<class>/*.png|*.JPEG (rebuild it with "
                          "heavytail.data.images)")
    try:
        loader = load_grayscale if manifest.get("channels") == 1 else load_rgb
        if labels:
            ds = LabelledFiles(folder, Path(manifest_path).parent / labels, manifest["classes"], loader, transform)
        else:
            ds = ImageFolder(str(folder), transform=transform, loader=loader)
    except (FileNotFoundError, RuntimeError) as exc:
        raise ConfigError(f"image folder {folder}: {str(exc).splitlines()[0]}") from exc
    if ds.classes != manifest["classes"]:
        raise ConfigError(f"image folder {folder} has classes {ds.classes[:3]}..., the manifest lists "
                          f"{manifest['classes'][:3]}...; rebuild it with heavytail.data.images")
    return ds


def check_image_inputs(cfg: dict) -> None:
    images = cfg["data"]["images"]
    if images["source"] == "fashion_mnist":
        check_fashion_mnist_dir(Path(images["fashion_mnist_dir"]))
    else:
        raise_problems(imagenet_layout_problems(Path(cfg["paths"]["imagenet_dir"]),
                                                cfg["paths"].get("imagenet_val_labels")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config: JSON string or file")
    parser.add_argument("--out", required=True, type=Path,
                        help="manifest.json; its folder is rebuilt and holds the image tree and run.json")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "images")
    check_image_inputs(cfg)
    images = cfg["data"]["images"]
    with atomic_dir(args.out.parent) as staging, record_run(staging, cfg) as run:
        if images["source"] == "fashion_mnist":
            with tempfile.TemporaryDirectory(prefix=".fashion_mnist.", dir=args.out.parent.parent) as work:
                manifest = write_fashion_mnist(images, staging, Path(work))
        else:
            manifest = imagenet_manifest(cfg["paths"], staging)
        write_json(staging / args.out.name, manifest)
        run["counts"] = {split: sum(c.values()) for split, c in manifest["counts"].items()}


if __name__ == "__main__":
    main()
