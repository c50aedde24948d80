"""The optimizer benchmark's method: rotating order, per-round ratios (no timing asserted)."""

from __future__ import annotations

import pytest

from heavytail.bench import optim as bench


def test_rounds_rotate_the_order_so_each_contender_goes_first_alike():
    calls: list[str] = []
    contenders = {name: (lambda n=name: calls.append(n)) for name in ("a", "b", "c")}
    times, first = bench.time_rounds(contenders, rounds=6, warmup=3, device="cpu")
    assert set(first) == {"a", "b", "c"} and all(len(t) == 6 for t in times.values())
    rounds = [calls[i : i + 3] for i in range(3, len(calls), 3)]  # after the three first steps
    assert len(rounds) == 9 and all(sorted(r) == ["a", "b", "c"] for r in rounds)
    leaders = [r[0] for r in rounds]
    assert leaders.count("a") == leaders.count("b") == leaders.count("c") == 3


def test_ratio_is_the_median_of_per_round_ratios():
    """A slow spell that hits both contenders in one round cancels in that round's ratio."""
    times = {"x": [9.0, 10.0, 100.0, 11.0, 9.5], "y": [10.0, 10.0, 110.0, 10.0, 10.0]}
    summary = bench.ratio_summary(times, "x", "y")
    assert summary["median"] == pytest.approx(0.95)
    assert summary["min"] == pytest.approx(0.9) and summary["max"] == pytest.approx(1.1)
    assert summary["q1"] <= summary["median"] <= summary["q3"] and summary["rounds"] == 5
    assert summary["ratio_of_medians"] == pytest.approx(1.0)
