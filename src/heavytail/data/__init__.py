"""Data: corpora, tokenizer, images, QA; the same loaders at every scale."""
