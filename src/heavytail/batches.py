"""Batches as tensors or dicts/tuples of tensors: moved to a device, split into micro-batches (torch only)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch


def split_batch(batch: Any, parts: int) -> list[Any]:
    """Split a tensor, or a dict/tuple of tensors, into `parts` micro-batches along dim 0."""
    if parts == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        return list(batch.chunk(parts))
    if isinstance(batch, dict):
        pieces = {k: split_batch(v, parts) for k, v in batch.items()}
        return [{k: v[i] for k, v in pieces.items()} for i in range(parts)]
    if isinstance(batch, (tuple, list)):
        pieces = [split_batch(v, parts) for v in batch]
        return [type(batch)(p[i] for p in pieces) for i in range(parts)]
    raise TypeError(f"cannot split a batch of type {type(batch).__name__}")


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def pin(batch: Any) -> Any:
    """The batch in page-locked host memory, so that its copy to the GPU can run asynchronously."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: pin(v) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(pin(v) for v in batch)
    return batch


def prefetched(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """`batches`, built `depth` ahead by a background thread and pinned (for a GPU: the host prepares the next
    batch while the device computes). The stream is the same; an exception in it is raised where it is read."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce():
        try:
            for batch in batches:
                ready.put(pin(batch))
        except BaseException as exc:  # hand it to the reader
            ready.put(exc)
        ready.put(done)

    threading.Thread(target=produce, daemon=True, name="prefetch").start()
    while (item := ready.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
