"""BERT with rotary positions for pretraining: transformers' RoFormer encoder, the masked-only MLM head.

RoFormer is BERT's post-LN block with the learned absolute position table replaced by rotary position
embeddings (Su et al. 2021) applied to queries and keys; word and token-type embeddings, LayerNorm, MLM head
and initialisation are BERT's. Choices, and why:
- `rotary_value=False`: queries and keys only, the standard RoPE; their product then depends on the offset
  between two positions alone. Rotating values too is a RoFormer extra that RoPE models do not use.
- `embedding_size = hidden_size`: no factorised embedding, so the parameters are BERT's minus the position table.
- `max_position_embeddings` only sizes a fixed sinusoid table (frozen, not trained): a length beyond the
  pretraining one still gets meaningful positions.
- RoFormer in transformers has eager attention only (no SDPA).
"""

from __future__ import annotations

from torch import nn
from transformers import RoFormerConfig
from transformers.models.bert.modeling_bert import BertPooler
from transformers.models.roformer.modeling_roformer import (
    RoFormerLMPredictionHead,
    RoFormerModel,
    RoFormerOnlyMLMHead,
    RoFormerPreTrainedModel,
)

from heavytail.errors import ConfigError
from heavytail.models.masked_lm import (
    MaskedPretrainingMixin,
    check_variant,
    remove_attention,
    width_and_heads,
)


def roformer_config(arch: dict, vocab_size: int, max_seq_length: int) -> RoFormerConfig:
    """A RoFormerConfig from an architecture dict, with BERT's sizes, dropout and init std."""
    hidden, heads = width_and_heads(arch)
    if (hidden // heads) % 2:
        raise ConfigError(f"pretrain.models: rotary positions rotate pairs of coordinates, so hidden_size / "
                          f"num_attention_heads must be even (got {hidden} / {heads})")
    dropout = float(arch.get("dropout", 0.1))
    return RoFormerConfig(
        vocab_size=vocab_size,
        embedding_size=hidden,
        hidden_size=hidden,
        num_hidden_layers=int(arch["num_layers"]),
        num_attention_heads=heads,
        intermediate_size=int(arch.get("intermediate_size", 4 * hidden)),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max(int(arch.get("max_position_embeddings", 512)), max_seq_length),
        type_vocab_size=2,
        initializer_range=float(arch.get("initializer_range", 0.02)),
        rotary_value=False,
    )


class RoFormerPreTrainingHeads(nn.Module):
    """BERT's pretraining heads on a RoFormer encoder: the MLM prediction head and the NSP classifier."""

    def __init__(self, config: RoFormerConfig):
        super().__init__()
        self.predictions = RoFormerLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class RoFormerForMaskedPretraining(MaskedPretrainingMixin, RoFormerPreTrainedModel):
    """RoFormer with tied MLM decoder (and optional NSP head); logits are computed only at the masked positions.

    Parameter names match `RoFormerForMaskedLM`, so weights load both ways and
    `RoFormerForQuestionAnswering.from_pretrained` reads the `roformer.*` encoder from `save_pretrained` output.
    RoFormer has no pooler; with NSP, BERT's (`pooler.*`: dense + tanh on [CLS]) sits beside the encoder.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "roformer.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: RoFormerConfig, nsp: bool = False, variant: str = "attention"):
        super().__init__(config)
        check_variant(variant)
        self.nsp = nsp
        self.variant = variant
        self.roformer = RoFormerModel(config)
        self.pooler = BertPooler(config) if nsp else None
        self.cls = RoFormerPreTrainingHeads(config) if nsp else RoFormerOnlyMLMHead(config)
        if variant == "resnet_like":
            remove_attention(self.roformer.encoder.layer)
        self.post_init()

    def pooled(self, outputs):
        return self.pooler(outputs.last_hidden_state)


def build_rotary(arch: dict, vocab_size: int, max_seq_length: int, nsp: bool = False,
                 variant: str = "attention") -> RoFormerForMaskedPretraining:
    """A randomly initialised pretraining RoFormer (seed torch before calling for a reproducible init)."""
    return RoFormerForMaskedPretraining(roformer_config(arch, vocab_size, max_seq_length), nsp=nsp, variant=variant)
