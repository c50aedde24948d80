"""BERT with rotary positions for pretraining: transformers' RoFormer encoder, the masked-only MLM head.

RoFormer is BERT's post-LN block with the learned absolute position table replaced by rotary position
embeddings (Su et al. 2021) applied to queries and keys; word and token-type embeddings, LayerNorm, MLM head
and initialisation are BERT's. Choices, and why:
- `rotary_value=False`: queries and keys only, the standard RoPE; their product then depends on the offset
  between two positions alone. Rotating values too is a RoFormer extra that RoPE models do not use.
- `embedding_size = hidden_size`: no factorised embedding, so the parameters are BERT's minus the position table.
- `max_position_embeddings` only sizes a fixed sinusoid table (frozen, not trained, max(512, length) rows as
  BERT's): a longer fine-tuning length needs no untrained parameters, though offsets beyond the pretraining
  length are new to the model.
- transformers' RoFormer attention is eager only (no SDPA); `use_sdpa_attention` switches it to torch's fused
  kernel (same parameters, same results). Measured on CPU at the tiny shape without dropout: pretraining steps
  1.25x and QA steps 1.4x faster; with dropout, CPU SDPA falls back to its math kernel, as fast as eager.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from transformers import RoFormerConfig
from transformers.models.bert.modeling_bert import BertPooler
from transformers.models.roformer.modeling_roformer import (
    RoFormerLayer,
    RoFormerLMPredictionHead,
    RoFormerModel,
    RoFormerOnlyMLMHead,
    RoFormerPreTrainedModel,
    RoFormerSelfAttention,
)

from heavytail.errors import ConfigError
from heavytail.models.masked_lm import (
    MaskedPretrainingMixin,
    check_variant,
    layer_at_positions,
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


class RoFormerSdpaSelfAttention(RoFormerSelfAttention):
    """RoFormer's self-attention with torch's scaled_dot_product_attention in place of the eager softmax(QK^T)V."""

    def forward(self, hidden_states, attention_mask=None, sinusoidal_pos=None, encoder_hidden_states=None,
                cache=None, output_attentions=False, **kwargs):
        if encoder_hidden_states is not None or cache is not None or output_attentions:
            # decoder, cross-attention and attention-weight outputs keep transformers' eager path
            return super().forward(hidden_states, attention_mask, sinusoidal_pos, encoder_hidden_states, cache,
                                   output_attentions, **kwargs)
        shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        query, key, value = (proj(hidden_states).view(shape).transpose(1, 2)
                             for proj in (self.query, self.key, self.value))
        if sinusoidal_pos is not None:
            if self.rotary_value:
                query, key, value = self.apply_rotary_position_embeddings(sinusoidal_pos, query, key, value)
            else:
                query, key = self.apply_rotary_position_embeddings(sinusoidal_pos, query, key)
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                 dropout_p=self.dropout.p if self.training else 0.0)
        return context.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size), None


def use_sdpa_attention(model: nn.Module) -> nn.Module:
    """Switch every RoFormer self-attention in `model` to SDPA, in place: same parameters, same outputs."""
    for module in model.modules():
        if type(module) is RoFormerSelfAttention:
            module.__class__ = RoFormerSdpaSelfAttention
    return model


class RoFormerLayerAtPositions(RoFormerLayer):
    """RoFormerLayer that, given `query_positions`, returns its output at those positions only."""

    def forward(self, hidden_states, attention_mask=None, sinusoidal_pos=None, *args, query_positions=None,
                **kwargs):
        if query_positions is None:
            return super().forward(hidden_states, attention_mask, sinusoidal_pos, *args, **kwargs)
        return (layer_at_positions(self, hidden_states, attention_mask, query_positions, sinusoidal_pos),)


class RoFormerModelWithoutPadCheck(RoFormerModel):
    """RoFormerModel without its per-forward padding check (BertModel has none).

    The check tests whether the pad id occurs in `input_ids`: a device-to-host sync every forward on a GPU,
    and an error under torch.func.vmap, which the per-example noise measurement uses. Pretraining batches
    are packed, or carry their attention mask (NSP), so the warning it guards against cannot apply.
    """

    def warn_if_padding_and_no_attention_mask(self, input_ids, attention_mask):
        return None


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
        if config.rotary_value:
            raise ValueError("RoFormerForMaskedPretraining rotates queries and keys only (rotary_value False)")
        self.nsp = nsp
        self.variant = variant
        self.roformer = use_sdpa_attention(RoFormerModelWithoutPadCheck(config))
        self.pooler = BertPooler(config) if nsp else None
        self.cls = RoFormerPreTrainingHeads(config) if nsp else RoFormerOnlyMLMHead(config)
        # same module, same parameters, one more forward path: a class switch keeps init and weights as they are
        self.roformer.encoder.layer[-1].__class__ = RoFormerLayerAtPositions
        if variant == "resnet_like":
            remove_attention(self.roformer.encoder.layer)
        self.post_init()

    def pooled(self, outputs):
        return self.pooler(outputs.last_hidden_state)

