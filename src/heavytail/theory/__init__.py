"""Synthetic experiments that check the paper's theorems (Table 1)."""
