"""Vision classification: ImageFolder loading, seeded batches, resume equality, clear errors, model shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from heavytail.config import load_config
from heavytail.data.image_batches import MemoryImages, load_split_tensors, step_indices
from heavytail.errors import ConfigError
from heavytail.io import read_jsonl
from heavytail.models.vision import build_vision_model
from heavytail.report.figures.vision import accuracy_table
from heavytail.train.classify import build_task, input_size, model_from_snapshot, train_config
from heavytail.train.engine import run_training

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["0_a", "1_b", "2_c"]


def image_tree(root: Path, per_class: dict[str, int], size: int = 12) -> Path:
    """An ImageFolder tree of greyscale PNGs (image k of class c is filled with 10 c + k) and its manifest."""
    for split, n in per_class.items():
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for k in range(n):
                pixels = np.full((size, size), 10 * c + k, dtype=np.uint8)
                pixels[0, 0] = 255  # one bright corner pixel: flips and crops move it
                Image.fromarray(pixels).save(root / split / name / f"{k:03d}.png")
    counts = {split: {name: n for name in CLASSES} for split, n in per_class.items()}
    manifest = {"root": ".", "splits": {s: s for s in per_class}, "classes": CLASSES, "counts": counts,
                "image_size": [size, size], "channels": 1, "mean": [0.2], "std": [0.3]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root / "manifest.json"


def test_image_folder_loads_a_generated_tree_exactly(tmp_path):
    manifest = image_tree(tmp_path, {"train": 4, "val": 2})
    images, labels = load_split_tensors(manifest, "train")
    assert images.shape == (12, 1, 12, 12) and images.dtype == torch.uint8
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert images[:, 0, 5, 5].tolist() == [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]
    assert int(images[0, 0, 0, 0]) == 255


def test_missing_image_folder_is_one_clear_line(tmp_path):
    manifest = image_tree(tmp_path, {"train": 1, "val": 1})
    for name in CLASSES:
        for f in (tmp_path / "val" / name).iterdir():
            f.unlink()
        (tmp_path / "val" / name).rmdir()
    with pytest.raises(ConfigError) as err:
        load_split_tensors(manifest, "val")
    message = str(err.value)
    assert "\n" not in message and "expected <root>/<split>/<class>/" in message and str(tmp_path / "val") in message
    with pytest.raises(ConfigError, match="does not exist"):
        load_split_tensors(tmp_path / "nowhere.json", "train")


def test_batch_order_is_a_pure_function_of_seed_and_step():
    n, batch = 50, 8  # 6 steps per epoch, 2 images dropped per epoch
    cache: dict = {}
    epoch0 = np.concatenate([step_indices(3, s, batch, n, cache) for s in range(6)])
    assert len(set(epoch0.tolist())) == 48
    assert np.array_equal(step_indices(3, 7, batch, n), step_indices(3, 7, batch, n, cache))
    assert not np.array_equal(step_indices(3, 0, batch, n), step_indices(4, 0, batch, n))


def test_light_augmentation_pads_crops_and_flips_reproducibly():
    images = torch.zeros(4, 1, 6, 6, dtype=torch.uint8)
    images[:, :, 0, 0] = 255
    data = MemoryImages(images, torch.arange(4), mean=[0.0], std=[1.0], pad=2)
    a, _ = data.augmented(np.arange(4), seed=0, step=5)
    b, _ = data.augmented(np.arange(4), seed=0, step=5)
    assert torch.equal(a, b)
    # the bright pixel survives or is cropped away, but never more than once, and everything is in [0, 1]
    assert set((a == 1.0).flatten(1).sum(1).tolist()) <= {0, 1} and a.min() >= 0 and a.max() <= 1
    moved = [data.augmented(np.arange(4), 0, s)[0] for s in range(6)]
    assert any(not torch.equal(moved[0], m) for m in moved[1:])


def vision_cfg(manifest: Path) -> dict:
    """A vision job config as an entry point resolves it (schema defaults filled)."""
    from heavytail.config import resolve_job_config
    from heavytail.train.classify import JOB_KEYS

    return resolve_job_config(_vision_job(manifest), "vision", JOB_KEYS)


def _vision_job(manifest: Path) -> dict:
    return {"manifest": str(manifest), "model": "resnet", "optimizer": "sgdm", "seed": 0, "loader": "memory",
            "crop_padding": 2, "eval_batch_size": 7, "log_every": 2, "device": "cpu", "seeds": [0],
            "tune": {"fraction": 0.5, "seed": 0, "lr_factors": [0.5, 1.0, 2.0]},
            "optimizers": {"sgdm": {"name": "sgdm", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}},
            "models": {"resnet": {"arch": "resnet_narrow", "width": 4, "stem_stride": 1, "batch_size": 6,
                                  "optimizers": ["sgdm"], "steps": 6, "eval_every": 3, "checkpoint_every": 2,
                                  "schedule": {"decay": "step", "milestones": [0.5], "gamma": 0.1},
                                  "snapshot_fractions": [0, 0.5, 1.0]}}}


class CrashAt:
    """The task, except that its batch stream dies before step `crash_step` (a killed process)."""

    def __init__(self, task, crash_step: int):
        self.task, self.crash_step = task, crash_step

    def __getattr__(self, name):
        return getattr(self.task, name)

    def train_batches(self, start_step, batch_size, rank, world_size):
        for step, batch in enumerate(self.task.train_batches(start_step, batch_size, rank, world_size), start_step):
            if step == self.crash_step:
                raise KeyboardInterrupt("killed")
            yield batch


def run(manifest: Path, out: Path, crash_step: int | None = None) -> dict:
    cfg = vision_cfg(manifest)
    model_cfg = cfg["models"]["resnet"]
    train_cfg = train_config(cfg, model_cfg, json.loads(manifest.read_text()), cfg["optimizers"]["sgdm"], 0)
    task = build_task(cfg, train_cfg)
    return run_training(task if crash_step is None else CrashAt(task, crash_step), train_cfg, out)


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "it_per_s"} for r in rows]


def test_killed_and_resumed_run_equals_uninterrupted_run_bitwise(tmp_path):
    torch.set_num_threads(1)
    manifest = image_tree(tmp_path / "images", {"train": 4, "val": 3})
    whole = run(manifest, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(manifest, tmp_path / "resumed", crash_step=3)  # last checkpoint at step 2: step 2 is redone
    resumed = run(manifest, tmp_path / "resumed")
    assert whole["status"] == resumed["status"] == "ok"
    assert whole["final_validation"] == resumed["final_validation"]
    assert without_timing(read_jsonl(tmp_path / "whole" / "metrics.jsonl")) == \
        without_timing(read_jsonl(tmp_path / "resumed" / "metrics.jsonl"))
    for step in (0, 3, 6):
        a, _ = model_from_snapshot(tmp_path / "whole" / "snapshots" / f"step{step}.pt")
        b, config = model_from_snapshot(tmp_path / "resumed" / "snapshots" / f"step{step}.pt")
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert config["vision"]["model"]["arch"] == "resnet_narrow"
    rows = read_jsonl(tmp_path / "whole" / "metrics.jsonl")
    assert [r["step"] for r in rows if r["split"] == "validation"] == [0, 3, 6]
    assert {"loss", "top1", "top5"} <= set(rows[-2]) and rows[-2]["top5"] == 1.0  # 3 classes: top-5 is all


@pytest.mark.parametrize("spec, size, params", [
    ({"arch": "resnet_narrow", "width": 8, "stem_stride": 2}, 28, None),
    # torchvision's counts at 1000 classes / RGB, minus the 990 dropped logits and two of the first conv's 3 planes
    ({"arch": "resnet18"}, 32, 11_689_512 - 512 * 990 - 990 - 2 * 64 * 49),
    ({"arch": "resnet50"}, 32, 25_557_032 - 2048 * 990 - 990 - 2 * 64 * 49),
    ({"arch": "alexnet_narrow", "width_fraction": 0.25, "hidden": 64}, 64, None),
    ({"arch": "alexnet"}, 63, 61_100_840 - 4096 * 990 - 990 - 2 * 64 * 121),
], ids=lambda v: v["arch"] if isinstance(v, dict) else None)
def test_models_take_greyscale_images_and_give_class_logits(spec, size, params):
    torch.manual_seed(0)
    model = build_vision_model({**spec, "num_classes": 10, "in_channels": 1}).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, size, size)).shape == (2, 10)
    if params is not None:  # torchvision's model with a 1-channel first conv and 10 classes
        assert sum(p.numel() for p in model.parameters()) == params


def test_bad_arch_and_too_small_alexnet_input_are_config_errors():
    with pytest.raises(ConfigError, match="arch must be one of"):
        build_vision_model({"arch": "vgg"})
    with pytest.raises(ConfigError, match=">= 63"):
        input_size({"arch": "alexnet_narrow"}, {"image_size": [28, 28]})


def test_tiny_preset_resolves_to_the_documented_recipe():
    cfg = load_config(REPO / "config.yaml")["vision"]
    manifest = {"counts": {"train": {str(c): 1000 for c in range(10)}}, "classes": list(range(10)),
                "channels": 1, "image_size": [28, 28], "mean": [0.28], "std": [0.35]}
    train = train_config(cfg, cfg["models"]["resnet"], manifest, cfg["optimizers"]["sgdm"], 0)
    assert train["steps"] == 3 * (10_000 // 128) and train["snapshot_steps"] == [0, 23, 117, 234]
    alexnet = train_config(cfg, cfg["models"]["alexnet"], manifest, cfg["optimizers"]["sgdm"], 0)
    assert alexnet["vision"]["image_size"] == 64 and alexnet["snapshot_steps"] == [0, 200]
    paper = load_config(REPO / "config.yaml", {"scale": "paper"})["vision"]
    assert paper["optimizers"]["sgdm"]["lr"] == 0.1 * paper["models"]["resnet"]["batch_size"] / 256


def test_accuracy_table_sits_beside_the_papers_numbers(tmp_path):
    for opt, top1 in (("sgdm", 0.8), ("adam", 0.7)):
        run_dir = tmp_path / "resnet" / opt / "seed0"
        run_dir.mkdir(parents=True)
        rows = [{"split": "validation", "step": s, "loss": 1.0 / (s + 1), "top1": top1 * s / 10, "top5": 1.0}
                for s in (0, 10)]
        (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = accuracy_table([tmp_path / "resnet" / o / "seed0" for o in ("sgdm", "adam")]).set_index("optimizer")
    assert table.loc["sgdm", "top1"] == pytest.approx(0.8) and table.loc["adam", "top1"] == pytest.approx(0.7)
    assert table.loc["sgdm", "paper_top1"] == 0.754 and table.loc["adam", "paper_top1"] == 0.716
