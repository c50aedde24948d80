"""Parameter groups for per-group noise: classified from parameter names and owning module types.

Works on Hugging Face BERT names (`bert.encoder.layer.0.attention.self.query.weight`), on the no-attention
variant and on torchvision ResNet / AlexNet names. The decoder of a tied masked-LM head is the word-embedding
matrix itself (`named_parameters` lists it once, as the embedding), so it lands in `token_embedding`; an untied
`decoder.weight` is classified there too because it is the output embedding of the same vocabulary.
"""

from __future__ import annotations

from torch import nn

GROUPS = ("token_embedding", "embedding", "attention", "feed_forward", "layer_norm", "batch_norm",
          "convolution", "head", "other")

_TOKEN_EMBEDDING_NAMES = ("word_embeddings", "embed_tokens", "tok_embeddings", "wte", "decoder.weight")
_HEAD_NAMES = ("cls.", "pooler", "classifier", "qa_outputs", "lm_head", "head", "fc.", "predictions",
               "seq_relationship")
_FEED_FORWARD_NAMES = ("intermediate", "mlp", "ffn", "feed_forward", "feedforward")


def classify_parameter(name: str, module: nn.Module | None = None) -> str:
    """Group of one parameter from its qualified name and (when known) the module that owns it."""
    lowered = name.lower()
    if any(key in lowered for key in _TOKEN_EMBEDDING_NAMES):
        return "token_embedding"
    if isinstance(module, nn.Embedding) or "embeddings." in lowered and "norm" not in lowered:
        return "embedding"
    if isinstance(module, nn.LayerNorm) or "layernorm" in lowered or "layer_norm" in lowered:
        return "layer_norm"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batch_norm"
    if "attention" in lowered or "attn" in lowered:
        return "attention"
    # BERT's FFN is `intermediate.dense` then `output.dense`; `attention.output.dense` was caught above
    if any(key in lowered for key in _FEED_FORWARD_NAMES) or ".output.dense." in lowered:
        return "feed_forward"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "convolution"
    if any(key in lowered for key in _HEAD_NAMES) or lowered.startswith("fc."):
        return "head"
    return "other"


def classify_parameters(model: nn.Module) -> dict[str, str]:
    """{parameter name: group} for every trainable parameter, in `named_parameters` order (tied ones once)."""
    owners = {}
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            owners.setdefault(f"{module_name}.{param_name}" if module_name else param_name, module)
    return {name: classify_parameter(name, owners.get(name))
            for name, p in model.named_parameters() if p.requires_grad}


def group_sizes(model: nn.Module, groups: dict[str, str] | None = None) -> dict[str, int]:
    """Number of scalar parameters per group (only groups that occur)."""
    groups = classify_parameters(model) if groups is None else groups
    params = dict(model.named_parameters())
    sizes: dict[str, int] = {}
    for name, group in groups.items():
        sizes[group] = sizes.get(group, 0) + params[name].numel()
    return sizes
