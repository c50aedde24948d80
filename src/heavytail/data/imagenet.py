"""The ImageNet folder as ILSVRC delivers it: train/<wnid>/*.JPEG, and val/ flat with the devkit's labels.

LOC_val_solution.csv (the Kaggle / devkit label file) has the columns ImageId,PredictionString; PredictionString
is "wnid x_min y_min x_max y_max" once per box, and the first wnid is the image's class. A flat val/ is read
through a label list (file name, wnid) written next to the manifest; the user's folder is never changed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from heavytail.errors import ConfigError

VAL_LABELS_NAME = "LOC_val_solution.csv"
LABEL_SEARCH_DEPTH = 3  # Kaggle keeps it three levels above ILSVRC/Data/CLS-LOC
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT = ("<imagenet_dir>/train/<wnid>/*.JPEG, and <imagenet_dir>/val/ either sorted into the same <wnid> "
          f"folders or flat (ILSVRC2012_val_*.JPEG) with the devkit's {VAL_LABELS_NAME}")


def _images(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir())


def val_is_flat(val: Path) -> bool:
    """val/ holds the images themselves rather than class folders."""
    return not _class_dirs(val) and bool(_images(val))


def imagenet_val_labels(root: Path, configured: str | None) -> Path | None:
    """The label file: the configured one, else LOC_val_solution.csv in imagenet_dir or up to 3 folders above."""
    if configured:
        return Path(configured)
    for folder in [root, *list(root.resolve().parents)[:LABEL_SEARCH_DEPTH]]:
        if (folder / VAL_LABELS_NAME).is_file():
            return folder / VAL_LABELS_NAME
    return None


def read_val_solution(path: Path) -> dict[str, str]:
    """{image id: wnid} of a LOC_val_solution.csv; ConfigError when it is not that format."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
            raise ConfigError(f"paths.imagenet_val_labels: {path} has columns {reader.fieldnames}, not ImageId,"
                              "PredictionString (use the devkit's LOC_val_solution.csv)")
        labels = {}
        for row in reader:
            fields = (row["PredictionString"] or "").split()
            if not fields or not fields[0].startswith("n"):
                raise ConfigError(f"paths.imagenet_val_labels: {path}: image {row['ImageId']} has no wnid "
                                  f"(PredictionString {row['PredictionString']!r})")
            labels[row["ImageId"]] = fields[0]
    return labels


def imagenet_layout_problems(root: Path, val_labels: str | None = None, key: str = "paths.imagenet_dir") -> list[str]:
    """Every problem of the ImageNet folder, one line each (an empty list: the pipeline can read it)."""
    root = Path(root)
    if not root.is_dir():
        return [f"{key}: image folder {root} does not exist; expected layout {LAYOUT}"]
    problems = []
    train, val = root / "train", root / "val"
    classes = _class_dirs(train) if train.is_dir() else []
    if not classes:
        problems.append(f"{key}: {train} is missing or has no class folders; expected layout {LAYOUT}")
    if not val.is_dir():
        return problems + [f"{key}: {val} does not exist; expected layout {LAYOUT}"]
    if not val_is_flat(val):
        val_classes = _class_dirs(val)
        if not val_classes:
            problems.append(f"{key}: {val} holds neither images nor class folders; expected layout {LAYOUT}")
        elif classes and val_classes != classes:
            only = sorted(set(classes) ^ set(val_classes))[:3]
            problems.append(f"{key}: train and val class folders differ (e.g. {only}); sort val into the same "
                            f"<wnid> folders as train, or leave it flat with {VAL_LABELS_NAME}")
        return problems
    labels_file = imagenet_val_labels(root, val_labels)
    if labels_file is None or not labels_file.is_file():
        where = labels_file or f"{root} or the {LABEL_SEARCH_DEPTH} folders above it"
        return problems + [f"paths.imagenet_val_labels: {val} is flat but no {VAL_LABELS_NAME} was found in "
                           f"{where}; set paths.imagenet_val_labels to the devkit's label file"]
    try:
        labels = read_val_solution(labels_file)
    except ConfigError as exc:
        return problems + [str(exc)]
    unlabelled = [name for name in _images(val) if Path(name).stem not in labels]
    if unlabelled:
        problems.append(f"paths.imagenet_val_labels: {labels_file} has no label for {len(unlabelled)} image(s) "
                        f"of {val} (e.g. {unlabelled[0]}); use the label file of this validation set")
    unknown = sorted(set(labels.values()) - set(classes)) if classes else []
    if unknown:
        problems.append(f"paths.imagenet_val_labels: {labels_file} names classes without a train folder (e.g. "
                        f"{unknown[0]}); use the label file of this ImageNet release")
    return problems


def write_label_list(val: Path, labels_file: Path, out: Path) -> dict[str, str]:
    """Write `file name,wnid` for every image of a flat val/ (sorted by name) to `out`; returns the mapping."""
    labels = read_val_solution(labels_file)
    listed = {name: labels[Path(name).stem] for name in _images(val)}
    out.write_text("".join(f"{name},{wnid}\n" for name, wnid in listed.items()))
    return listed


class LabelledFiles:
    """The images of one folder, classed by a label list (`file name,class` per line) instead of subfolders.

    It has the interface of torchvision's ImageFolder that the loaders use: samples, targets, classes, loader.
    """

    def __init__(self, root, labels_file, classes, loader, transform=None):
        self.root, self.loader, self.transform = str(root), loader, transform
        self.classes = list(classes)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        rows = [line.split(",") for line in Path(labels_file).read_text().splitlines() if line]
        self.samples = [(os.path.join(self.root, name), self.class_to_idx[wnid]) for name, wnid in rows]
        self.targets = [target for _, target in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        image = self.loader(path)
        return (self.transform(image) if self.transform is not None else image), target
