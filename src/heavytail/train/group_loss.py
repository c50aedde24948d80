"""A batch's loss by frequency group as training statistics: per group, the summed loss and the example count.

The engine averages every statistic over micro-batches, processes and the steps of a log interval alike, so the
ratio of a group's two averages is its mean loss over the interval, however the examples fell into steps.
"""

from __future__ import annotations

import numpy as np
import torch

from heavytail.data.frequency import MEAN_KEY, stat_keys


class GroupLoss:
    """Statistics of one task: `groups[c]` is the frequency group of class (token) c."""

    def __init__(self, groups: np.ndarray):
        self.groups = torch.as_tensor(np.asarray(groups), dtype=torch.long)
        self.n_groups = int(self.groups.max()) + 1
        self.keys = stat_keys(self.n_groups)
        self._by_device: dict[torch.device, torch.Tensor] = {}

    def stats(self, losses: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> dict:
        """`losses` and `labels` of the same shape (weights 0 mark padding); detached, no effect on the step."""
        with torch.no_grad():
            table = self._by_device.get(labels.device)
            if table is None:
                table = self._by_device[labels.device] = self.groups.to(labels.device)
            group = table[labels.reshape(-1)]
            weight = (torch.ones_like(losses, dtype=torch.float32) if weights is None
                      else weights.to(torch.float32)).reshape(-1)
            zeros = torch.zeros(self.n_groups, dtype=torch.float32, device=labels.device)
            nll = zeros.index_add(0, group, losses.detach().to(torch.float32).reshape(-1) * weight)
            count = zeros.index_add(0, group, weight)
        out = {}
        for g, (nll_key, count_key) in enumerate(self.keys):
            out[nll_key], out[count_key] = nll[g], count[g]
        return out

    def zeros(self) -> dict[str, float]:
        """Running sums of an evaluation pass, every key present (each process all-reduces the same keys)."""
        return {key: 0.0 for pair in self.keys for key in pair}

    def add_to(self, totals: dict, losses: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None):
        """Add a batch's group sums and counts to `totals` (an evaluation pass's running sums, as floats)."""
        for key, value in self.stats(losses, labels, weights).items():
            totals[key] = totals.get(key, 0.0) + float(value)

    def means(self, totals: dict) -> dict[str, float]:
        """Each group's mean loss from an evaluation pass's sums (NaN for a group with no example)."""
        return {MEAN_KEY.format(g): (totals[nll] / totals[count] if totals.get(count) else float("nan"))
                for g, (nll, count) in enumerate(self.keys)}
