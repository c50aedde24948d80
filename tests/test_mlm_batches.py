"""Training batches as a pure function of (seed, step, rank): each rank masks only its rows, as one process would."""

from __future__ import annotations

import numpy as np

from heavytail.data.mlm import MaskingSpec, MLMBatches

SPEC = MaskingSpec(vocab_size=100, mask_id=4, special_ids=(0, 1, 2, 3, 4), mask_probability=0.15, max_predictions=6)


def packed_split(rows: int = 64, length: int = 24) -> dict:
    ids = np.random.default_rng(0).integers(5, 100, size=(rows, length))
    ids[:, 0], ids[:, -1] = 2, 3
    ids[::7, length // 2:] = 0  # some padded rows: fewer maskable tokens, fewer predictions
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


def test_ranks_together_build_exactly_the_single_process_batch():
    batches = MLMBatches(packed_split(), SPEC, seed=5)
    for step in (0, 3, 11):  # 11 crosses into the second epoch
        whole = batches.batch(step, 16)
        for world in (2, 4):
            parts = [batches.batch(step, 16, rank, world) for rank in range(world)]
            for key in ("input_ids", "masked_labels", "attention_mask"):
                np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])
            for part, rows in zip(parts, np.split(np.arange(16), world), strict=True):
                # the prediction slots may be padded to another width; the predictions themselves agree
                width = part["masked_positions"].shape[1]
                np.testing.assert_array_equal(part["masked_positions"], whole["masked_positions"][rows, :width])
                assert (whole["masked_weights"][rows, width:] == 0).all()


def test_batches_differ_by_step_and_seed_and_repeat_exactly():
    a, b = MLMBatches(packed_split(), SPEC, seed=5), MLMBatches(packed_split(), SPEC, seed=6)
    assert np.array_equal(a.batch(2, 8)["input_ids"], MLMBatches(packed_split(), SPEC, seed=5).batch(2, 8)["input_ids"])
    assert not np.array_equal(a.batch(2, 8)["masked_positions"], a.batch(3, 8)["masked_positions"])
    assert not np.array_equal(a.batch(2, 8)["input_ids"], b.batch(2, 8)["input_ids"])
    masked = a.batch(0, 64)
    share = masked["masked_weights"].sum() / (packed_split()["input_ids"] > 4).sum()
    assert 0.1 < share < 0.2  # about mask_probability of the maskable tokens are predicted
