"""heavytail.batches and the step's settling: the GPU path's prefetch thread and its one collective per step."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from heavytail import batches as host_batches
from heavytail.batches import prefetched
from heavytail.train.distributed import DistContext
from heavytail.train.stepping import settle


@pytest.fixture(autouse=True)
def unpinned(monkeypatch):
    """Page-locked memory needs a CUDA driver; the GPU check runs the engine's prefetch with pinning on CUDA."""
    monkeypatch.setattr(host_batches, "pin", lambda batch: batch)


def test_prefetch_builds_the_next_batches_while_the_current_one_is_used():
    """#16: the loop built each batch after the GPU finished the last step; prefetched builds `depth` ahead in
    a background thread, and the stream it yields is the same."""
    built, stream = [], [{"x": torch.full((2,), float(i))} for i in range(6)]

    def batches():
        for batch in stream:
            built.append(threading.current_thread().name)
            yield batch

    ahead = prefetched(batches(), depth=2)
    first = next(ahead)
    deadline = time.monotonic() + 10
    while len(built) < 4 and time.monotonic() < deadline:  # one read, two queued, one waiting to be queued
        time.sleep(0.01)
    assert len(built) == 4 and set(built) == {"prefetch"}
    assert [b["x"].tolist() for b in [first, *ahead]] == [b["x"].tolist() for b in stream]


def test_prefetch_raises_a_failure_of_the_stream_where_it_is_read():
    def failing():
        yield torch.zeros(1)
        raise ValueError("corrupt shard")

    ahead = prefetched(failing())
    assert next(ahead).tolist() == [0.0]
    with pytest.raises(ValueError, match="corrupt shard"):
        next(ahead)


class CountingContext(DistContext):
    """One process standing for a rank of a 2-process job: counts the collectives, sums as if both ranks agreed."""

    def __init__(self):
        super().__init__(rank=0, world_size=2)
        self.collectives = 0

    def all_reduce_sum(self, tensor):
        self.collectives += 1
        return tensor.mul_(2)


def test_a_step_settles_with_one_collective_and_one_host_read():
    """Loss, gradient norm, every statistic and the stop flag travel in one all-reduce (one sync on a GPU),
    not one each."""
    ctx = CountingContext()
    outcome = settle([torch.tensor(1.5), torch.tensor(0.5)], {"mlm_loss": [torch.tensor(3.0), torch.tensor(1.0)]},
                     torch.tensor(2.0), accumulation=2, ctx=ctx, stop_requested=True, scaled=False)
    assert ctx.collectives == 1
    assert outcome.loss == pytest.approx(1.0) and outcome.grad_norm == pytest.approx(2.0)
    assert outcome.stats == {"mlm_loss": pytest.approx(2.0)} and outcome.stop and not outcome.diverged
