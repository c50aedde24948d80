"""The noise entry point: BERT and ResNet targets at init, checkpoints vs in-memory models, figures, tables."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_job

from heavytail.errors import ConfigError
from heavytail.io import read_json, write_json
from heavytail.noise.core import measure_noise
from heavytail.noise.measure import main, run_point
from heavytail.train.checkpoint import save_checkpoint, seed_everything

torch.set_num_threads(1)

# a measurement job's noise section (as the plan builds it: without the figures' settings and the runs)
SETTINGS = {k: v for k, v in tiny_job("noise", {
    "seed": 99, "n_mean": 4, "n_samples": 24, "n_boot": 20, "progress_every": 0, "batch_sizes": [8],
    "per_coordinate": {"coordinates_per_group": 40, "max_samples": 5000}}).items() if k not in ("runs", "figures")}
WORDS = "the a cat dog river city king queen house garden sees finds likes builds red quiet ancient .".split()


@pytest.fixture(scope="module")
def bert_job(tmp_path_factory) -> dict:
    """A pretrain job config on a real packed MLM folder built from a small corpus and WordPiece vocab."""
    from datasets import Dataset, DatasetDict
    from transformers import BertTokenizerFast

    from heavytail.data.mlm import prepare_mlm_data

    root = tmp_path_factory.mktemp("mlm")
    rng = random.Random(0)

    def article(i: int) -> dict:
        return {"id": str(i), "title": f"a{i}", "text": " ".join(rng.choice(WORDS) for _ in range(120))}

    DatasetDict(train=Dataset.from_list([article(i) for i in range(30)]),
                validation=Dataset.from_list([article(100 + i) for i in range(4)])).save_to_disk(str(root / "corpus"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(root / "tokenizer"))
    prepare_mlm_data(root / "corpus", root / "tokenizer", root / "mlm", max_seq_length=16)
    job = tiny_job("pretrain", {"max_seq_length": 16, "max_predictions_per_seq": 3, "nsp": False,
                                "validation_sequences": 8, "train": {"steps": 10, "batch_size": 8}},
                   mlm_data=str(root / "mlm"), model="bert_tiny", optimizer="adam", seed=0)
    job["models"] = {"bert_tiny": {"num_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                                   "intermediate_size": 32, "dropout": 0.0, "initializer_range": 0.02}}
    job["optimizers"] = {"adam": {"name": "adamw", "lr": 1e-3}}
    return job


@pytest.fixture(scope="module")
def vision_job(tmp_path_factory) -> dict:
    """A vision job config on a real ImageFolder of 28 px greyscale PNGs with its manifest.json."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    classes = [f"{i}_class{i}" for i in range(3)]
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 12), ("val", 2)):
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for k in range(per_class):
                pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8) // (label + 1)
                Image.fromarray(pixels).save(root / split / name / f"{k:03d}.png")
    write_json(root / "manifest.json", {
        "root": ".", "splits": {"train": "train", "val": "val"}, "classes": classes,
        "counts": {"train": dict.fromkeys(classes, 12), "val": dict.fromkeys(classes, 2)},
        "image_size": [28, 28], "channels": 1, "mean": [0.3], "std": [0.3]})
    job = tiny_job("vision", {"crop_padding": 2}, manifest=str(root / "manifest.json"), model="resnet",
                   optimizer="sgdm", seed=0)
    job["models"] = {"resnet": {**job["models"]["resnet"], "width": 4, "batch_size": 8, "epochs": 1,
                                "optimizers": ["sgdm"], "eval_every": None}}
    job["optimizers"] = {"sgdm": {"name": "sgdm", "lr": 0.1}}
    return job


def measure_at_init(job: dict, out: Path, *extra: str) -> dict:
    assert main(["--config", json.dumps({**SETTINGS, "job": job}), "--checkpoint", "init", "--out", str(out),
                 *extra]) == 0
    return read_json(out / "summary.json")


def check_rows(summary: dict, model: str, data: str, groups: set[str]) -> None:
    rows = summary["rows"]
    assert {r["group"] for r in rows} == groups | {"all"}
    for row in rows:
        assert (row["model"], row["data"], row["step"], row["batch_size"]) == (model, data, 0, 8)
        # an infinite estimate (possible from 12 paired differences) is written as null
        assert set(row["tail_index"]) == {"alpha", "lo", "hi"} and (row["tail_index"]["alpha"] or 1) > 0
        assert row["tail_index_estimator"] == "block_sums" and row["paired_tail_index_lo"] is not None
        # the block-sum estimator's Gaussian level at K1 = 4, N_mean = 4: its median well below 2
        assert 1.0 < row["gaussian_tail_index_lo"] <= row["gaussian_tail_index"] <= row["gaussian_tail_index_hi"]
        assert row["gaussian_tail_index"] < 1.9 and 1 <= row["effective_dim"] <= row["dim"]
        assert row["n_samples"] == 24 and row["n_mean"] == 4 and row["variance_last"] > 0
        assert set(row["quantiles"]) == {"0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"}


