"""BERT for pretraining: random init from `transformers`, an MLM head applied only at masked positions.

Variants for the noise experiments (paper §5.2) are chosen by `variant`:
- "attention": the standard BERT encoder;
- "resnet_like": every self-attention module removed; each block keeps its feed-forward, residual and LayerNorm;
- "gaussian_input": the token-embedding output replaced by normalised Gaussian vectors (fresh every forward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import (
    BertModel,
    BertOnlyMLMHead,
    BertPreTrainedModel,
    BertPreTrainingHeads,
)

from heavytail.errors import ConfigError

VARIANTS = ("attention", "resnet_like", "gaussian_input")


def bert_config(arch: dict, vocab_size: int, max_seq_length: int) -> BertConfig:
    """A BertConfig from an architecture dict (layers, hidden, heads, intermediate, dropout, init std)."""
    hidden, heads = int(arch["hidden_size"]), int(arch["num_attention_heads"])
    if hidden % heads:
        raise ConfigError(f"pretrain.models: hidden_size {hidden} must be divisible by num_attention_heads {heads}")
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


class SkippedAttention(nn.Module):
    """Stands in for BertAttention in the ResNet-like variant: the block input passes through unchanged."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states, None


class BertForMaskedPretraining(BertPreTrainedModel):
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
        if variant not in VARIANTS:
            raise ConfigError(f"pretrain.variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
        self.nsp = nsp
        self.variant = variant
        self.bert = BertModel(config, add_pooling_layer=nsp)
        self.cls = BertPreTrainingHeads(config) if nsp else BertOnlyMLMHead(config)
        if variant == "resnet_like":
            for layer in self.bert.encoder.layer:
                layer.attention = SkippedAttention()
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def _encoder_inputs(self, input_ids: torch.Tensor) -> dict:
        if self.variant != "gaussian_input":
            return {"input_ids": input_ids}
        # normalised Gaussian vectors instead of token embeddings; position/type embeddings and LayerNorm stay
        shape = (*input_ids.shape, self.config.hidden_size)
        noise = torch.randn(shape, device=input_ids.device, dtype=self.bert.embeddings.word_embeddings.weight.dtype)
        return {"inputs_embeds": F.normalize(noise, dim=-1)}

    def forward(self, input_ids, masked_positions, masked_labels, masked_weights=None, attention_mask=None,
                token_type_ids=None, next_sentence_label=None) -> dict:
        """Loss and metrics of one batch; `masked_*` are [batch, predictions] (weights 0 mark padding)."""
        outputs = self.bert(**self._encoder_inputs(input_ids), attention_mask=attention_mask,
                            token_type_ids=token_type_ids, return_dict=True)
        hidden = outputs.last_hidden_state
        # gather the masked hidden states first: the vocab-sized decoder then runs on ~15% of the tokens
        index = masked_positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
        masked_hidden = torch.gather(hidden, 1, index)
        logits = self.cls.predictions(masked_hidden).float()
        weights = torch.ones_like(masked_labels, dtype=logits.dtype) if masked_weights is None else masked_weights
        token_loss = F.cross_entropy(logits.flatten(0, 1), masked_labels.flatten(), reduction="none")
        count = weights.sum().clamp_min(1.0)
        mlm_loss = (token_loss * weights.flatten()).sum() / count
        correct = ((logits.argmax(-1) == masked_labels).to(logits.dtype) * weights).sum()
        result = {"loss": mlm_loss, "mlm_loss": mlm_loss.detach(), "mlm_correct": correct.detach(),
                  "mlm_count": count.detach()}
        if self.nsp:
            nsp_logits = self.cls.seq_relationship(outputs.pooler_output).float()
            nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label)
            result["loss"] = mlm_loss + nsp_loss
            result["nsp_loss"] = nsp_loss.detach()
            result["nsp_correct"] = (nsp_logits.argmax(-1) == next_sentence_label).sum().detach().float()
        return result


def build_bert(arch: dict, vocab_size: int, max_seq_length: int, nsp: bool = False,
               variant: str = "attention") -> BertForMaskedPretraining:
    """A randomly initialised pretraining BERT (seed torch before calling for a reproducible init)."""
    return BertForMaskedPretraining(bert_config(arch, vocab_size, max_seq_length), nsp=nsp, variant=variant)
