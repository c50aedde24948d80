"""Models: BERT (and its no-attention and Gaussian-input variants) and vision models."""
