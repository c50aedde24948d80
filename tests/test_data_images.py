"""ImageNet as ILSVRC delivers it (flat val/ + LOC_val_solution.csv) and the fast JPEG decode path."""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import hub_fixtures as fx
import numpy as np
import pytest
import torch
from test_data import job_config

from heavytail.errors import ConfigError
from heavytail.preflight import preflight


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    return fx.write_imagenet(tmp_path_factory.mktemp("imagenet"))


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def imagenet_job(tmp_path: Path, imagenet_dir: Path, val_labels=None) -> dict:
    return {"scale": "paper", "stage": "data", "data": {"images": {"source": "imagenet"}},
            "paths": {"imagenet_dir": str(imagenet_dir), "imagenet_val_labels": val_labels,
                      "hf_home": str(tmp_path / "hf_home")}}


def test_flat_val_is_read_through_the_devkit_labels_without_touching_the_folder(imagenet, tmp_path):
    from heavytail.data import images

    before = tree(imagenet["root"])
    out = tmp_path / "results" / "images" / "manifest.json"
    # LOC_val_solution.csv is found where Kaggle puts it, three folders above ILSVRC/Data/CLS-LOC
    images.main(["--config", json.dumps(imagenet_job(tmp_path, imagenet["imagenet_dir"])), "--out", str(out)])
    manifest = json.loads(out.read_text())
    assert manifest["classes"] == imagenet["wnids"] and manifest["labels"] == {"val": "val_labels.csv"}
    assert manifest["counts"]["val"] == dict.fromkeys(imagenet["wnids"], 2)
    assert manifest["source"]["val_labels"] == str(imagenet["val_labels_file"])
    val = images.image_folder(out, "val")
    assert len(val) == len(imagenet["val_labels"])
    for (path, label), (image, label_again) in zip(val.samples, val, strict=True):
        assert label == label_again == imagenet["wnids"].index(imagenet["val_labels"][Path(path).stem])
        assert image.mode == "RGB"
    assert tree(imagenet["root"]) == before  # nothing written, moved or linked in the user's folder
    # an explicit label file wins over the search
    moved = tmp_path / "labels" / "solution.csv"
    moved.parent.mkdir()
    moved.write_text(imagenet["val_labels_file"].read_text())
    out2 = tmp_path / "results2" / "images" / "manifest.json"
    images.main(["--config", json.dumps(imagenet_job(tmp_path, imagenet["imagenet_dir"], str(moved))),
                 "--out", str(out2)])
    assert json.loads(out2.read_text())["source"]["val_labels"] == str(moved)


def test_layout_problems_are_listed_together(imagenet, tmp_path):
    from heavytail.data.imagenet import imagenet_layout_problems

    assert imagenet_layout_problems(imagenet["imagenet_dir"]) == []
    root = tmp_path / "CLS-LOC"
    (root / "train" / "n01440764").mkdir(parents=True)
    (root / "val").mkdir()
    for name in ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"):
        (root / "val" / name).write_bytes((imagenet["imagenet_dir"] / "val" / name).read_bytes())
    problems = imagenet_layout_problems(root)
    assert len(problems) == 1 and problems[0].startswith("paths.imagenet_val_labels: ") and "is flat" in problems[0]
    labels = tmp_path / "LOC_val_solution.csv"
    labels.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n09999999 1 2 3 4 \n")
    problems = imagenet_layout_problems(root, str(labels))
    assert len(problems) == 2 and "no label for 1 image(s)" in problems[0] and "n09999999" in problems[1]
    assert all("\n" not in p for p in problems)
    (root / "val" / "n01443537").mkdir()
    os.remove(root / "val" / "ILSVRC2012_val_00000001.JPEG")
    os.remove(root / "val" / "ILSVRC2012_val_00000002.JPEG")
    assert "class folders differ" in imagenet_layout_problems(root)[0]
    from heavytail.data import images

    with pytest.raises(ConfigError, match="paths.imagenet_dir: train and val class folders differ"):
        images.check_image_inputs(imagenet_job(tmp_path, root))


@pytest.fixture(scope="module")
def manifest(imagenet, tmp_path_factory):
    from heavytail.data import images

    out = tmp_path_factory.mktemp("manifest") / "images" / "manifest.json"
    images.main(["--config", json.dumps(imagenet_job(out.parent.parent, imagenet["imagenet_dir"])),
                 "--out", str(out)])
    return out


