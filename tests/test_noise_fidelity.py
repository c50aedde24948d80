"""Fig 6c and Fig 7 compute the paper's quantities: checked against brute force on a tiny MLP, and the Gaussian level."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from heavytail.noise.core import measure_noise, summarise
from heavytail.noise.reference import effective_dimension, gaussian_block_sum_reference
from heavytail.noise.tail_estimators import tail_index_of_block_sums

torch.set_num_threads(1)
N_BATCHES, BATCH = 12, 8


def _mlp() -> nn.Module:
    """Two linear layers with batch norm between: its gradient depends on train vs eval mode."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Tanh(), nn.Linear(7, 3)).double()


def _loss(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N_BATCHES * BATCH, 5, generator=g, dtype=torch.float64) * 2 + 1
    y = torch.randint(0, 3, (N_BATCHES * BATCH,), generator=g)
    return [(x[i: i + BATCH], y[i: i + BATCH]) for i in range(0, len(x), BATCH)]


def _flat_gradients(model: nn.Module, batches, train: bool) -> tuple[torch.Tensor, list[str], list[int]]:
    """Every minibatch's gradient as a row, on a copy of the model in train (batch statistics) or eval mode."""
    clone = copy.deepcopy(model).train(train)
    names = [n for n, _ in clone.named_parameters()]
    rows = []
    for batch in batches:
        grads = torch.autograd.grad(_loss(clone, batch), list(clone.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows), names, [p.numel() for p in clone.parameters()]


def _simsekli_alpha(noise: np.ndarray, m: int) -> float:
    """Simsekli et al.'s alpha_estimator(m, X) on an N x d matrix, written out plainly."""
    n = len(noise) // m
    y = noise[: n * m].reshape(n, m, -1).sum(axis=1)
    diff = (np.log(np.linalg.norm(y, axis=1)).mean() - np.log(np.linalg.norm(noise, axis=1)).mean()) / math.log(m)
    return 1.0 / diff


@pytest.fixture(scope="module")
def measured():
    model, batches = _mlp(), _batches()
    groups = {"0.weight": "first", "0.bias": "first", "1.weight": "norm", "1.bias": "norm",
              "3.weight": "second", "3.bias": "second"}
    # n_mean = every minibatch of the partition: grad f is exact, the mean of all minibatch gradients; pass 2
    # then cycles through the same 12 minibatches twice
    result = measure_noise(model, _loss, batches, n_mean=N_BATCHES, n_samples=2 * N_BATCHES, groups=groups,
                           coordinates_per_set=6, coordinate_minibatches=2 * N_BATCHES, n_boot=20)
    return model, batches, groups, result


def _expected_columns(result, full_noise: torch.Tensor, names: list[str], sizes: list[int], coordinate_set: str):
    offsets = dict(zip(names, np.concatenate([[0], np.cumsum(sizes)[:-1]]), strict=True))
    sample = result.coordinate_sample
    flat = [offsets[name] + sample.index[name][cols] for name, cols in sample.sets[coordinate_set].items()]
    return full_noise[:, np.concatenate(flat)].numpy()


def test_fig6c_is_the_coordinates_of_each_minibatch_noise_vector_in_train_mode(measured):
    model, batches, _, result = measured
    train, names, sizes = _flat_gradients(model, batches, train=True)
    noise = train - train.mean(dim=0)  # g_B - grad f for every minibatch B of the partition
    stream = noise[[i % N_BATCHES for i in range(2 * N_BATCHES)]]
    assert set(result.coordinates) == {"all", "first", "norm", "second"}
    for coordinate_set, got in result.coordinates.items():
        assert got.shape == (2 * N_BATCHES, min(6, {"all": 73, "first": 42, "norm": 14, "second": 24}[coordinate_set]))
        np.testing.assert_allclose(got, _expected_columns(result, stream, names, sizes, coordinate_set), rtol=1e-9,
                                   atol=1e-12)
    # "all" is one uniform sample over the whole vector, not a mixture of per-group samples
    assert sum(len(c) for c in result.coordinate_sample.sets["all"].values()) == 6
    # eval mode (running statistics instead of batch statistics) gives a different quantity: the test can fail
    evaluated, _, _ = _flat_gradients(model, batches, train=False)
    eval_noise = (evaluated - evaluated.mean(dim=0))[[i % N_BATCHES for i in range(2 * N_BATCHES)]]
    assert not np.allclose(result.coordinates["all"], _expected_columns(result, eval_noise, names, sizes, "all"))


def test_fig7_block_sum_estimate_is_simsekli_estimator_on_the_noise_matrix(measured):
    model, batches, groups, result = measured
    train, names, sizes = _flat_gradients(model, batches, train=True)
    stream = (train - train.mean(dim=0))[[i % N_BATCHES for i in range(2 * N_BATCHES)]].numpy()
    k1 = result.norms.block_size
    assert k1 == 4  # floor(sqrt(24))
    assert result.tail_index_block_sums["all"].alpha == pytest.approx(_simsekli_alpha(stream, k1), rel=1e-9)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for group in ("first", "norm", "second"):
        cols = np.concatenate([np.arange(bounds[j], bounds[j + 1]) for j, n in enumerate(names) if groups[n] == group])
        assert result.tail_index_block_sums[group].alpha == pytest.approx(_simsekli_alpha(stream[:, cols], k1),
                                                                         rel=1e-9)
    summary = summarise(result)
    assert summary["overall"]["dim"] == sum(sizes)
    reference = summary["overall"]["tail_index_block_sums_gaussian"]
    assert reference["lo"] <= reference["alpha"] <= reference["hi"]


def _direct_gaussian_alphas(n: int, k1: int, n_mean: int | None, dim: int, reps: int, seed: int) -> np.ndarray:
    """The sampler on Gaussian gradients, by brute force: xi_i ~ N(0, I), grad f the mean of n_mean others."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        delta = 0.0 if n_mean is None else rng.standard_normal((n_mean, dim)).mean(axis=0)
        e = rng.standard_normal((n, dim)) - delta
        block_norms = np.linalg.norm(e[: n // k1 * k1].reshape(n // k1, k1, dim).sum(axis=1), axis=1)
        out.append(tail_index_of_block_sums(np.linalg.norm(e, axis=1), block_norms, k1, n_boot=2).alpha)
    return np.array(out)


@pytest.mark.parametrize(("n_mean", "dim"), [(10, 40), (None, 40), (10, 5)], ids=["bartlett", "exact_mean", "small_d"])
def test_gaussian_block_sum_reference_matches_brute_force(n_mean, dim):
    simulated = gaussian_block_sum_reference(64, 8, n_mean, dim, replicates=600, seed=3)
    direct = _direct_gaussian_alphas(64, 8, n_mean, dim, reps=600, seed=4)
    assert stats.ks_2samp(simulated, direct).pvalue > 0.01
    assert np.median(simulated) == pytest.approx(np.median(direct), abs=0.03)


def test_gaussian_block_sum_reference_sits_where_the_mean_error_puts_it():
    # high dimension: norms concentrate, so 1 / alpha = 1/2 + log((1 + K1/n_mean) / (1 + 1/n_mean)) / (2 log K1)
    k1, n_mean = 16, 16
    level = 1 / (0.5 + math.log((1 + k1 / n_mean) / (1 + 1 / n_mean)) / (2 * math.log(k1)))
    alphas = gaussian_block_sum_reference(k1 * 64, k1, n_mean, 1_000_000, replicates=50)
    assert np.median(alphas) == pytest.approx(level, abs=0.01) and level < 1.65
    exact = gaussian_block_sum_reference(k1 * 64, k1, None, 1_000_000, replicates=50)
    assert np.median(exact) == pytest.approx(2.0, abs=0.01)


def test_effective_dimension_reads_chi_square_degrees_and_ignores_a_heavy_tail():
    rng = np.random.default_rng(5)
    for k in (1, 4, 40, 1000):
        assert effective_dimension(np.sqrt(rng.chisquare(k, 4000))) == pytest.approx(k, rel=0.25)
    squared = rng.chisquare(40, 4000)
    squared[:100] *= 1e4  # 2.5 % of huge samples: the variance-based (tr S)^2 / tr S^2 collapses to ~1
    assert 2 * squared.mean() ** 2 / squared.var() < 2
    assert effective_dimension(np.sqrt(squared)) == pytest.approx(40, rel=0.3)


def test_anisotropic_gaussian_noise_reads_inside_its_reference_interval():
    """The reference as the pipeline uses it: Gaussian noise of any spectrum lands in its 90 % interval."""
    rng = np.random.default_rng(6)
    n, k1, n_mean, dim = 256, 16, 40, 2000
    scale = np.arange(1, dim + 1) ** -0.75  # eigenvalues k^-1.5: effective dimension ~5.5 of 2000
    inside = 0
    for _ in range(40):
        delta = (rng.standard_normal((n_mean, dim)) * scale).mean(axis=0)
        e = rng.standard_normal((n, dim)) * scale - delta
        norms = np.linalg.norm(e, axis=1)
        alpha = tail_index_of_block_sums(norms, np.linalg.norm(e.reshape(16, k1, dim).sum(axis=1), axis=1), k1,
                                         n_boot=2).alpha
        reference = gaussian_block_sum_reference(n, k1, n_mean, round(effective_dimension(norms)), replicates=200)
        lo, hi = np.quantile(reference, [0.05, 0.95])
        inside += lo <= alpha <= hi
    # in all 2000 dimensions the interval is [1.789, 1.807] and holds 2 of these 40 (measured; here 37)
    assert inside >= 32
