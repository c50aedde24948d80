"""The later explanations' training side: frequency groups, per-group statistics that leave training unchanged,
the batch-size sweep's task, the linear softmax model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_train import job  # noqa: F401  (the module's MLM data fixture)

from heavytail.data.frequency import frequency_groups, group_losses, group_table, stat_keys
from heavytail.io import read_jsonl
from heavytail.train.engine import run_training
from heavytail.train.group_loss import GroupLoss
from heavytail.train.mlm_task import MLMPretrainTask, load_mlm_data, train_config

torch.set_num_threads(1)


# --- frequency groups on synthetic counts with known groups ---------------------------------------------------
def test_equal_mass_groups_of_known_counts_in_any_class_order():
    # 5 shares of 20 %: each class's mass midpoint (11, 31, 45.5, 56, 65.5, 74, 81.5, 88, 93.5, 98 %) names its group
    counts = np.array([22, 18, 11, 10, 9, 8, 7, 6, 5, 4])
    expected = np.array([0, 1, 2, 2, 3, 3, 4, 4, 4, 4])
    order = np.random.default_rng(0).permutation(len(counts))
    np.testing.assert_array_equal(frequency_groups(counts[order], 5), expected[order])
    assert [r["share"] for r in group_table(counts, expected)] == pytest.approx([0.22, 0.18, 0.21, 0.17, 0.22])
    assert [r["classes"] for r in group_table(counts, expected)] == [1, 1, 2, 2, 4]


def test_balanced_classes_each_form_their_own_group():
    np.testing.assert_array_equal(frequency_groups([1000] * 10, 10), np.arange(10))


def test_a_heavy_class_leaves_shares_empty_and_ids_stay_consecutive():
    # 60 % in one class: its midpoint (30 %) lies in share 1 of 5; shares 0 and 2 stay empty and are dropped
    np.testing.assert_array_equal(frequency_groups([60, 10, 10, 10, 10], 5), [0, 1, 1, 2, 2])


def test_unseen_classes_join_the_rarest_group():
    groups = frequency_groups([50, 0, 30, 20, 0], 3)
    assert groups[1] == groups[4] == groups.max()
    assert groups[0] == 0
    with pytest.raises(ValueError, match="non-negative"):
        frequency_groups([1, -1], 2)


def test_group_loss_sums_and_counts_match_brute_force():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 4, size=50)
    stats = GroupLoss(groups)
    losses, labels = torch.rand(6, 5), torch.as_tensor(rng.integers(0, 50, size=(6, 5)))
    weights = torch.ones(6, 5)
    weights[0, 3:] = 0  # padding never counts
    out = stats.stats(losses, labels, weights)
    for g, (nll_key, count_key) in enumerate(stat_keys(4)):
        member = torch.as_tensor(groups)[labels] == g
        assert float(out[nll_key]) == pytest.approx(float((losses * weights)[member].sum()), rel=1e-6)
        assert float(out[count_key]) == float(weights[member].sum())
    row = {k: float(v) for k, v in out.items()}
    means = group_losses(row)
    assert set(means) == {0, 1, 2, 3}


# --- the statistics leave training unchanged --------------------------------------------------------------------
def _train(job, out, groups):  # noqa: F811
    data = load_mlm_data(job)
    task = MLMPretrainTask(data, job["models"][job["model"]], seed=0, frequency_groups=groups)
    cfg = train_config({**job, "frequency_groups": groups}, job["optimizers"]["adam"], 0)
    cfg.update(steps=12, log_every=1, eval_every=6, checkpoint_every=12)
    run_training(task, cfg, out)
    return read_jsonl(out / "metrics.jsonl"), task


def test_group_statistics_change_no_number_of_the_run(job, tmp_path):  # noqa: F811
    plain, _ = _train(job, tmp_path / "plain", None)
    grouped, task = _train(job, tmp_path / "grouped", 4)
    assert len(plain) == len(grouped)
    for a, b in zip(plain, grouped, strict=True):
        shared = {k: v for k, v in a.items() if k != "it_per_s"}
        assert shared == {k: b[k] for k in shared}, "the step's numbers must be bitwise unchanged"
    for row in grouped:
        if row["split"] == "train":  # log_every 1: one step a row, so the groups' token-weighted mean is the loss
            nll = sum(row[k] for k, _ in stat_keys(4))
            count = sum(row[k] for _, k in stat_keys(4))
            assert nll / count == pytest.approx(row["mlm_loss"], rel=1e-5)
        if row["split"] == "validation":
            labels = task.data.validation["masked_labels"][task.data.validation["masked_weights"] > 0]
            member = task.group_loss.groups.numpy()[labels]
            counts = np.bincount(member, minlength=4)
            mean = sum(row[f"group_loss_{g:02d}"] * counts[g] for g in range(4) if counts[g]) / counts.sum()
            assert mean == pytest.approx(row["mlm_loss"], rel=1e-5)


def test_vision_task_logs_class_groups_without_changing_its_loss():
    from heavytail.train.classify import ClassificationTask

    model = torch.nn.Linear(3, 4)
    images, labels = torch.randn(8, 3), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    plain = ClassificationTask({}, 0, None, None)
    grouped = ClassificationTask({}, 0, None, None, class_groups=np.array([0, 0, 1, 1]))
    loss_plain, _ = plain.loss(model, (images, labels))
    loss_grouped, stats = grouped.loss(model, (images, labels))
    assert torch.equal(loss_plain, loss_grouped)
    per_image = F.cross_entropy(model(images).detach(), labels, reduction="none")
    assert float(stats["group_nll_00"]) == pytest.approx(float(per_image[labels < 2].sum()), rel=1e-6)
    assert float(stats["group_count_01"]) == 4


# --- the sweep's task: a fixed subset, whole epochs, the full batch ---------------------------------------------
def test_sweep_batches_visit_the_subset_once_an_epoch_and_the_full_batch_every_step(job):  # noqa: F811
    from heavytail.train.batch_sweep import SubsetMLMTask, fixed_subset, micro_batch

    data = load_mlm_data(job)
    subset = fixed_subset(data, 16)
    task = SubsetMLMTask(data, job["models"]["bert_L1"], subset, seed=3)
    batches = task.train_batches(0, 4, 0, 1)
    epoch = [next(batches)["input_ids"] for _ in range(4)]
    rows = {tuple(r.tolist()) for b in epoch for r in b}
    assert rows == {tuple(r) for r in subset["input_ids"].tolist()}  # one epoch = the subset, each row once
    full = task.train_batches(0, 16, 0, 1)
    first, second = next(full), next(full)
    assert sorted(map(tuple, first["input_ids"].tolist())) == sorted(map(tuple, second["input_ids"].tolist()))
    halves = [next(task.train_batches(5, 8, rank, 2))["input_ids"] for rank in (0, 1)]
    assert torch.equal(torch.cat(halves), next(task.train_batches(5, 8, 0, 1))["input_ids"])
    assert micro_batch(None, 64) is None and micro_batch(256, 64) is None and micro_batch(24, 64) == 16


# --- the linear softmax model ---------------------------------------------------------------------------------
def test_linear_softmax_starts_at_log_v_and_trains_only_its_decoder():
    from heavytail.train.linear_softmax import OFFSETS, LinearSoftmax

    vocab, dim = 30, 8
    model = LinearSoftmax(vocab, dim)
    ids = torch.randint(0, vocab, (4, 10))
    positions, labels = torch.tensor([[0, 3], [5, 9], [2, 2], [7, 1]]), torch.randint(0, vocab, (4, 2))
    out = model(input_ids=ids, masked_positions=positions, masked_labels=labels)
    assert float(out["loss"]) == pytest.approx(math.log(vocab))  # a zero decoder: every token at 1 / V
    assert [n for n, p in model.named_parameters()] == ["decoder.weight", "decoder.bias"]
    features = model.features(ids, positions)
    assert features.shape == (4, 2, len(OFFSETS) * dim)
    assert torch.allclose(features.norm(dim=-1), torch.ones(4, 2))  # unit-norm: scale-free step sizes
    # the features are the frozen embeddings at the neighbours, clamped at the sequence's ends
    assert torch.equal(features[1, 1, 2 * dim:], model.embedding[ids[1, 9]])
    assert torch.equal(features[0, 0, :dim], model.embedding[ids[0, 0]])
    assert torch.equal(LinearSoftmax(vocab, dim).embedding, model.embedding)  # the same features for every run
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        loss = model(input_ids=ids, masked_positions=positions, masked_labels=labels)["loss"]
        loss.backward()
        optimizer.step()
    assert float(loss) < math.log(vocab) - 1.0
