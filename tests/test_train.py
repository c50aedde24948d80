"""The shared training engine on BERT pretraining: resume after kill/SIGTERM, divergence, DDP, schedules."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_job

from heavytail.data.mlm import prepare_mlm_data
from heavytail.errors import ConfigError
from heavytail.io import read_json, read_jsonl, write_json
from heavytail.train.engine import EXIT_REQUEUE, run_training
from heavytail.train.mlm_task import MLMPretrainTask, bert_arch, load_mlm_data, train_config
from heavytail.train.schedule import schedule_factor

torch.set_num_threads(1)

NOUNS = "cat dog river city king queen house garden music school window forest".split()
VERBS = "sees finds likes builds opens paints follows remembers".split()
ADJECTIVES = "red quiet ancient bright small northern famous".split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_corpus_and_tokenizer(root: Path) -> None:
    """A corpus DatasetDict in the data stage's format (id, title, text) and a BertTokenizerFast folder."""
    from datasets import Dataset, DatasetDict
    from transformers import BertTokenizerFast

    rng = random.Random(0)

    def sentence() -> str:
        return (f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} "
                f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} .")

    def article(i: int) -> dict:
        text = "\n".join(" ".join(sentence() for _ in range(4)) for _ in range(5))
        return {"id": str(i), "title": f"article {i}", "text": text}

    corpus = DatasetDict(train=Dataset.from_list([article(i) for i in range(60)]),
                         validation=Dataset.from_list([article(100 + i) for i in range(8)]))
    corpus.save_to_disk(str(root / "corpus"))
    words = SPECIALS + sorted(set(NOUNS + VERBS + ADJECTIVES + ["the", "."]))
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(str(root / "tokenizer"))


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mlm")
    write_corpus_and_tokenizer(root)
    prepare_mlm_data(root / "corpus", root / "tokenizer", root / "mlm", max_seq_length=32)
    job = tiny_job("pretrain", {
        "max_seq_length": 32, "max_predictions_per_seq": 5, "nsp": False, "validation_sequences": 32,
        "long_phase": None,  # one phase: tests/test_phases.py covers the second
        "train": {"steps": 40, "batch_size": 16, "log_every": 5, "eval_every": 10, "checkpoint_every": 10,
                  "schedule": {"warmup_fraction": 0.1}},
    }, mlm_data=str(root / "mlm"), model="bert_L1", optimizer="adam", seed=0)
    # maps keyed by label are replaced whole, as a scale file does
    job["models"] = {"bert_L1": {"num_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                                 "intermediate_size": 64, "dropout": 0.0, "initializer_range": 0.02}}
    job["optimizers"] = {"adam": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.01},
                         "sgd_huge": {"name": "sgd", "lr": 1e6}}
    job["grad_clip_norm"] = {}
    return job


def task_and_config(job: dict, **train_overrides) -> tuple[MLMPretrainTask, dict]:
    # the architecture as the entry point builds it: the job's position embeddings included
    task = MLMPretrainTask(load_mlm_data(job), bert_arch(job, job["model"]), seed=job["seed"])
    return task, {**train_config(job, job["optimizers"][job["optimizer"]], job["seed"]), **train_overrides}


def train_in_process(job: dict, out: Path, **train_overrides) -> dict:
    return run_training(*task_and_config(job, **train_overrides), out)


def comparable_rows(path: Path) -> list[dict]:
    # throughput is wall-clock; every other field must be bitwise equal
    return [{k: v for k, v in row.items() if k != "it_per_s"} for row in read_jsonl(path)]


def launch(job: dict, out: Path, *prefix: str) -> subprocess.Popen:
    cmd = [*prefix, "-m", "heavytail.train.pretrain", "--config", json.dumps(job), "--out", str(out)]
    if not prefix:
        cmd = [sys.executable, *cmd]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def interrupt_at(proc: subprocess.Popen, step: int, sig: int) -> str:
    """Read progress lines until `step` is logged, then send `sig`; returns the output."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step ") and int(line.split()[1].split("/")[0]) >= step:
            proc.send_signal(sig)
            break
    lines.extend(proc.stdout)
    proc.wait(timeout=120)
    return "".join(lines)


def test_schedule_known_values():
    assert schedule_factor(0, 100, 10) == pytest.approx(0.1)
    assert schedule_factor(9, 100, 10) == pytest.approx(1.0)
    assert schedule_factor(55, 100, 10) == pytest.approx(0.5)
    assert schedule_factor(55, 100, 10, final_fraction=0.2) == pytest.approx(0.6)
    assert schedule_factor(55, 100, 10, decay="cosine") == pytest.approx(0.5)
    assert schedule_factor(60, 100, 0, decay="step", milestones=(0.3, 0.6), gamma=0.1) == pytest.approx(0.01)
    assert schedule_factor(80, 100, 10, decay="constant") == 1.0


def test_killed_and_requeued_run_resumes_bitwise_equal(job, tmp_path):
    # dropout on: the resumed run must also restore the RNG streams, not only weights and optimizer state
    arch = {**job["models"]["bert_L1"], "dropout": 0.1}
    long_job = {**job, "models": {"bert_L1": arch},
                "train": {**job["train"], "steps": 400, "checkpoint_every": 7, "eval_every": 50}}
    reference = tmp_path / "reference"
    train_in_process(long_job, reference)
    rng = random.Random(os.getpid())
    out = tmp_path / "interrupted"
    # SIGTERM: checkpoint at once and exit with the requeue code
    term_step = rng.randrange(20, 150, 5)
    text = interrupt_at(launch(long_job, out), term_step, signal.SIGTERM)
    assert f"exiting {EXIT_REQUEUE}" in text, text
    assert read_json(out / "run.json")["status"] == "interrupted"
    # SIGKILL: no chance to save; the rerun resumes from the last periodic checkpoint
    proc = launch(long_job, out)
    text = interrupt_at(proc, rng.randrange(term_step + 50, 330, 5), signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and "resuming at step" in text, text
    finish = launch(long_job, out)
    text = finish.communicate(timeout=120)[0]
    assert finish.returncode == 0, text
    assert comparable_rows(out / "metrics.jsonl") == comparable_rows(reference / "metrics.jsonl")
    assert read_json(out / "run.json")["status"] == "ok"
    assert (out / "hf_model" / "config.json").is_file()


def test_huge_learning_rate_ends_as_diverged_with_exit_zero(job, tmp_path):
    from heavytail.train import pretrain

    out = tmp_path / "diverged"
    assert pretrain.main(["--config", json.dumps({**job, "optimizer": "sgd_huge"}), "--out", str(out)]) == 0
    run = read_json(out / "run.json")
    assert run["status"] == "diverged" and run["diverged_at_step"] >= 1
    last = read_jsonl(out / "metrics.jsonl")[-1]
    assert last["split"] == "status" and last["diverged_at_step"] == run["diverged_at_step"]
    # rerunning a finished (diverged) run is a no-op that reports the same outcome
    assert pretrain.main(["--config", json.dumps({**job, "optimizer": "sgd_huge"}), "--out", str(out)]) == 0
    assert read_json(out / "run.json")["diverged_at_step"] == run["diverged_at_step"]


def test_two_process_ddp_matches_single_process(job, tmp_path):
    single = tmp_path / "single"
    train_in_process(job, single)
    ddp = tmp_path / "ddp"
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2"]
    proc = launch(job, ddp, *torchrun)
    text = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, text
    assert "world size 2" in text
    one, two = comparable_rows(single / "metrics.jsonl"), comparable_rows(ddp / "metrics.jsonl")
    assert [r["split"] for r in one] == [r["split"] for r in two]
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "mlm_loss", "mlm_accuracy"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a, b)


def test_gradient_accumulation_matches_full_batch(job, tmp_path):
    full = train_in_process(job, tmp_path / "full", steps=10)
    accumulated = train_in_process(job, tmp_path / "accumulated", steps=10, micro_batch_size=4)
    assert accumulated["final_validation"]["mlm_loss"] == pytest.approx(full["final_validation"]["mlm_loss"],
                                                                        rel=1e-5)


def test_a_changed_config_starts_over_instead_of_resuming(job, tmp_path):
    out = tmp_path / "run"
    train_in_process(job, out, steps=12, checkpoint_every=5)
    (out / "result.json").unlink()
    changed = train_in_process(job, out, steps=12, checkpoint_every=5, seed=1)
    fresh = train_in_process(job, tmp_path / "fresh", steps=12, checkpoint_every=5, seed=1)
    assert (out / "stale-checkpoint.pt").is_file()
    assert changed["final_validation"] == fresh["final_validation"]


def test_a_finished_run_trains_again_when_its_data_or_architecture_change(job, tmp_path):
    """Snakemake reruns pretraining when its inputs change (e.g. a retrained tokenizer renumbers the ids); a
    finished run with the same recipe but other data or another architecture must not be reused."""
    out = tmp_path / "run"
    first = train_in_process(job, out, steps=6, checkpoint_every=3)
    assert train_in_process(job, out, steps=6, checkpoint_every=3) == first  # same inputs: reused as is
    moved = tmp_path / "mlm_other"
    shutil.copytree(job["mlm_data"], moved)
    meta = read_json(moved / "meta.json")
    meta["content_sha256"] = "0" * 16  # stands for data rebuilt with other token ids
    write_json(moved / "meta.json", meta)
    again = train_in_process({**job, "mlm_data": str(moved)}, out, steps=6, checkpoint_every=3)
    assert again["train_config"]["task"]["data"] != first["train_config"]["task"]["data"]
    assert (out / "stale-checkpoint.pt").is_file()  # trained from step 0, the old checkpoint kept aside
    wider = {**job, "models": {"bert_L1": {**job["models"]["bert_L1"], "hidden_size": 48}}}
    train_in_process(wider, out, steps=6, checkpoint_every=3)
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    words = next(key for key in state if key.endswith("embeddings.word_embeddings.weight"))  # bert. or roformer.
    assert state[words].shape[1] == 48


def test_bad_batch_split_names_the_key(job, tmp_path):
    with pytest.raises(ConfigError, match="micro_batch_size"):
        train_in_process(job, tmp_path / "bad", micro_batch_size=5)


def test_nsp_data_pairs_and_training_report_nsp_metrics(job, tmp_path):
    from heavytail.data.mlm import load_split

    root = Path(job["mlm_data"]).parent
    prepare_mlm_data(root / "corpus", root / "tokenizer", tmp_path / "nsp", max_seq_length=32, nsp=True)
    rows = load_split(tmp_path / "nsp", "train")
    labels = rows["next_sentence_label"]
    assert 0.3 < labels.mean() < 0.7  # about half of the B segments are random
    first = rows["input_ids"][0][rows["attention_mask"][0] == 1]
    types = rows["token_type_ids"][0][rows["attention_mask"][0] == 1]
    assert first[0] == 2 and first[-1] == 3 and (first == 3).sum() == 2  # [CLS] A [SEP] B [SEP]
    assert types[0] == 0 and types[-1] == 1
    nsp_job = {**job, "nsp": True, "mlm_data": str(tmp_path / "nsp")}
    data = load_mlm_data(nsp_job)
    task = MLMPretrainTask(data, bert_arch(job, "bert_L1"), nsp=True, export_hf=False)
    cfg = train_config(nsp_job, job["optimizers"]["adam"], 0, steps=4)
    result = run_training(task, cfg, tmp_path / "run")
    final = result["final_validation"]
    assert result["status"] == "ok" and 0 <= final["nsp_accuracy"] <= 1
    assert final["loss"] == pytest.approx(final["mlm_loss"] + final["nsp_loss"])


def loop_of(job: dict, out: Path, ctx, **train_overrides):
    """The engine's training loop of `job` on `ctx`, built as run_training builds it (seeded, checked config)."""
    from heavytail.train.checkpoint import seed_everything
    from heavytail.train.engine import check_train_config
    from heavytail.train.loop import TrainingLoop
    from heavytail.train.signals import StopRequest

    task, cfg = task_and_config(job, **train_overrides)
    check_train_config(cfg)
    seed_everything(int(cfg["seed"]))
    with StopRequest() as stop:
        return TrainingLoop(task, cfg, out, ctx, stop)


def test_a_run_on_a_gpu_restores_its_checkpoint_through_the_cpu(job, tmp_path, monkeypatch):
    """#16: restoring with map_location=<the run's device> put the RNG states on the GPU, and
    torch.set_rng_state raised TypeError, so every GPU resume crashed. The checkpoint is read onto the CPU
    whatever the device (here a CUDA run's, which this CPU cannot even map to); the state dicts move it."""
    from heavytail.train.distributed import DistContext

    out = tmp_path / "run"
    train_in_process(job, out, steps=6, checkpoint_every=3)
    loop = loop_of(job, out, DistContext(), steps=6, checkpoint_every=3)
    mapped = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: mapped.append(k.get("map_location")) or real_load(*a, **k))
    loop.ctx = DistContext(device=torch.device("cuda"))  # the device the run computes on
    assert loop.restore() and loop.step == 6
    assert mapped == ["cpu"]
    saved = real_load(out / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(v, saved["model"][k]) for k, v in loop.model.state_dict().items())