def test_bert_at_init_writes_summary_rows_and_per_coordinate_noise(bert_job, tmp_path):
    summary = measure_at_init(bert_job, tmp_path / "bert", "--per-coordinate")
    check_rows(summary, "bert", "wikipedia", {"token_embedding", "embedding", "attention", "feed_forward",
                                              "layer_norm", "head"})
    with np.load(tmp_path / "bert" / "noise.npz") as arrays:
        assert arrays["norms__all"].shape == (24,) and arrays["variance_curve__all"].shape == (24,)
        # per-group squared norms add up to the whole model's
        groups = [k for k in arrays.files if k.startswith("norms__") and k != "norms__all"]
        np.testing.assert_allclose(sum(arrays[k] ** 2 for k in groups), arrays["norms__all"] ** 2, rtol=1e-9)
    with np.load(tmp_path / "bert" / "per_coordinate.npz") as coords:
        # one row per measured minibatch (all 24 fit in max_samples), 40 coordinates per set
        assert coords["noise__all"].shape == coords["noise__attention"].shape == (24, 40)
        assert not np.allclose(coords["noise__attention"][0], coords["noise__attention"][1])
    assert summary["per_coordinate"]["n_minibatches"] == 24 and summary["per_coordinate"]["mode"] == "train_frozen_bn"
    assert summary["per_coordinate"]["tail_index"]["all"]["n_minibatches"] == 24
    assert any(r.get("coordinate_tail_index") for r in summary["rows"])
    assert read_json(tmp_path / "bert" / "run.json")["status"] == "ok"


def test_variants_and_gaussian_input_are_named_for_the_report(bert_job, tmp_path):
    summary = measure_at_init({**bert_job, "variant": "resnet_like"}, tmp_path / "v", "--data", "gaussian")
    check_rows(summary, "no_attention_bert", "gaussian", {"token_embedding", "embedding", "feed_forward",
                                                          "layer_norm", "head"})


def test_resnet_at_init_writes_summary_rows(vision_job, tmp_path):
    summary = measure_at_init(vision_job, tmp_path / "resnet")
    check_rows(summary, "resnet", "fashion_mnist", {"convolution", "batch_norm", "head"})
    assert summary["metadata"]["mode"] == "train_frozen_bn" and summary["metadata"]["architecture"] == "resnet_narrow"


class Steps:
    """The training task's seeded batches from step 0, re-iterable (what the sampler expects)."""

    def __init__(self, task, batch_size: int):
        self.task, self.batch_size = task, batch_size

    def __iter__(self):
        return self.task.train_batches(0, self.batch_size, 0, 1)


def test_measuring_a_saved_snapshot_equals_measuring_the_model_in_memory(bert_job, tmp_path):
    from heavytail.train.mlm_task import MLMPretrainTask, bert_arch, load_mlm_data

    data = load_mlm_data(bert_job)
    seed_everything(0)
    # the architecture the run records (its position embeddings included), as pretraining builds it
    model = MLMPretrainTask(data, bert_arch(bert_job, "bert_tiny")).build_model()
    with torch.no_grad():  # a point away from init, as after some training
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    run = tmp_path / "run"
    save_checkpoint(run / "snapshots" / "step7.pt", {"step": 7, "model": model.state_dict(), "config": {"steps": 10}})
    write_json(run / "resolved_config.json", bert_job)
    write_json(run / "result.json", {"train_config": {"steps": 10}})
    plan = {**SETTINGS, "measurements": [{"name": "m", "run": str(run), "fraction": 0.7, "batch_size": 8}]}
    assert main(["--config", json.dumps(plan), "--out", str(tmp_path / "noise")]) == 0

    task = MLMPretrainTask(data, bert_arch(bert_job, "bert_tiny"), seed=SETTINGS["seed"])
    in_memory = measure_noise(model, lambda m, b: task.loss(m, b)[0], Steps(task, 8), n_mean=4, n_samples=24,
                              n_boot=20, seed=SETTINGS["seed"])
    with np.load(tmp_path / "noise" / "m" / "noise.npz") as saved:
        np.testing.assert_array_equal(saved["norms__all"], in_memory.norms.norms)
        np.testing.assert_array_equal(saved["norms__attention"], in_memory.norms.group_norms["attention"])
    meta = read_json(tmp_path / "noise" / "m" / "summary.json")["metadata"]
    assert (meta["step"], meta["fraction"], meta["total_steps"]) == (7, 0.7, 10)


def test_run_point_resolves_fractions_and_names_a_missing_snapshot(bert_job, tmp_path):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "snapshots" / "step3.pt").write_bytes(b"")
    (run / "checkpoint.pt").write_bytes(b"")
    write_json(run / "resolved_config.json", bert_job)
    write_json(run / "result.json", {"train_config": {"steps": 10}})
    assert run_point(run, 0.3)[0] == str(run / "snapshots" / "step3.pt")
    assert run_point(run, 1.0)[0] == str(run / "checkpoint.pt")
    assert run_point(run, 0.0)[0] == "init"
    checkpoint, job, steps = run_point(run, 0.0, variant="resnet_like")
    assert (checkpoint, job["variant"], steps) == ("init", "resnet_like", 10)
    with pytest.raises(ConfigError, match=r"no snapshot at step 5 .*kept: \[3\]"):
        run_point(run, 0.5)
    with pytest.raises(ConfigError, match="not a finished training run"):
        run_point(tmp_path / "nowhere", 0.5)


def test_figures_table_and_report_aggregation_read_the_measurements(bert_job, vision_job, tmp_path):
    from heavytail.report.aggregate import collect_noise
    from heavytail.report.figures import noise as figures

    root = tmp_path / "results" / "noise"
    bert = root / "bert"
    vision = root / "resnet"
    measure_at_init(bert_job, bert, "--per-coordinate")
    measure_at_init(vision_job, vision)
    assert figures.fig2(vision, bert, tmp_path / "fig2.png")[0].stat().st_size > 10_000
    assert figures.fig6(bert, bert, tmp_path / "fig6.png")[1].suffix == ".svg"
    table = figures.noise_table([bert, vision])
    assert len(table) == 7 + 4 and {"tail_index", "tail_index_lo", "q0.5", "variance_relative_range"} <= set(table)
    aggregated = collect_noise(tmp_path / "results")
    assert len(aggregated) == len(table)
    assert set(aggregated["model"]) == {"bert", "resnet"} and set(aggregated["group"]) == set(table["group"])
    assert aggregated["tail_index_lo"].notna().all()
