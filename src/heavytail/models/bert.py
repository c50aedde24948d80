"""BERT for pretraining: random init from `transformers`, an MLM head applied only at masked positions.

`build_bert` builds the architecture dict's position kind (`position_embedding`): "absolute", BERT's learned
table as in the paper (this module), or "rotary", RoFormer (`models/rotary.py`). Variants and the masked-only
loss are shared (`models/masked_lm.py`).
"""

from __future__ import annotations

from transformers import BertConfig, PretrainedConfig
from transformers.models.bert.modeling_bert import (
    BertLayer,
    BertModel,
    BertOnlyMLMHead,
    BertPreTrainedModel,
    BertPreTrainingHeads,
)

from heavytail.models.masked_lm import (
    POSITION_EMBEDDINGS,
    VARIANTS,
    MaskedPretrainingMixin,
    SkippedAttention,
    check_variant,
    layer_at_positions,
    position_embedding_of,
    remove_attention,
    width_and_heads,
)
from heavytail.models.rotary import RoFormerForMaskedPretraining, roformer_config

__all__ = ["POSITION_EMBEDDINGS", "VARIANTS", "BertForMaskedPretraining", "RoFormerForMaskedPretraining",
           "SkippedAttention", "bert_config", "build_bert", "encoder_config", "position_embedding_of"]

# where each kind keeps its encoder and its position table in a state dict
ENCODER_PREFIX = {"absolute": "bert", "rotary": "roformer"}
POSITION_TABLE = {"absolute": "bert.embeddings.position_embeddings.weight",
                  "rotary": "roformer.encoder.embed_positions.weight"}


def bert_config(arch: dict, vocab_size: int, max_seq_length: int) -> BertConfig:
    """A BertConfig from an architecture dict (layers, hidden, heads, intermediate, dropout, init std)."""
    hidden, heads = width_and_heads(arch)
    dropout = float(arch.get("dropout", 0.1))
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=int(arch["num_layers"]),
        num_attention_heads=heads,
        intermediate_size=int(arch.get("intermediate_size", 4 * hidden)),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max(int(arch.get("max_position_embeddings", 512)), max_seq_length),
        type_vocab_size=2,
        initializer_range=float(arch.get("initializer_range", 0.02)),
        attn_implementation="sdpa",
    )


def encoder_config(arch: dict, vocab_size: int, max_seq_length: int, name: str | None = None) -> PretrainedConfig:
    """The transformers config of the architecture's position kind: BertConfig or RoFormerConfig."""
    make = roformer_config if position_embedding_of(arch, name) == "rotary" else bert_config
    return make(arch, vocab_size, max_seq_length)


class BertLayerAtPositions(BertLayer):
    """BertLayer that, given `query_positions`, returns its output at those positions only."""

    def forward(self, hidden_states, attention_mask=None, *args, query_positions=None, **kwargs):
        if query_positions is None:
            return super().forward(hidden_states, attention_mask, *args, **kwargs)
        return layer_at_positions(self, hidden_states, attention_mask, query_positions)


class BertForMaskedPretraining(MaskedPretrainingMixin, BertPreTrainedModel):
    """BERT with tied MLM decoder (and optional NSP head); logits are computed only at the masked positions.

    Parameter names match `BertForMaskedLM` (and `BertForPreTraining` with NSP), so weights load both ways and
    `BertForQuestionAnswering.from_pretrained` reads the `bert.*` encoder from `save_pretrained` output.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig, nsp: bool = False, variant: str = "attention"):
        super().__init__(config)
        check_variant(variant)
        self.nsp = nsp
        self.variant = variant
        self.bert = BertModel(config, add_pooling_layer=nsp)
        self.cls = BertPreTrainingHeads(config) if nsp else BertOnlyMLMHead(config)
        # same module, same parameters, one more forward path: a class switch keeps init and weights as they are
        self.bert.encoder.layer[-1].__class__ = BertLayerAtPositions
        if variant == "resnet_like":
            remove_attention(self.bert.encoder.layer)
        self.post_init()


def build_bert(arch: dict, vocab_size: int, max_seq_length: int, nsp: bool = False, variant: str = "attention",
               name: str | None = None) -> BertForMaskedPretraining | RoFormerForMaskedPretraining:
    """A randomly initialised pretraining encoder of `arch`'s position kind (seed torch first for a fixed init).

    `name` is the architecture's key under pretrain.models, for error messages.
    """
    config = encoder_config(arch, vocab_size, max_seq_length, name)
    model_class = RoFormerForMaskedPretraining if config.model_type == "roformer" else BertForMaskedPretraining
    return model_class(config, nsp=nsp, variant=variant)
