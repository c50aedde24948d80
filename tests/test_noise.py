"""Known-answer tests for the gradient-noise toolkit (heavytail.noise)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from heavytail.errors import ConfigError
from heavytail.noise.core import measure_noise, save_noise_result
from heavytail.noise.groups import classify_parameters
from heavytail.noise.memory import parameter_bytes, peak_extra_bytes
from heavytail.noise.reference import gaussian_reference_norms, stable_reference_norms, symmetric_stable
from heavytail.noise.sampler import sample_noise_norms
from heavytail.noise.tail_estimators import (
    recommend_sample_count,
    tail_index,
    tail_index_interval,
    tail_index_of_block_sums,
    tail_index_of_norms,
    tail_index_per_coordinate,
)
from heavytail.noise.variance import StreamingVariance, relative_range, variance_curve

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


# ---------------------------------------------------------------- tail index and reference distributions
@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8])
def test_tail_index_recovers_stable_alpha(alpha):
    assert tail_index(symmetric_stable(alpha, 100_000, seed=11)) == pytest.approx(alpha, abs=0.15)


def test_tail_index_of_gaussian_is_two():
    assert tail_index(np.random.default_rng(3).standard_normal(100_000)) == pytest.approx(2.0, abs=0.1)


def test_interval_covers_truth_and_shrinks_with_n():
    small = tail_index_interval(symmetric_stable(1.5, 2_000, seed=1), n_boot=200, seed=0)
    large = tail_index_interval(symmetric_stable(1.5, 50_000, seed=2), n_boot=100, seed=0)
    assert small.lo < 1.5 < small.hi and large.lo < 1.5 < large.hi
    assert large.hi - large.lo < 0.5 * (small.hi - small.lo)


def test_recommended_sample_count_gives_the_promised_spread():
    n = recommend_sample_count(0.5, alpha=2.0, level=0.9)
    estimates = [tail_index(np.random.default_rng(s).standard_normal(n)) for s in range(300)]
    halfwidth = (np.quantile(estimates, 0.95) - np.quantile(estimates, 0.05)) / 2
    assert 0.35 < halfwidth < 0.65
    assert recommend_sample_count(0.1) > recommend_sample_count(0.2) > recommend_sample_count(0.5)


def test_tail_index_of_norms_separates_gaussian_from_stable_vectors():
    gauss = np.linalg.norm(np.random.default_rng(0).standard_normal((4000, 200)), axis=1)
    heavy = np.linalg.norm(symmetric_stable(1.2, (4000, 200), seed=0), axis=1)
    g, h = tail_index_of_norms(gauss, n_boot=100), tail_index_of_norms(heavy, n_boot=100)
    assert g.lo < 2.0 < g.hi + 0.3
    assert h.hi < 1.6 and h.hi < g.lo


@pytest.mark.parametrize("alpha", [1.3, 2.0])
def test_tail_index_of_block_sums_matches_vector_stability(alpha):
    k1, k2, dim = 50, 60, 20
    e = symmetric_stable(alpha, (k1 * k2, dim), seed=4)
    block_norms = np.linalg.norm(e.reshape(k2, k1, dim).sum(axis=1), axis=1)
    est = tail_index_of_block_sums(np.linalg.norm(e, axis=1), block_norms, k1, n_boot=200)
    assert est.alpha == pytest.approx(alpha, abs=0.2)
    assert est.lo <= est.alpha <= est.hi


def test_tail_index_per_coordinate_ignores_structural_zeros():
    values = np.concatenate([symmetric_stable(1.0, 40_000, seed=5), np.zeros(40_000)])
    assert tail_index_per_coordinate(values, n_boot=20).alpha == pytest.approx(1.0, abs=0.15)


def test_stable_sampler_matches_scipy():
    x = symmetric_stable(1.5, 4000, seed=7)
    assert stats.kstest(x, stats.levy_stable(1.5, 0.0).cdf).pvalue > 0.01
    assert np.var(symmetric_stable(2.0, 100_000, seed=8)) == pytest.approx(2.0, rel=0.03)  # S_2 = N(0, 2)


def test_reference_norms_share_the_median_normalisation():
    gauss = gaussian_reference_norms(5000, 1000, seed=0)
    heavy = stable_reference_norms(5000, 1000, alpha=1.5, seed=0)
    assert np.median(gauss) == pytest.approx(1.0) and np.median(heavy) == pytest.approx(1.0)
    assert gauss.std() == pytest.approx(1 / np.sqrt(2 * 1000), rel=0.1)  # chi_d / sqrt(d): sd ~ 1 / sqrt(2d)
    assert np.quantile(heavy, 0.99) > 3 * np.quantile(gauss, 0.99)


# ---------------------------------------------------------------- variance curves
def test_variance_curve_converges_on_gaussian_noise():
    rng = np.random.default_rng(0)
    noise = 0.5 * rng.standard_normal((4000, 50))
    truth = 50 * 0.25
    curve = variance_curve((noise ** 2).sum(axis=1))
    assert curve[-1] == pytest.approx(truth, rel=0.05)
    assert relative_range(curve) < 0.05
    welford = StreamingVariance()
    for row in torch.from_numpy(noise + 3.0):  # non-zero mean: Welford must remove it
        welford.update([row[:20], row[20:]])
    assert welford.variance == pytest.approx(truth, rel=0.05)
    assert welford.variance == pytest.approx(((noise - noise.mean(0)) ** 2).sum() / 3999, rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_variance_curve_does_not_settle_on_cauchy_noise(seed):
    curve = variance_curve((symmetric_stable(1.0, (4000, 50), seed=seed) ** 2).sum(axis=1))
    assert relative_range(curve) > 0.2  # Gaussian above: < 0.05


# ---------------------------------------------------------------- noise-norm sampler
class _TwoLayerLinear(nn.Module):
    """Least squares with a second linear map that only some batches use (tests unreached parameters)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 1, dtype=torch.float64)
        self.b = nn.Linear(5, 1, dtype=torch.float64)

    def forward(self, x, use_b):
        return (self.a(x) + (self.b(x) if use_b else 0.0)).squeeze(-1)


