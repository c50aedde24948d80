"""BERT pretraining model: the masked-only head against stock BertForMaskedLM, variants, masking, unigram floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import BertForMaskedLM, BertForPreTraining

from heavytail.data.mlm import MaskingSpec, mask_tokens, unigram_loss
from heavytail.errors import ConfigError
from heavytail.models.bert import SkippedAttention, build_bert

torch.set_num_threads(1)

ARCH = {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "dropout": 0.0}
VOCAB, LENGTH = 97, 24
SPEC = MaskingSpec(vocab_size=VOCAB, mask_id=4, special_ids=(0, 1, 2, 3, 4), max_predictions=6)


def masked_batch(batch: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, size=(batch, LENGTH))
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    return {k: torch.as_tensor(v) for k, v in mask_tokens(ids, SPEC, rng).items()}


def stock_labels(batch: dict) -> torch.Tensor:
    labels = torch.full_like(batch["input_ids"], -100)
    keep = batch["masked_weights"] > 0
    rows = torch.arange(len(labels)).unsqueeze(1).expand_as(batch["masked_positions"])
    labels[rows[keep], batch["masked_positions"][keep]] = batch["masked_labels"][keep]
    return labels


def test_masked_only_head_matches_stock_bert_for_masked_lm():
    torch.manual_seed(0)
    ours = build_bert(ARCH, VOCAB, LENGTH)
    stock = BertForMaskedLM(ours.config)
    stock.load_state_dict(ours.state_dict())  # same parameter names, so the weights load both ways
    batch = masked_batch()
    out = ours(**{k: batch[k] for k in ("input_ids", "masked_positions", "masked_labels", "masked_weights")})
    reference = stock(input_ids=batch["input_ids"], labels=stock_labels(batch)).loss
    assert out["loss"].item() == pytest.approx(reference.item(), rel=1e-6)
    out["loss"].backward()
    reference.backward()
    ours_grad = ours.bert.embeddings.word_embeddings.weight.grad
    stock_grad = stock.bert.embeddings.word_embeddings.weight.grad
    torch.testing.assert_close(ours_grad, stock_grad, rtol=1e-5, atol=1e-7)


def test_decoder_is_tied_to_token_embeddings():
    model = build_bert(ARCH, VOCAB, LENGTH)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_nsp_head_matches_stock_bert_for_pretraining():
    torch.manual_seed(1)
    ours = build_bert(ARCH, VOCAB, LENGTH, nsp=True)
    stock = BertForPreTraining(ours.config)
    stock.load_state_dict(ours.state_dict())
    batch = masked_batch()
    nsp_label = torch.tensor([0, 1, 1, 0])
    out = ours(**batch, next_sentence_label=nsp_label)
    reference = stock(input_ids=batch["input_ids"], labels=stock_labels(batch), next_sentence_label=nsp_label).loss
    assert out["loss"].item() == pytest.approx(reference.item(), rel=1e-6)
    assert {"mlm_loss", "nsp_loss", "nsp_correct"} <= set(out)


@pytest.mark.parametrize("variant", ["attention", "resnet_like", "gaussian_input"])
def test_variant_forward_backward_reaches_every_used_parameter(variant):
    torch.manual_seed(2)
    model = build_bert(ARCH, VOCAB, LENGTH, variant=variant)
    out = model(**masked_batch())
    out["loss"].backward()
    assert math.isfinite(out["loss"].item())
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    if variant == "gaussian_input":
        # token embeddings are bypassed on input; they still receive the tied decoder's gradient
        assert model.bert.embeddings.word_embeddings.weight.grad is not None
    assert missing == []


def test_resnet_like_has_no_attention_and_keeps_ffn_residual_layernorm():
    model = build_bert(ARCH, VOCAB, LENGTH, variant="resnet_like")
    names = [n for n, _ in model.named_parameters()]
    assert not any(".attention." in n for n in names)
    for layer in model.bert.encoder.layer:
        assert isinstance(layer.attention, SkippedAttention)
        assert hasattr(layer.output, "LayerNorm") and hasattr(layer.intermediate, "dense")
    # with attention gone, a token's output depends on its own input only: changing one token leaves others
    model.eval()
    batch = masked_batch(batch=1)
    hidden = model.bert(input_ids=batch["input_ids"]).last_hidden_state
    changed = batch["input_ids"].clone()
    changed[0, 5] = (changed[0, 5] + 1 - 5) % (VOCAB - 5) + 5
    hidden2 = model.bert(input_ids=changed).last_hidden_state
    same = torch.ones(LENGTH, dtype=torch.bool)
    same[5] = False
    torch.testing.assert_close(hidden[0, same], hidden2[0, same])


def test_gaussian_input_ignores_token_identity():
    torch.manual_seed(3)
    model = build_bert(ARCH, VOCAB, LENGTH, variant="gaussian_input").eval()
    batch = masked_batch(batch=2)
    torch.manual_seed(10)
    a = model.bert(**model._encoder_inputs(batch["input_ids"])).last_hidden_state
    torch.manual_seed(10)
    b = model.bert(**model._encoder_inputs(torch.full_like(batch["input_ids"], 7))).last_hidden_state
    torch.testing.assert_close(a, b)
    inputs = model._encoder_inputs(batch["input_ids"])["inputs_embeds"]
    torch.testing.assert_close(inputs.norm(dim=-1), torch.ones(inputs.shape[:2]))


def test_unknown_variant_and_bad_heads_raise_config_error():
    with pytest.raises(ConfigError, match="variant"):
        build_bert(ARCH, VOCAB, LENGTH, variant="convolution")
    with pytest.raises(ConfigError, match="divisible"):
        build_bert({**ARCH, "num_attention_heads": 3}, VOCAB, LENGTH)


def test_devlin_masking_counts_and_80_10_10_split():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, VOCAB, size=(4000, 64))
    ids[:, 0], ids[:, -1] = 2, 3
    spec = MaskingSpec(vocab_size=VOCAB, mask_id=4, special_ids=(0, 1, 2, 3, 4), max_predictions=20)
    out = mask_tokens(ids, spec, rng)
    # round(0.15 * 62 maskable) = 9 predictions per row, never on [CLS]/[SEP]
    assert out["masked_positions"].shape == (4000, 9) and out["masked_weights"].min() == 1
    assert out["masked_positions"].min() >= 1 and out["masked_positions"].max() <= 62
    np.testing.assert_array_equal(np.take_along_axis(ids, out["masked_positions"], 1), out["masked_labels"])
    now = np.take_along_axis(out["input_ids"], out["masked_positions"], 1)
    masked = (now == 4).mean()
    unchanged = (now == out["masked_labels"]).mean()
    assert masked == pytest.approx(0.8, abs=0.01)
    # 10 % kept on purpose plus the random replacements that drew the same token (1/97 of 10 %)
    assert unchanged == pytest.approx(0.1 + 0.1 / VOCAB, abs=0.01)
    untouched = np.ones_like(ids, dtype=bool)
    np.put_along_axis(untouched, out["masked_positions"], False, 1)
    np.testing.assert_array_equal(out["input_ids"][untouched], ids[untouched])


def test_masking_caps_predictions_and_pads_with_zero_weight():
    ids = np.array([[2, 10, 11, 3, 0, 0], [2, 10, 11, 12, 13, 3]])
    spec = MaskingSpec(vocab_size=20, mask_id=4, special_ids=(0, 1, 2, 3, 4), mask_probability=0.5,
                       max_predictions=3)
    out = mask_tokens(ids, spec, np.random.default_rng(0))
    # round(0.5 * 2) = 1 and round(0.5 * 4) = 2 predictions; the short row is padded with weight 0
    np.testing.assert_array_equal(out["masked_weights"], [[1.0, 0.0], [1.0, 1.0]])
    assert out["masked_positions"][0, 1] == 0 and out["input_ids"][0, 0] == 2
    spec3 = MaskingSpec(vocab_size=20, mask_id=4, special_ids=(0, 1, 2, 3, 4), mask_probability=1.0,
                        max_predictions=3)
    assert mask_tokens(ids, spec3, np.random.default_rng(0))["masked_weights"].sum(1).tolist() == [2, 3]


def test_unigram_loss_known_answers():
    uniform = np.full(50, 10)
    labels, weights = np.array([[3, 7], [9, 1]]), np.ones((2, 2))
    assert unigram_loss(uniform, labels, weights) == pytest.approx(math.log(50))
    skewed = np.zeros(4)
    skewed[0] = 96  # add-one smoothing: p(0) = 97/100, p(other) = 1/100
    assert unigram_loss(skewed, np.array([[0, 1]]), np.array([[1.0, 0.0]])) == pytest.approx(-math.log(0.97))


def test_context_free_floor_known_answers_and_a_model_that_reaches_it():
    from heavytail.data.mlm import context_free_loss

    mask = 3
    uniform = np.full(4, 7)  # u = 1/4 for each of V = 4 tokens
    validation = {"input_ids": np.array([[mask, 1, 2]]), "masked_positions": np.array([[0, 1, 2]]),
                  "masked_labels": np.array([[0, 1, 0]]), "masked_weights": np.ones((1, 3))}
    # [MASK]: u(y) = 1/4; kept token: (1/4 + 1/16) / (1/4 + 1/4) = 5/8; swapped token: (1/16) / (1/2) = 1/8
    expected = -(math.log(1 / 4) + math.log(5 / 8) + math.log(1 / 8)) / 3
    assert context_free_loss(uniform, validation, mask) == pytest.approx(expected)
    # the floor is what a model seeing only the masked position's token can reach under Devlin masking:
    # estimate it from many masked draws of real-looking frequencies, and compare
    counts = np.array([0, 0, 0, 0, 0, 400, 200, 100, 50, 25, 13, 7, 3, 2])
    spec = MaskingSpec(vocab_size=len(counts), mask_id=4, special_ids=(0, 1, 2, 3, 4), mask_probability=0.5,
                       max_predictions=8)
    rng = np.random.default_rng(0)
    ids = 5 + rng.choice(len(counts) - 5, p=counts[5:] / counts[5:].sum(), size=(4000, 16))
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    masked = mask_tokens(ids, spec, rng)
    floor = context_free_loss(counts, masked, spec.mask_id)
    assert floor < unigram_loss(counts, masked["masked_labels"], masked["masked_weights"]) - 0.05
    inputs = np.take_along_axis(masked["input_ids"], masked["masked_positions"], axis=1)
    joint = np.zeros((len(counts), len(counts)))  # empirical p(label | input token), the best such model
    np.add.at(joint, (inputs.ravel(), masked["masked_labels"].ravel()), masked["masked_weights"].ravel())
    p_label = joint[inputs, masked["masked_labels"]] / joint.sum(1)[inputs]
    empirical = -(np.log(p_label) * masked["masked_weights"]).sum() / masked["masked_weights"].sum()
    assert floor == pytest.approx(empirical, abs=0.03)