def first_batches(manifest, decoder, decode_device=None, steps=2):
    from heavytail.data.image_batches import worker_train_batches
    from heavytail.data.images import IMAGENET_MEAN, IMAGENET_STD

    batches = worker_train_batches(manifest, seed=4, start_step=0, batch_size=6, rank=0, world_size=1,
                                   image_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, num_workers=0,
                                   decoder=decoder, decode_device=decode_device)
    return [next(batches) for _ in range(steps)]


def test_torchvision_decode_cuts_the_pil_recipes_crops(manifest):
    pil = first_batches(manifest, "pil")
    fast = first_batches(manifest, "torchvision")
    on_device = first_batches(manifest, "torchvision", decode_device="cpu")  # the GPU path, with the CPU device
    for (x_pil, y_pil), (x_fast, y_fast), (x_dev, y_dev) in zip(pil, fast, on_device, strict=True):
        assert torch.equal(y_pil, y_fast) and torch.equal(y_fast, y_dev)
        assert x_fast.dtype == x_pil.dtype == torch.float32 and x_fast.shape == x_pil.shape == (6, 3, 32, 32)
        # the same boxes and flips from the same seeds; only the resampling code differs (PIL vs torchvision)
        assert (x_fast - x_pil).abs().mean() < 0.05 * (x_pil.std())
        assert torch.equal(x_fast, x_dev)  # decoding in the workers or on the device: one code, one result
    assert not torch.equal(pil[0][0], pil[1][0])  # and the steps differ


def test_val_loader_reads_the_flat_val_in_order(manifest, imagenet):
    from heavytail.data.image_batches import worker_val_loader
    from heavytail.data.images import IMAGENET_MEAN, IMAGENET_STD

    expected = torch.tensor([imagenet["wnids"].index(w) for _, w in sorted(imagenet["val_labels"].items())])
    results = {}
    for decoder in ("pil", "torchvision"):
        loader = worker_val_loader(manifest, 4, 32, IMAGENET_MEAN, IMAGENET_STD, num_workers=0, decoder=decoder)
        images, labels = zip(*loader, strict=True)
        results[decoder] = torch.cat(images)
        assert torch.equal(torch.cat(labels), expected)
    assert (results["torchvision"] - results["pil"]).abs().mean() < 0.05 * results["pil"].std()
    with pytest.raises(ConfigError, match="vision.decoder must be one of pil, torchvision"):
        worker_val_loader(manifest, 4, 32, IMAGENET_MEAN, IMAGENET_STD, num_workers=0, decoder="simd")


def test_greyscale_folders_keep_one_channel_on_every_path(tmp_path):
    from PIL import Image

    from heavytail.data.image_batches import worker_train_batches, worker_val_loader

    for split in ("train", "val"):
        for c, name in enumerate(("0_a", "1_b")):
            (tmp_path / split / name).mkdir(parents=True)
            for k in range(3):
                Image.new("L", (28, 28), 40 * c + 10 * k).save(tmp_path / split / name / f"{k}.png")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"root": ".", "splits": {"train": "train", "val": "val"},
                                    "classes": ["0_a", "1_b"], "channels": 1}))
    shapes = set()
    for decoder, device in (("pil", None), ("torchvision", None), ("torchvision", "cpu")):
        x, _ = next(worker_train_batches(manifest, 0, 0, 4, 0, 1, 16, [0.5], [0.25], 0, decoder, device))
        shapes.add(tuple(x.shape))
        x_val, _ = next(iter(worker_val_loader(manifest, 4, 16, [0.5], [0.25], 0, decoder)))
        shapes.add(tuple(x_val.shape))
    assert shapes == {(4, 1, 16, 16)}


# --------------------------------------------------------------------------- Fashion-MNIST (tiny)
def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format of (Fashion-)MNIST: magic (0, 0, dtype 0x08, ndim), big-endian sizes, raw uint8."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(folder: Path, n_train: int = 40, n_test: int = 20) -> dict:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        arrays[prefix] = (images, labels)
    return arrays