def _least_squares_loss(model, batch):
    x, y, use_b = batch
    return 0.5 * ((model(x, use_b) - y) ** 2).mean()


def test_sampler_matches_brute_force_least_squares():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(240, 5, generator=g, dtype=torch.float64), torch.randn(240, generator=g, dtype=torch.float64)
    model = _TwoLayerLinear()
    batches = [(x[i: i + 8], y[i: i + 8], i % 24 == 0) for i in range(0, 240, 8)]
    groups = {"a.weight": "first", "a.bias": "first", "b.weight": "second", "b.bias": "second"}
    picks = {"a.weight": np.array([0, 3]), "b.weight": np.array([1, 4]), "b.bias": np.array([0])}
    got = sample_noise_norms(model, _least_squares_loss, batches, n_mean=30, n_samples=30, groups=groups,
                             block_size=5, coordinates=picks, coordinate_rows=12)
    assert all(p.grad is None for p in model.parameters())

    def flat_grad(batch):
        model.zero_grad()
        _least_squares_loss(model, batch).backward()
        return torch.cat([torch.zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1)
                          for p in model.parameters()])

    per_batch = torch.stack([flat_grad(b) for b in batches])
    model.zero_grad(set_to_none=False)
    # exact full-data gradient: every batch has 8 examples, so it is the mean over batches of batch losses
    torch.stack([_least_squares_loss(model, b) for b in batches]).mean().backward()
    full = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    noise = per_batch - full
    np.testing.assert_allclose(got.norms, noise.norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(got.group_norms["first"], noise[:, :6].norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(got.group_norms["second"], noise[:, 6:].norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(got.block_norms, noise.reshape(6, 5, -1).sum(1).norm(dim=1).numpy(), rtol=1e-10)
    assert got.mean_gradient_norm == pytest.approx(float(full.norm()), rel=1e-10)
    # recorded coordinates, b's included on the batches that never reach it (noise = -grad f there)
    for name, cols in (("a.weight", [0, 3]), ("b.weight", [7, 10]), ("b.bias", [11])):
        np.testing.assert_allclose(got.coordinates[name], noise[:12, cols].numpy(), rtol=1e-10, atol=1e-14)


def _small_conv_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


def _classification_loss(model, batch):
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


def test_default_mode_freezes_batch_norm_and_restores_the_model():
    torch.manual_seed(0)
    model = _small_conv_net().eval()
    batches = [(torch.randn(8, 1, 8, 8) + 2.0, torch.randint(0, 3, (8,))) for _ in range(6)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = sample_noise_norms(model, _classification_loss, batches, n_mean=3, n_samples=3)
    assert not any(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert set(got.group_norms) == {"batch_norm", "convolution", "other"}  # an unnamed Linear is "other"
    # dropout is on in the default mode: the same batch twice gives two different noise norms
    twice = sample_noise_norms(model, _classification_loss, batches[:1], n_mean=1, n_samples=2)
    assert twice.norms[0] != twice.norms[1]
    sample_noise_norms(model, _classification_loss, batches, n_mean=3, n_samples=3, mode="train")
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])


def test_sampler_refuses_an_exhausted_generator_and_bad_mode():
    model = _small_conv_net()
    gen = ((torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))) for _ in range(3))
    with pytest.raises(ConfigError, match="ran out after 3 batches"):
        sample_noise_norms(model, _classification_loss, gen, n_mean=2, n_samples=2)
    with pytest.raises(ConfigError, match="noise mode"):
        sample_noise_norms(model, _classification_loss, [], n_mean=2, n_samples=2, mode="dropout")


def test_memory_meter_sees_torch_allocations():
    # the meter must be able to fail: a known 40 MB peak has to show up as 40 MB
    peak, _ = peak_extra_bytes(lambda: [torch.empty(5_000_000), torch.empty(5_000_000)])
    assert peak == pytest.approx(40_000_000, rel=0.01)


def test_sampler_peak_memory_is_a_few_parameter_copies():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 2048), nn.GELU(), nn.Linear(2048, 512), nn.GELU(), nn.Linear(512, 1024))
    batches = [(torch.randn(16, 512), torch.randint(0, 1024, (16,))) for _ in range(6)]
    params = parameter_bytes(model)
    assert 2_000_000 < params / 4 < 5_000_000

    def store_every_gradient():  # what the sampler avoids: the meter must flag it
        grads = []
        for batch in batches:
            grads.append(torch.autograd.grad(_classification_loss(model, batch), list(model.parameters())))
        return grads

    naive, _ = peak_extra_bytes(store_every_gradient)
    peak, _ = peak_extra_bytes(lambda: sample_noise_norms(model, _classification_loss, batches, n_mean=3,
                                                          n_samples=3, block_size=2))
    assert naive > 4 * params
    assert peak < 4 * params


