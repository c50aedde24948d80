"""Frequency groups of classes (tokens, image classes) by their training counts, and the names of their statistics.

Kunstner et al. (2024) sort the classes by training frequency and split them into groups of about equal training
mass, so that each group's loss is estimated from about the same number of examples: the most frequent group may
hold a handful of tokens, the rarest thousands. A training run logs, per group g, the summed loss and the number
of its examples as `group_nll_<g>` and `group_count_<g>` (their ratio over any interval is the group's mean
loss), and each validation pass the group's mean loss as `group_loss_<g>`.
"""

from __future__ import annotations

import numpy as np

NLL_KEY = "group_nll_{:02d}"
COUNT_KEY = "group_count_{:02d}"
MEAN_KEY = "group_loss_{:02d}"


def frequency_groups(counts, n_groups: int) -> np.ndarray:
    """Group id of every class (0 = most frequent): the group in which the midpoint of its share of the sorted
    training mass lies, out of `n_groups` equal shares. Classes never seen go to the rarest group; a class holding
    more than 1/n_groups of the mass leaves shares empty, and empty groups are dropped (ids stay consecutive)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or not len(counts) or (counts < 0).any():
        raise ValueError("frequency_groups: counts must be a non-empty 1-D array of non-negative numbers")
    if n_groups < 1:
        raise ValueError(f"frequency_groups: n_groups must be >= 1 (got {n_groups})")
    total = counts.sum()
    order = np.argsort(-counts, kind="stable")  # ties keep the classes' own order
    if total <= 0:
        return np.zeros(len(counts), dtype=np.int64)
    sorted_counts = counts[order]
    midpoints = (np.cumsum(sorted_counts) - sorted_counts / 2) / total
    shares = np.minimum(np.floor(midpoints * n_groups).astype(np.int64), n_groups - 1)
    shares[sorted_counts == 0] = n_groups - 1
    _, consecutive = np.unique(shares, return_inverse=True)  # shares ascend along `order`: ids stay in order
    groups = np.empty(len(counts), dtype=np.int64)
    groups[order] = consecutive
    return groups


def group_table(counts, groups) -> list[dict]:
    """Per group: how many classes, their share of the training examples, and the count range."""
    counts = np.asarray(counts, dtype=np.float64)
    groups = np.asarray(groups)
    total = counts.sum() or 1.0
    rows = []
    for g in range(int(groups.max()) + 1):
        member = counts[groups == g]
        rows.append({"group": g, "classes": int(len(member)), "share": float(member.sum() / total),
                     "min_count": float(member.min()) if len(member) else 0.0,
                     "max_count": float(member.max()) if len(member) else 0.0})
    return rows


def stat_keys(n_groups: int) -> list[tuple[str, str]]:
    """(loss-sum key, count key) of every group, as a training run logs them."""
    return [(NLL_KEY.format(g), COUNT_KEY.format(g)) for g in range(n_groups)]


def groups_in(row: dict) -> int:
    """How many groups a metrics row carries (0 when it logged none)."""
    n = 0
    while COUNT_KEY.format(n) in row:
        n += 1
    return n


def group_losses(row: dict) -> dict[int, float]:
    """Each group's mean loss in one metrics row: a training row's sums over counts (NaN for a group without
    examples in the interval), or a validation row's means."""
    if MEAN_KEY.format(0) in row:
        out, g = {}, 0
        while MEAN_KEY.format(g) in row:
            out[g] = float(row[MEAN_KEY.format(g)])
            g += 1
        return out
    out = {}
    for g, (nll, count) in enumerate(stat_keys(groups_in(row))):
        out[g] = float(row[nll]) / float(row[count]) if float(row[count]) > 0 else float("nan")
    return out


def token_counts(mlm_data_dir) -> np.ndarray:
    """Training counts of every token of packed MLM data, special tokens at 0 (they are never predicted)."""
    from pathlib import Path

    from heavytail.io import read_json

    data = Path(mlm_data_dir)
    counts = np.load(data / "unigram_counts.npy").astype(np.float64)
    special = [i for i in read_json(data / "meta.json").get("special_ids", []) if i < len(counts)]
    counts[special] = 0.0
    return counts
