"""What both pretraining encoders share: the architecture checks, the variants and the masked-only loss.

The encoder is BERT with learned absolute positions (`models/bert.py`, as in the paper) or with rotary ones
(`models/rotary.py`, transformers' RoFormer: BERT's post-LN block, positions rotating queries and keys).
Variants for the noise experiments (paper §5.2) are chosen by `variant`:
- "attention": the standard encoder;
- "resnet_like": every self-attention module removed; each block keeps its feed-forward, residual and LayerNorm;
- "gaussian_input": the token-embedding output replaced by normalised Gaussian vectors (fresh every forward).
The MLM head runs only at the masked positions, and so does the last encoder layer (`layer_at_positions`):
its other rows would feed nothing but the discarded logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heavytail.errors import ConfigError

VARIANTS = ("attention", "resnet_like", "gaussian_input")
POSITION_EMBEDDINGS = ("absolute", "rotary")


def position_embedding_of(arch: dict, name: str | None = None) -> str:
    """The architecture's position kind: absolute (learned, BERT's; the default) or rotary."""
    kind = arch.get("position_embedding", "absolute")
    if kind not in POSITION_EMBEDDINGS:
        raise ConfigError(f"pretrain.models.{name or '<name>'}.position_embedding must be one of "
                          f"{', '.join(POSITION_EMBEDDINGS)} (got {kind!r})")
    return kind


def width_and_heads(arch: dict) -> tuple[int, int]:
    """hidden_size and num_attention_heads, checked to split evenly into heads."""
    hidden, heads = int(arch["hidden_size"]), int(arch["num_attention_heads"])
    if hidden % heads:
        raise ConfigError(f"pretrain.models: hidden_size {hidden} must be divisible by num_attention_heads {heads}")
    return hidden, heads


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ConfigError(f"pretrain.variant must be one of {', '.join(VARIANTS)} (got {variant!r})")


class SkippedAttention(nn.Module):
    """Stands in for an encoder layer's attention in the ResNet-like variant: the block input passes unchanged."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states, None


def remove_attention(encoder_layers: nn.ModuleList) -> None:
    for layer in encoder_layers:
        layer.attention = SkippedAttention()


def _select(tensor: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Rows `positions` [batch, P] of `tensor` along `dim` (dim 0 is the batch)."""
    shape = [1] * tensor.dim()
    shape[0], shape[dim] = positions.shape
    index = positions.view(shape).expand(*tensor.shape[:dim], positions.shape[1], *tensor.shape[dim + 1:])
    return tensor.gather(dim, index)


def layer_at_positions(layer: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None,
                       positions: torch.Tensor, rotary: torch.Tensor | None = None) -> torch.Tensor:
    """A BERT/RoFormer encoder layer's output at `positions` [batch, P] only: queries there, keys everywhere.

    Equals `layer(hidden)` gathered at `positions`: in a bidirectional layer the rows meet only as attention's
    keys and values, so queries, residuals, LayerNorms and the feed-forward can skip the rows nobody reads.
    `rotary` is RoFormer's sinusoid table of the sequence ([1, 1, length, head size]); BERT passes None.
    """
    query_states = _select(hidden, positions, 1)
    if isinstance(layer.attention, SkippedAttention):
        attention_output = query_states
    else:
        attn = layer.attention.self

        def heads(states):
            return states.view(*states.shape[:-1], -1, attn.attention_head_size).transpose(1, 2)

        key, value = heads(attn.key(hidden)), heads(attn.value(hidden))
        if rotary is None:
            query = heads(attn.query(query_states))
        else:  # rotate all queries with the keys (transformers' function), then keep the asked rows
            query, key = attn.apply_rotary_position_embeddings(rotary, heads(attn.query(hidden)), key)
            query = _select(query, positions, 2)
        if attention_mask is not None and attention_mask.size(2) > 1:
            attention_mask = _select(attention_mask, positions, 2)
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                 dropout_p=attn.dropout.p if layer.training else 0.0)
        attention_output = layer.attention.output(context.transpose(1, 2).flatten(2), query_states)
    return layer.output(layer.intermediate(attention_output), attention_output)


class MaskedPretrainingMixin:
    """Forward of a pretraining encoder whose MLM logits are computed only at the masked positions.

    The subclass (a transformers PreTrainedModel) holds the encoder as its `base_model`, the heads as `cls`
    (`cls.predictions`, and `cls.seq_relationship` with NSP), and sets `nsp` and `variant`. Its last encoder
    layer takes `query_positions` (passed down through the encoder's keyword arguments) and then returns only
    those rows: the masked positions, after [CLS] (position 0) for the NSP pooler.
    """

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def pooled(self, outputs) -> torch.Tensor:
        """The NSP head's input: the pooled [CLS] state (row 0 of the encoder's output)."""
        return outputs.pooler_output

    def _encoder_inputs(self, input_ids: torch.Tensor) -> dict:
        if self.variant != "gaussian_input":
            return {"input_ids": input_ids}
        # normalised Gaussian vectors instead of token embeddings; position/type embeddings and LayerNorm stay
        word_embeddings = self.base_model.embeddings.word_embeddings
        shape = (*input_ids.shape, word_embeddings.embedding_dim)
        noise = torch.randn(shape, device=input_ids.device, dtype=word_embeddings.weight.dtype)
        return {"inputs_embeds": F.normalize(noise, dim=-1)}

    def forward(self, input_ids, masked_positions, masked_labels, masked_weights=None, attention_mask=None,
                token_type_ids=None, next_sentence_label=None) -> dict:
        """Loss and metrics of one batch; `masked_*` are [batch, predictions] (weights 0 mark padding)."""
        # the last layer and the vocab-sized decoder run on the masked positions (~15 % of the tokens) only
        rows = torch.cat([torch.zeros_like(masked_positions[:, :1]), masked_positions], 1) if self.nsp \
            else masked_positions
        outputs = self.base_model(**self._encoder_inputs(input_ids), attention_mask=attention_mask,
                                  token_type_ids=token_type_ids, return_dict=True, query_positions=rows)
        masked_hidden = outputs.last_hidden_state[:, 1:] if self.nsp else outputs.last_hidden_state
        logits = self.cls.predictions(masked_hidden).float()
        weights = torch.ones_like(masked_labels, dtype=logits.dtype) if masked_weights is None else masked_weights
        token_loss = F.cross_entropy(logits.flatten(0, 1), masked_labels.flatten(), reduction="none")
        count = weights.sum().clamp_min(1.0)
        mlm_loss = (token_loss * weights.flatten()).sum() / count
        correct = ((logits.argmax(-1) == masked_labels).to(logits.dtype) * weights).sum()
        # the per-position losses, detached: the training task's loss by token frequency reads them
        result = {"loss": mlm_loss, "mlm_loss": mlm_loss.detach(), "mlm_correct": correct.detach(),
                  "mlm_count": count.detach(), "mlm_token_loss": token_loss.detach().view_as(masked_labels)}
        if self.nsp:
            nsp_logits = self.cls.seq_relationship(self.pooled(outputs)).float()
            nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label)
            result["loss"] = mlm_loss + nsp_loss
            result["nsp_loss"] = nsp_loss.detach()
            result["nsp_correct"] = (nsp_logits.argmax(-1) == next_sentence_label).sum().detach().float()
        return result