# ---------------------------------------------------------------- parameter groups
def _tiny_bert():
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=24, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0))


def test_groups_on_bert_masked_lm():
    groups = classify_parameters(_tiny_bert())
    assert groups["bert.embeddings.word_embeddings.weight"] == "token_embedding"  # also the tied decoder
    assert "cls.predictions.decoder.weight" not in groups
    assert groups["bert.embeddings.position_embeddings.weight"] == "embedding"
    assert groups["bert.embeddings.LayerNorm.weight"] == "layer_norm"
    assert groups["bert.encoder.layer.1.attention.self.key.weight"] == "attention"
    assert groups["bert.encoder.layer.1.attention.output.dense.bias"] == "attention"
    assert groups["bert.encoder.layer.1.attention.output.LayerNorm.bias"] == "layer_norm"
    assert groups["bert.encoder.layer.1.intermediate.dense.weight"] == "feed_forward"
    assert groups["bert.encoder.layer.1.output.dense.weight"] == "feed_forward"
    assert groups["cls.predictions.transform.dense.weight"] == "head"
    assert groups["cls.predictions.bias"] == "head"


# every parameter of our pretraining encoders and their QA models, by full name: BERT's and RoFormer's layouts
ENCODER_GROUPS = [
    (r"(bert|roformer)\.embeddings\.word_embeddings\.weight", "token_embedding"),  # also the tied decoder
    (r"(bert|roformer)\.embeddings\.(position|token_type)_embeddings\.weight", "embedding"),
    (r"(bert|roformer)\.embeddings\.LayerNorm\.(weight|bias)", "layer_norm"),
    (r"(bert|roformer)\.encoder\.layer\.\d+\.attention\.self\.(query|key|value)\.(weight|bias)", "attention"),
    (r"(bert|roformer)\.encoder\.layer\.\d+\.attention\.output\.dense\.(weight|bias)", "attention"),
    (r"(bert|roformer)\.encoder\.layer\.\d+\.(attention\.)?output\.LayerNorm\.(weight|bias)", "layer_norm"),
    (r"(bert|roformer)\.encoder\.layer\.\d+\.(intermediate|output)\.dense\.(weight|bias)", "feed_forward"),
    (r"cls\.predictions\.transform\.dense\.(weight|bias)|cls\.predictions\.bias", "head"),
    (r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", "layer_norm"),
    (r"(bert\.)?pooler\.dense\.(weight|bias)|cls\.seq_relationship\.(weight|bias)|qa_outputs\.(weight|bias)",
     "head"),
]


@pytest.mark.parametrize("kind", ["absolute", "rotary"])
def test_groups_on_every_parameter_of_both_position_kinds(kind):
    import re

    from transformers import AutoModelForQuestionAnswering

    from heavytail.models.bert import build_bert

    arch = {"num_layers": 2, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
            "position_embedding": kind}
    pretraining = build_bert(arch, 50, 24, nsp=True)
    for model in (pretraining, build_bert(arch, 50, 24, variant="resnet_like"),
                  AutoModelForQuestionAnswering.from_config(pretraining.config)):
        groups = classify_parameters(model)
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert list(groups) == trainable
        for name, group in groups.items():
            expected = [g for pattern, g in ENCODER_GROUPS if re.fullmatch(pattern, name)]
            assert expected == [group], name
    groups = classify_parameters(pretraining)
    # the rotary sinusoid table is fixed (not trained), so it has no noise and no group; BERT's table is trained
    assert ("roformer.encoder.embed_positions.weight" in groups) is False
    assert ("bert.embeddings.position_embeddings.weight" in groups) == (kind == "absolute")
    assert set(groups.values()) == {"token_embedding", "embedding", "attention", "feed_forward", "layer_norm", "head"}


def test_groups_on_torchvision_models():
    import torchvision

    with torch.device("meta"):
        resnet, alexnet = torchvision.models.resnet18(), torchvision.models.alexnet()
    groups = classify_parameters(resnet)
    assert groups["conv1.weight"] == groups["layer3.0.downsample.0.weight"] == "convolution"
    assert groups["bn1.weight"] == groups["layer3.0.downsample.1.bias"] == "batch_norm"
    assert groups["fc.weight"] == "head"
    assert sorted(set(groups.values())) == ["batch_norm", "convolution", "head"]
    groups = classify_parameters(alexnet)
    assert groups["features.0.weight"] == "convolution" and groups["classifier.6.weight"] == "head"


# ---------------------------------------------------------------- measure and save
def test_measure_and_save_round_trip(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    batches = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(16)]
    result = measure_noise(model, _classification_loss, batches, n_mean=16, n_samples=32, n_boot=20)
    summary = save_noise_result(result, tmp_path, metadata={"model": "mlp", "step": 0, "batch_size": 4})
    arrays = np.load(tmp_path / "noise.npz")
    np.testing.assert_array_equal(arrays["norms__all"], result.norms.norms)
    assert arrays["block_norms__all"].shape == (32 // 5,)
    assert arrays["variance_curve__all"][-1] == pytest.approx(np.mean(result.norms.norms ** 2))
    from heavytail.io import read_json

    saved = read_json(tmp_path / "summary.json")
    assert saved == summary
    assert saved["metadata"] == {"model": "mlp", "step": 0, "batch_size": 4, "n_mean": 16, "n_samples": 32,
                                 "mode": "train_frozen_bn", "block_size": 5, "seed": 0, "interval_level": 0.9,
                                 "n_boot": 20}
    overall = saved["overall"]
    assert overall["quantiles"]["0.5"] == pytest.approx(float(np.median(result.norms.norms)))
    assert set(overall["tail_index_norms"]) == {"alpha", "lo", "hi"}
    assert set(saved["groups"]) == {"other"}  # an unnamed Sequential has no recognisable groups