def test_every_rank_draws_its_own_dropout_masks_from_the_same_weights(job, tmp_path):
    """#16: every rank was seeded alike, so DDP's ranks dropped the same units. The weights start equal on every
    rank; the random stream that dropout draws from differs from rank 0's."""
    from heavytail.train.distributed import DistContext

    dropout_job = {**job, "models": {"bert_L1": {**job["models"]["bert_L1"], "dropout": 0.1}}}
    draws, weights = [], []
    for rank in (0, 1, 0):
        loop = loop_of(dropout_job, tmp_path / f"rank{rank}", DistContext(rank=rank), steps=2)
        weights.append(loop.model.state_dict())
        draws.append(torch.rand(8))
    assert all(torch.equal(w, weights[1][k]) for k, w in weights[0].items())
    assert torch.equal(draws[0], draws[2]) and not torch.equal(draws[0], draws[1])


class TouchesAFile:
    """An object that runs code when unpickled: what a checkpoint left in a shared folder could hold."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_that_would_run_code_is_set_aside_unopened(job, tmp_path):
    """#16: checkpoints were unpickled (weights_only=False). They are read as tensors and plain values only; one
    that holds anything else is moved aside and the run starts over, its code never run."""
    from heavytail.train.checkpoint import load_checkpoint

    out, marker = tmp_path / "run", tmp_path / "code-ran"
    out.mkdir()
    torch.save({"format_version": 1, "step": 2, "rng": TouchesAFile(marker)}, out / "checkpoint.pt")
    with pytest.raises(ConfigError, match="holds more than tensors and plain values"):
        load_checkpoint(out / "checkpoint.pt")
    result = train_in_process(job, out, steps=4, checkpoint_every=2)
    assert not marker.exists() and (out / "stale-checkpoint.pt").is_file()
    assert result["status"] == "ok" and result["steps_completed"] == 4


def test_a_grid_point_drops_its_checkpoint_once_finished_and_a_rerun_is_still_a_no_op(job, tmp_path):
    """Tuning and sweep points run with keep_checkpoint=False: only their metrics are read, and a grid of
    finished points must not keep every point's weights and optimizer state on disk."""
    kept = train_in_process(job, tmp_path / "kept", steps=8, checkpoint_every=4)
    point = tmp_path / "point"
    finished = run_training(*task_and_config(job, steps=8, checkpoint_every=4), point, keep_checkpoint=False)
    assert (tmp_path / "kept" / "checkpoint.pt").is_file() and not (point / "checkpoint.pt").exists()
    assert finished["final_validation"] == kept["final_validation"]
    assert comparable_rows(point / "metrics.jsonl") == comparable_rows(tmp_path / "kept" / "metrics.jsonl")
    # rerunning the finished point returns its result without a checkpoint to resume from
    assert run_training(*task_and_config(job, steps=8, checkpoint_every=4), point, keep_checkpoint=False) == finished
