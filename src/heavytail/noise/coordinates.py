"""Per-coordinate noise of whole minibatches (Fig 6c): sampled coordinates of e_B = g_B - grad f, one row per minibatch.

The paper's Fig 6c is the histogram of the d coordinates of one minibatch's noise vector at initialisation
("fix a single minibatch and plot the noise in each dimension", Appendix H). The sampler records, for each of
its first minibatches, the coordinates of e_B at a fixed random index set, as it folds each gradient away
(no gradient is stored), in its own mode (by default training mode: dropout on, batch statistics).

Coordinate sets, each a uniform sample without replacement of up to `per_set` flat coordinates:
  * "all": uniform over every trainable coordinate of the model, so the histogram of a row estimates the
    distribution of all d coordinates of that minibatch's noise vector, as in the paper;
  * one per parameter group (uniform within the group), for per-group statistics.
The sampler records the union; `CoordinateSample.split` cuts the recorded columns back into the sets.

Tail index (`coordinate_tail_indices`): Simsekli et al.'s per-coordinate use of the estimator, where every
coordinate value is one scalar sample. Within one minibatch the sampled coordinates are i.i.d. draws from that
vector's coordinate distribution, so each row gets its own point estimate (spread over minibatches reported);
the pooled estimate shuffles the values of every recorded minibatch together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heavytail.noise.tail_estimators import TailIndexEstimate, tail_index, tail_index_per_coordinate

ALL = "all"
MIN_COORDINATES = 64  # fewer non-zero values than this give no tail index


@dataclass
class CoordinateSample:
    """index[name]: sorted flat indices recorded in parameter `name`; sets[s][name]: columns of set s there."""

    index: dict[str, np.ndarray]
    sets: dict[str, dict[str, np.ndarray]]

    def split(self, recorded: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Recorded (rows, k_name) arrays per parameter -> (rows, k_set) arrays per coordinate set."""
        return {s: np.concatenate([recorded[name][:, cols] for name, cols in members.items()], axis=1)
                for s, members in self.sets.items()}


def sample_coordinates(sizes: dict[str, int], groups: dict[str, str], per_set: int, seed: int = 0) -> CoordinateSample:
    """Uniform coordinate samples of `per_set` per set ("all" and each group) over parameters of `sizes` elements."""
    rng = np.random.default_rng(seed)
    names = list(sizes)
    members = {ALL: names}
    for name in names:
        members.setdefault(groups[name], []).append(name)
    chosen: dict[str, dict[str, np.ndarray]] = {}
    for s, group_names in members.items():
        counts = np.array([sizes[n] for n in group_names])
        offsets = np.concatenate([[0], np.cumsum(counts)])
        picks = np.sort(rng.choice(offsets[-1], size=min(per_set, int(offsets[-1])), replace=False))
        chosen[s] = {}
        for j, name in enumerate(group_names):
            local = picks[(picks >= offsets[j]) & (picks < offsets[j + 1])] - offsets[j]
            if len(local):
                chosen[s][name] = local
    index = {name: np.unique(np.concatenate([c[name] for c in chosen.values() if name in c]))
             for name in names if any(name in c for c in chosen.values())}
    sets = {s: {name: np.searchsorted(index[name], local) for name, local in c.items()} for s, c in chosen.items()}
    return CoordinateSample(index, dict(sorted(sets.items(), key=lambda kv: (kv[0] != ALL, kv[0]))))


def coordinate_tail_indices(sets: dict[str, np.ndarray], n_boot: int = 200, level: float = 0.9, seed: int = 0,
                            max_samples: int | None = 100_000) -> dict[str, dict | None]:
    """Per set: pooled estimate with interval, the first minibatch's estimate, the spread over minibatches."""
    out: dict[str, dict | None] = {}
    for s, rows in sets.items():
        pooled = rows.reshape(-1)
        pooled = pooled[pooled != 0]  # coordinates no example touched: structural, not draws of the noise law
        if len(pooled) < MIN_COORDINATES:
            out[s] = None
            continue
        est = tail_index_per_coordinate(pooled, n_boot=n_boot, level=level, seed=seed, max_samples=max_samples)
        per_row = np.array([_row_alpha(r, seed) for r in rows])
        finite = per_row[np.isfinite(per_row)]
        centred = pooled - pooled.mean()
        out[s] = {**_finite_estimate(est), "n": int(len(pooled)), "n_minibatches": int(len(rows)),
                  "first_minibatch": _finite(per_row[0]),
                  "minibatch_median": _finite(np.median(finite)) if len(finite) else None,
                  "minibatch_q05": _finite(np.quantile(finite, 0.05)) if len(finite) else None,
                  "minibatch_q95": _finite(np.quantile(finite, 0.95)) if len(finite) else None,
                  "excess_kurtosis": float((centred ** 4).mean() / (centred ** 2).mean() ** 2 - 3)}
    return out


def _row_alpha(row: np.ndarray, seed: int) -> float:
    values = row[row != 0]
    if len(values) < MIN_COORDINATES:
        return float("nan")
    # coordinates are recorded in layer order; a seeded shuffle makes the blocks i.i.d. draws
    return tail_index(values[np.random.default_rng(seed).permutation(len(values))])


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _finite_estimate(est: TailIndexEstimate) -> dict:
    return {"alpha": _finite(est.alpha), "lo": _finite(est.lo), "hi": _finite(est.hi)}
