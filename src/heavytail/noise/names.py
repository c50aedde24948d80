"""How measurements are named in folders and the noise table (torch-free: the plan imports it at parse time)."""

from __future__ import annotations

GAUSSIAN = "gaussian"
# how each text source is named in the noise table (the report's claims match "gauss*" against the rest)
TEXT_DATA_NAMES = {"gensim_wiki": "wikipedia", "hf_wikipedia_bookcorpus": "wikipedia_books"}


def bert_model_name(variant: str) -> str:
    """Model name in the noise table: bert (attention), no_attention_bert (the paper's ResNet-like BERT)."""
    return "no_attention_bert" if variant == "resnet_like" else "bert"
