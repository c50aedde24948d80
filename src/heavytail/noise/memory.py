"""Peak extra memory of a callable: every tensor allocation counted, on CPU (profiler events) or CUDA.

CPU: `torch.profiler` with `profile_memory=True` records one event per c10 allocation and free (activations,
autograd buffers, gradients, optimizer-style buffers alike), so the running sum of those events is the live
tensor memory the callable added and its maximum is the peak. Unlike an RSS delta it does not depend on how
the C allocator caches freed pages, and unlike `tracemalloc` it sees torch. It is slow, so time separately.
CUDA: `torch.cuda.max_memory_allocated` minus the allocation before the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def peak_extra_bytes(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[int, Any]:
    """(peak bytes allocated by `fn` above what was live when it started, fn's return value)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, result
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak, result


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the model's parameters (tied parameters counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())
