"""BERT's two sequence phases: the last steps train on longer sequences, so fine-tuning's positions are trained."""

from __future__ import annotations

import pytest
import torch
from test_train import comparable_rows, write_corpus_and_tokenizer

from heavytail.data.mlm import prepare_mlm_data
from heavytail.io import read_jsonl
from heavytail.train.engine import run_training
from heavytail.train.mlm_task import MLMPretrainTask, bert_arch, load_mlm_data, long_phase_of, train_config


@pytest.fixture(scope="module")
def two_phase_job(tmp_path_factory) -> dict:
    from conftest import tiny_job

    root = tmp_path_factory.mktemp("phases")
    write_corpus_and_tokenizer(root)
    prepare_mlm_data(root / "corpus", root / "tokenizer", root / "mlm16", max_seq_length=16)
    prepare_mlm_data(root / "corpus", root / "tokenizer", root / "mlm48", max_seq_length=48)
    job = tiny_job("pretrain", {
        "max_seq_length": 16, "max_predictions_per_seq": 3, "validation_sequences": 16,
        "long_phase": {"fraction": 0.25, "max_seq_length": 48, "max_predictions_per_seq": 8},
        "train": {"steps": 12, "batch_size": 8, "log_every": 2, "eval_every": 6, "checkpoint_every": 3}},
        mlm_data=str(root / "mlm16"), long_mlm_data=str(root / "mlm48"), model="bert_L1", optimizer="adam", seed=0)
    job["models"] = {"bert_L1": {"num_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                                 "intermediate_size": 64, "dropout": 0.0, "initializer_range": 0.02}}
    job["position_embedding"] = "absolute"
    job["optimizers"] = {"adam": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.01}}
    return job


def task_of(job: dict, steps: int) -> MLMPretrainTask:
    return MLMPretrainTask(load_mlm_data(job), bert_arch(job, job["model"]), seed=0,
                           long_phase=long_phase_of(job, steps))


def test_the_last_quarter_of_the_steps_reads_the_long_sequences(two_phase_job):
    task = task_of(two_phase_job, 12)
    assert task.long_phase[0] == 9  # 12 - round(0.25 x 12)
    lengths = [batch["input_ids"].shape[1] for _, batch in zip(range(12), task.train_batches(0, 8, 0, 1),
                                                                strict=False)]
    assert lengths == [16] * 9 + [48] * 3
    # a stream started inside the long phase (a resumed run) continues the same batches
    from_start = [b["input_ids"] for _, b in zip(range(12), task.train_batches(0, 8, 0, 1), strict=False)]
    assert torch.equal(next(task.train_batches(10, 8, 0, 1))["input_ids"], from_start[10])
    model = task.build_model()
    assert model.config.max_position_embeddings >= 48  # the long phase's positions exist from the start


def test_a_two_phase_run_evaluates_both_lengths_and_resumes_across_the_switch(two_phase_job, tmp_path):
    cfg = train_config(two_phase_job, two_phase_job["optimizers"]["adam"], 0)
    whole = run_training(task_of(two_phase_job, 12), cfg, tmp_path / "whole")
    final = whole["final_validation"]
    assert {"mlm_loss", "mlm_loss_long", "mlm_accuracy_long"} <= set(final)
    # a run killed before the switch resumes from its checkpoint into the long phase
    crashed = tmp_path / "killed"

    class StopAt:
        def __init__(self, task, stop):
            self.task, self.stop = task, stop

        def __getattr__(self, name):
            return getattr(self.task, name)

        def train_batches(self, start, batch_size, rank, world):
            for step, batch in enumerate(self.task.train_batches(start, batch_size, rank, world), start):
                if step == self.stop:
                    raise KeyboardInterrupt("killed")
                yield batch

    with pytest.raises(KeyboardInterrupt):
        run_training(StopAt(task_of(two_phase_job, 12), 7), cfg, crashed)
    resumed = run_training(task_of(two_phase_job, 12), cfg, crashed)
    assert comparable_rows(crashed / "metrics.jsonl") == comparable_rows(tmp_path / "whole" / "metrics.jsonl")
    assert resumed["final_validation"] == final
    assert [r["step"] for r in read_jsonl(crashed / "metrics.jsonl") if r["split"] == "validation"] == [0, 6, 12]
