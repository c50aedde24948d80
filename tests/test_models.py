"""BERT pretraining model, both position kinds: the masked-only head against stock transformers models, NSP,
variants, HF export and reload, masking, unigram floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import BertForMaskedLM, BertForPreTraining, RoFormerForMaskedLM

from heavytail.data.mlm import MaskingSpec, mask_tokens, unigram_loss
from heavytail.errors import ConfigError
from heavytail.models.bert import (
    BertForMaskedPretraining,
    RoFormerForMaskedPretraining,
    SkippedAttention,
    build_bert,
)

torch.set_num_threads(1)

ARCH = {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "dropout": 0.0}
KINDS = ("absolute", "rotary")
VOCAB, LENGTH = 97, 24
SPEC = MaskingSpec(vocab_size=VOCAB, mask_id=4, special_ids=(0, 1, 2, 3, 4), max_predictions=6)
NSP_LABEL = torch.tensor([0, 1, 1, 0])


def arch_of(kind: str) -> dict:
    return {**ARCH, "position_embedding": kind}


def encoder(model):
    return model.base_model  # bert or roformer


def masked_batch(batch: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, size=(batch, LENGTH))
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    return {k: torch.as_tensor(v) for k, v in mask_tokens(ids, SPEC, rng).items()}


def nsp_batch(seed: int = 0) -> dict:
    """A masked batch with two segments and padding, as NSP data has them."""
    batch = masked_batch(seed=seed)
    types = torch.zeros_like(batch["input_ids"])
    types[:, LENGTH // 2:] = 1
    mask = torch.ones_like(batch["input_ids"])
    mask[1, -3:] = 0
    return {**batch, "token_type_ids": types, "attention_mask": mask, "next_sentence_label": NSP_LABEL}


def stock_labels(batch: dict) -> torch.Tensor:
    labels = torch.full_like(batch["input_ids"], -100)
    keep = batch["masked_weights"] > 0
    rows = torch.arange(len(labels)).unsqueeze(1).expand_as(batch["masked_positions"])
    labels[rows[keep], batch["masked_positions"][keep]] = batch["masked_labels"][keep]
    return labels


@pytest.mark.parametrize("kind", KINDS)
def test_masked_only_head_matches_stock_masked_lm(kind):
    torch.manual_seed(0)
    ours = build_bert(arch_of(kind), VOCAB, LENGTH)
    assert type(ours) is {"absolute": BertForMaskedPretraining, "rotary": RoFormerForMaskedPretraining}[kind]
    stock = {"absolute": BertForMaskedLM, "rotary": RoFormerForMaskedLM}[kind](ours.config)
    stock.load_state_dict(ours.state_dict())  # same parameter names, so the weights load both ways
    batch = masked_batch()
    out = ours(**{k: batch[k] for k in ("input_ids", "masked_positions", "masked_labels", "masked_weights")})
    reference = stock(input_ids=batch["input_ids"], labels=stock_labels(batch)).loss
    assert out["loss"].item() == pytest.approx(reference.item(), rel=1e-6)
    out["loss"].backward()
    reference.backward()
    ours_grad = encoder(ours).embeddings.word_embeddings.weight.grad
    stock_grad = encoder(stock).embeddings.word_embeddings.weight.grad
    torch.testing.assert_close(ours_grad, stock_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_decoder_is_tied_to_token_embeddings(kind):
    for nsp in (False, True):
        model = build_bert(arch_of(kind), VOCAB, LENGTH, nsp=nsp)
        assert model.cls.predictions.decoder.weight is encoder(model).embeddings.word_embeddings.weight


def test_nsp_head_matches_stock_bert_for_pretraining():
    torch.manual_seed(1)
    ours = build_bert(ARCH, VOCAB, LENGTH, nsp=True)
    stock = BertForPreTraining(ours.config)
    stock.load_state_dict(ours.state_dict())
    batch = nsp_batch()
    out = ours(**batch)
    model_inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask", "next_sentence_label")}
    reference = stock(**model_inputs, labels=stock_labels(batch)).loss
    assert out["loss"].item() == pytest.approx(reference.item(), rel=1e-6)
    assert {"mlm_loss", "nsp_loss", "nsp_correct"} <= set(out)


def test_rotary_nsp_is_stock_masked_lm_plus_bert_pooler_classifier():
    # transformers has no RoFormerForPreTraining: the reference is the stock MLM loss plus BERT's NSP head,
    # tanh(W h[CLS] + b) then a 2-way linear layer, written out from the weights
    torch.manual_seed(1)
    ours = build_bert(arch_of("rotary"), VOCAB, LENGTH, nsp=True)
    stock = RoFormerForMaskedLM(ours.config)
    missing, unexpected = stock.load_state_dict(ours.state_dict(), strict=False)
    assert missing == [] and sorted(unexpected) == ["cls.seq_relationship.bias", "cls.seq_relationship.weight",
                                                    "pooler.dense.bias", "pooler.dense.weight"]
    batch = nsp_batch()
    model_inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    mlm = stock(**model_inputs, labels=stock_labels(batch)).loss
    first = stock.roformer(**model_inputs).last_hidden_state[:, 0]
    state = ours.state_dict()
    pooled = torch.tanh(F.linear(first, state["pooler.dense.weight"], state["pooler.dense.bias"]))
    nsp_logits = F.linear(pooled, state["cls.seq_relationship.weight"], state["cls.seq_relationship.bias"])
    out = ours(**batch)
    assert out["mlm_loss"].item() == pytest.approx(mlm.item(), rel=1e-6)
    assert out["nsp_loss"].item() == pytest.approx(F.cross_entropy(nsp_logits, NSP_LABEL).item(), rel=1e-6)
    assert out["nsp_correct"].item() == (nsp_logits.argmax(-1) == NSP_LABEL).sum().item()
    assert out["loss"].item() == pytest.approx(out["mlm_loss"].item() + out["nsp_loss"].item(), rel=1e-6)


@pytest.mark.parametrize("nsp", [False, True], ids=["mlm", "nsp"])
@pytest.mark.parametrize("variant", ["attention", "resnet_like", "gaussian_input"])
@pytest.mark.parametrize("kind", KINDS)
def test_variant_forward_backward_reaches_every_used_parameter(kind, variant, nsp):
    torch.manual_seed(2)
    model = build_bert(arch_of(kind), VOCAB, LENGTH, nsp=nsp, variant=variant)
    out = model(**(nsp_batch() if nsp else masked_batch()))
    out["loss"].backward()
    assert math.isfinite(out["loss"].item())
    assert {"loss", "mlm_loss", "mlm_correct", "mlm_count"} <= set(out)
    assert ("nsp_loss" in out) == nsp
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    if variant == "gaussian_input":
        # token embeddings are bypassed on input; they still receive the tied decoder's gradient
        assert encoder(model).embeddings.word_embeddings.weight.grad is not None
    assert missing == []
    # the rotary sinusoid table is fixed, not trained; BERT's position table is trained
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == (["roformer.encoder.embed_positions.weight"] if kind == "rotary" else [])


@pytest.mark.parametrize("variant", ["attention", "resnet_like"])
@pytest.mark.parametrize("kind", KINDS)
def test_last_layer_at_masked_positions_equals_the_full_layer(kind, variant):
    torch.manual_seed(6)
    model = build_bert({**arch_of(kind), "initializer_range": 0.2}, VOCAB, LENGTH, variant=variant).double()
    batch = nsp_batch()  # two segments and a padded row
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    rows = batch["masked_positions"]
    full = encoder(model)(**inputs).last_hidden_state
    fast = encoder(model)(**inputs, query_positions=rows).last_hidden_state
    expected = full.gather(1, rows.unsqueeze(-1).expand(-1, -1, full.size(-1)))
    assert fast.shape == expected.shape == (4, rows.shape[1], ARCH["hidden_size"])
    torch.testing.assert_close(fast, expected)
    weights, params = torch.randn_like(fast), [p for p in model.base_model.parameters() if p.requires_grad]
    fast_grads = torch.autograd.grad((fast * weights).sum(), params, allow_unused=True)
    full_grads = torch.autograd.grad((expected * weights).sum(), params, allow_unused=True)
    for a, b in zip(fast_grads, full_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_resnet_like_has_no_attention_and_keeps_ffn_residual_layernorm(kind):
    model = build_bert(arch_of(kind), VOCAB, LENGTH, variant="resnet_like")
    names = [n for n, _ in model.named_parameters()]
    assert not any(".attention." in n for n in names)
    for layer in encoder(model).encoder.layer:
        assert isinstance(layer.attention, SkippedAttention)
        assert hasattr(layer.output, "LayerNorm") and hasattr(layer.intermediate, "dense")
    # with attention gone, a token's output depends on its own input only: changing one token leaves others
    model.eval()
    batch = masked_batch(batch=1)
    hidden = encoder(model)(input_ids=batch["input_ids"]).last_hidden_state
    changed = batch["input_ids"].clone()
    changed[0, 5] = (changed[0, 5] + 1 - 5) % (VOCAB - 5) + 5
    hidden2 = encoder(model)(input_ids=changed).last_hidden_state
    same = torch.ones(LENGTH, dtype=torch.bool)
    same[5] = False
    torch.testing.assert_close(hidden[0, same], hidden2[0, same])
    # rotary positions act inside attention only, so without it a token's state ignores its position too
    repeated = encoder(model)(input_ids=torch.full((1, LENGTH), 9)).last_hidden_state[0]
    position_blind = torch.allclose(repeated[0], repeated[-1])
    assert position_blind == (kind == "rotary")


@pytest.mark.parametrize("kind", KINDS)
def test_gaussian_input_ignores_token_identity(kind):
    torch.manual_seed(3)
    model = build_bert(arch_of(kind), VOCAB, LENGTH, variant="gaussian_input").eval()
    batch = masked_batch(batch=2)
    torch.manual_seed(10)
    a = encoder(model)(**model._encoder_inputs(batch["input_ids"])).last_hidden_state
    torch.manual_seed(10)
    b = encoder(model)(**model._encoder_inputs(torch.full_like(batch["input_ids"], 7))).last_hidden_state
    torch.testing.assert_close(a, b)
    inputs = model._encoder_inputs(batch["input_ids"])["inputs_embeds"]
    torch.testing.assert_close(inputs.norm(dim=-1), torch.ones(inputs.shape[:2]))


def test_rotary_encoder_sees_order_without_a_learned_position_table():
    # without positions, attention is permutation-equivariant: permuting the tokens permutes the states.
    # Rotary positions break that, and no parameter holds a position table. (A wide init makes attention peaked.)
    torch.manual_seed(4)
    model = build_bert({**arch_of("rotary"), "initializer_range": 0.5}, VOCAB, 600).eval()
    assert not any("position_embeddings" in n for n, _ in model.named_parameters())
    assert model.config.max_position_embeddings == 600  # the fixed sinusoid table covers the asked length
    ids = masked_batch(batch=1)["input_ids"]
    order = torch.randperm(LENGTH)
    states = encoder(model)(input_ids=ids).last_hidden_state[0]
    permuted = encoder(model)(input_ids=ids[:, order]).last_hidden_state[0]
    assert (states[order] - permuted).abs().max() > 0.05
    table = encoder(model).encoder.embed_positions.weight.data  # [position, sin half | cos half]
    table[:, :table.shape[1] // 2], table[:, table.shape[1] // 2:] = 0.0, 1.0  # every rotation the identity
    states = encoder(model)(input_ids=ids).last_hidden_state[0]
    permuted = encoder(model)(input_ids=ids[:, order]).last_hidden_state[0]
    torch.testing.assert_close(states[order], permuted)  # the same model without rotation is order-blind


@pytest.mark.parametrize("kind", KINDS)
def test_hf_export_reloads_with_identical_outputs(kind, tmp_path):
    torch.manual_seed(5)
    model = build_bert(arch_of(kind), VOCAB, LENGTH, nsp=True).eval()
    model.save_pretrained(str(tmp_path / "hf_model"))
    reloaded = type(model).from_pretrained(str(tmp_path / "hf_model"), nsp=True).eval()
    assert reloaded.cls.predictions.decoder.weight is encoder(reloaded).embeddings.word_embeddings.weight
    batch = nsp_batch()
    ours, again = model(**batch), reloaded(**batch)
    for key in ("loss", "mlm_loss", "nsp_loss"):
        assert again[key].item() == ours[key].item()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], tensor, rtol=0, atol=0)


def test_unknown_variant_position_kind_and_bad_heads_raise_config_error():
    with pytest.raises(ConfigError, match="variant"):
        build_bert(ARCH, VOCAB, LENGTH, variant="convolution")
    with pytest.raises(ConfigError, match="divisible"):
        build_bert({**ARCH, "num_attention_heads": 3}, VOCAB, LENGTH)
    with pytest.raises(ConfigError, match=r"^pretrain\.models\.bert_tiny\.position_embedding must be one of "
                                          r"absolute, rotary \(got 'alibi'\)$"):
        build_bert(arch_of("alibi"), VOCAB, LENGTH, name="bert_tiny")
    with pytest.raises(ConfigError, match="must be even"):  # head size 33 / 3 = 11: no pairs to rotate
        build_bert({**arch_of("rotary"), "hidden_size": 33, "num_attention_heads": 3}, VOCAB, LENGTH)


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
