"""Gradient-noise measurement: noise norms, variance curves, per-coordinate noise, tail index."""