# --------------------------------------------------------------------------- images
def test_fashion_mnist_becomes_an_image_folder(tmp_path):
    from heavytail.data import images

    arrays = write_fashion_mnist(tmp_path / "fmnist")
    cfg = job_config(tmp_path, images={"source": "fashion_mnist", "fashion_mnist_dir": str(tmp_path / "fmnist"),
                                       "train_per_class": 3, "val_per_class": 1})
    manifest_path = tmp_path / "results" / "data" / "images" / "manifest.json"
    images.main(["--config", json.dumps(cfg), "--out", str(manifest_path)])
    manifest = json.loads(manifest_path.read_text())
    assert manifest["classes"][0] == "0_T-shirt_top" and manifest["classes"][9] == "9_Ankle_boot"
    assert manifest["counts"]["train"] == dict.fromkeys(manifest["classes"], 3)
    assert manifest["channels"] == 1 and (manifest_path.parent / "run.json").is_file()
    train = images.image_folder(manifest_path, "train")
    assert len(train) == 30 and train.classes == manifest["classes"]
    image, label = train[0]  # the first class-0 training image is source index 0
    train_images, train_labels = arrays["train"]
    assert label == train_labels[0] == 0 and np.array_equal(np.asarray(image), train_images[0])
    assert len(images.image_folder(manifest_path, "val")) == 10
    assert not list((tmp_path / "results" / "data").glob(".*"))  # no staging or work folders left behind


def test_image_folder_and_fashion_mnist_errors(tmp_path):
    from heavytail.data import images

    with pytest.raises(ConfigError, match="does not exist"):
        images.image_folder(tmp_path / "nowhere" / "manifest.json", "train")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps({"root": ".", "splits": {"train": "train"},
                                                              "classes": ["a"], "channels": 1}))
    with pytest.raises(ConfigError, match="missing or has no class folders"):
        images.image_folder(tmp_path / "m" / "manifest.json", "train")
    (tmp_path / "fmnist").mkdir()
    cfg = job_config(tmp_path, images={"source": "fashion_mnist", "fashion_mnist_dir": str(tmp_path / "fmnist")})
    with pytest.raises(ConfigError, match="dataset-fashion-mnist"):
        images.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "out" / "images" / "manifest.json")])
    problems, _ = preflight(cfg, {"images"})
    assert len(problems) == 1 and "fashion_mnist_dir" in problems[0]
    assert not (tmp_path / "out").exists()


def test_imagenet_manifest_points_at_the_user_folder(tmp_path):
    from PIL import Image

    from heavytail.data import images

    cfg = job_config(tmp_path, images={"source": "imagenet"})
    out = tmp_path / "results" / "images" / "manifest.json"
    with pytest.raises(ConfigError, match=r"paths.imagenet_dir: .* does not exist; expected layout"):
        images.main(["--config", json.dumps(cfg), "--out", str(out)])
    assert not out.parent.exists()
    root = tmp_path / "imagenet"
    for split, n in (("train", 3), ("val", 1)):
        for wnid in ("n01440764", "n01443537"):
            (root / split / wnid).mkdir(parents=True)
            for k in range(n):
                Image.new("RGB", (8, 6), (k, 40, 200)).save(root / split / wnid / f"{wnid}_{k}.JPEG")
    images.main(["--config", json.dumps(cfg), "--out", str(out)])
    manifest = json.loads(out.read_text())
    assert manifest["root"] == str(root.resolve()) and manifest["classes"] == ["n01440764", "n01443537"]
    assert manifest["counts"]["train"] == {"n01440764": 3, "n01443537": 3}
    val = images.image_folder(out, "val")
    assert len(val) == 2 and val[1][1] == 1 and val[0][0].mode == "RGB" and val[0][0].size == (8, 6)
    assert not list(out.parent.glob("n0*"))  # pointed to, not copied




def test_each_rank_validates_its_own_share_of_the_images(manifest, imagenet):
    """#16: validation ran on rank 0 while the other GPUs idled. Each rank now reads a contiguous share; the
    shares, in rank order, are the whole split once."""
    from heavytail.data.image_batches import worker_val_loader
    from heavytail.data.images import IMAGENET_MEAN, IMAGENET_STD
    from heavytail.train.distributed import DistContext

    expected = torch.tensor([imagenet["wnids"].index(w) for _, w in sorted(imagenet["val_labels"].items())])
    shares = [torch.cat([labels for _, labels in worker_val_loader(
        manifest, 2, 32, IMAGENET_MEAN, IMAGENET_STD, num_workers=0, shard=DistContext(rank=rank, world_size=2).shard)])
        for rank in (0, 1)]
    assert [len(s) for s in shares] == [(len(expected) + 1) // 2, len(expected) // 2]
    assert torch.equal(torch.cat(shares), expected)
