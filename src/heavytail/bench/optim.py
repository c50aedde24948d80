"""Time one ACClip step against torch's AdamW on BERT-base parameter shapes; print and write ratios as JSON.

    python -m heavytail.bench.optim --out results/bench/optim.json [--device cpu|cuda] [--rounds 60] [--threads 1]

Every ratio is measured in this run: contenders step in rounds, one step each per round, and the order rotates
each round, so drifting load on a shared machine and the cache left by the previous contender hit all alike.
A ratio is the median over rounds of that round's ratio, printed with its quartiles and range. Two phases keep
memory low: the fast paths (ACClip fused=True against AdamW fused=True), then the eager paths (foreach,
for-loop, and a per-parameter Python loop written the way the public ACClip implementation is).
Set TORCHINDUCTOR_CACHE_DIR to keep ACClip's compiled kernel between runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from heavytail.bench.common import pick_device, write_result
from heavytail.config import load_job_config
from heavytail.optim import ACClip

ACCLIP_HPARAMS = {"lr": 1e-4, "betas": (0.9, 0.99), "eps": 1e-5, "weight_decay": 1e-5, "alpha": 1.0}
ADAMW_HPARAMS = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-5}
# (numerator, denominator) of every ratio reported; the first is the headline (issue 16: goal <= 1.0)
FAST_RATIOS = [("acclip_fused", "adamw_fused")]
EAGER_RATIOS = [
    ("acclip_foreach", "adamw_foreach"),
    ("adamw_foreach", "adamw_forloop"),  # training's CPU choice: bitwise the same numbers, is it faster?
    ("acclip_foreach", "acclip_single"),
    ("acclip_public_loop", "acclip_foreach"),
]
DEFAULT_ROUNDS = {"cpu": (60, 12), "cuda": (400, 100)}  # (fast phase, eager phase)


def bert_base_shapes() -> list[tuple[str, torch.Size]]:
    """Parameter names and shapes of BERT-base pre-training (BertConfig()), built on the meta device."""
    from transformers import BertConfig, BertForPreTraining

    with torch.device("meta"):
        model = BertForPreTraining(BertConfig())
    return [(name, p.shape) for name, p in model.named_parameters()]


def make_params(shapes, device: str, seed: int = 0) -> list[torch.Tensor]:
    """Random non-zero weights and gradients (zeros would let kernels skip work or hit special cases)."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for _, shape in shapes:
        p = (torch.randn(shape, generator=gen) * 0.02).to(device).requires_grad_()
        p.grad = (torch.randn(shape, generator=gen) * 1e-3).to(device)
        params.append(p)
    return params


class PublicStyleACClip(torch.optim.Optimizer):
    """ACClip as the public per-parameter implementation writes it: a Python loop, three buffers per tensor.

    Its coupled weight decay and in-place gradient edit are left out so it moves the same data per step as
    the printed rule plus the always-updated second moment; only the loop structure is being timed.
    """

    def __init__(self, params, lr, betas, eps, weight_decay, alpha):
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "alpha": alpha}
        )

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["momentum"] = torch.zeros_like(p)
                    state["clip"] = torch.zeros_like(p)
                    state["second_moment"] = torch.zeros_like(p)
                grad = p.grad
                state["momentum"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["clip"].mul_(beta2).add_(grad.abs().pow(group["alpha"]), alpha=1 - beta2)
                state["second_moment"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                factor = state["clip"].pow(1 / group["alpha"]).div(state["momentum"].abs().add(group["eps"]))
                factor.clamp_(min=0.0, max=1.0)
                p.addcmul_(factor, state["momentum"], value=-group["lr"])


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )


def time_rounds(contenders: dict[str, Callable], rounds: int, warmup: int, device: str) -> tuple[dict, dict]:
    """Per-round step times in ms for each contender (order rotating each round), and each first step in s."""

    def timed(step_fn) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step_fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    first = {name: timed(fn) for name, fn in contenders.items()}  # includes any lazy compile
    for name in first:
        print(f"first step {name:<22s} {first[name]:9.3f} s", flush=True)
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    report_every = max(1, rounds // 4)
    for round_ in range(warmup + rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = timed(contenders[name])
            if round_ >= warmup:
                times[name].append(elapsed * 1e3)
        done = round_ - warmup + 1
        if done > 0 and done % report_every == 0:
            medians = "  ".join(f"{n} {statistics.median(t):.1f}" for n, t in times.items())
            print(f"round {done:4d}/{rounds} median ms: {medians}", flush=True)
    return times, first


def ratio_summary(times: dict[str, list[float]], numerator: str, denominator: str) -> dict:
    """The median over rounds of one round's time ratio, with its quartiles and range."""
    per_round = [a / b for a, b in zip(times[numerator], times[denominator], strict=True)]
    q1, median, q3 = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    return {
        "median": statistics.median(per_round),
        "q1": q1,
        "q3": q3,
        "min": min(per_round),
        "max": max(per_round),
        "rounds": len(per_round),
        "ratio_of_medians": statistics.median(times[numerator]) / statistics.median(times[denominator]),
    }


def inductor_cache_counters() -> dict:
    from torch._dynamo.utils import counters

    return {k: int(v) for k, v in counters["inductor"].items() if k.startswith("fxgraph_cache")}


def run_phase(optimizers: dict, ratios: list[tuple[str, str]], rounds: int, warmup: int, device: str):
    """Time one phase's optimizers on shared params; their step times, first steps, ratios and state bytes."""
    times, first = time_rounds({n: o.step for n, o in optimizers.items()}, rounds, warmup, device)
    summaries = {f"{a}_vs_{b}": ratio_summary(times, a, b) for a, b in ratios}
    return times, first, summaries, {n: state_bytes(o) for n, o in optimizers.items()}


def run(device: str, rounds: int, eager_rounds: int, warmup: int, shapes=None) -> dict:
    """Every contender on `shapes` (default: BERT-base's parameters), timed in rounds; the result's JSON."""
    model = "BertForPreTraining(BertConfig())" if shapes is None else f"{len(shapes)} given shapes"
    shapes = bert_base_shapes() if shapes is None else shapes
    params = make_params(shapes, device)
    n_params = sum(p.numel() for p in params)
    workload = {
        "model": model,
        "tensors": len(params),
        "distinct_shapes": len({tuple(s) for _, s in shapes}),
        "parameters": n_params,
        "dtype": "float32",
        "device": device,
        "threads": torch.get_num_threads(),
    }
    print(
        f"workload {model}: {len(params)} tensors ({workload['distinct_shapes']} shapes), "
        f"{n_params / 1e6:.1f}M parameters, fp32, {device}, {torch.get_num_threads()} threads",
        flush=True,
    )
    fast = {
        "acclip_fused": ACClip(params, **ACCLIP_HPARAMS, fused=True),
        "adamw_fused": torch.optim.AdamW(params, **ADAMW_HPARAMS, fused=True),
    }
    times, first, ratios, nbytes = run_phase(fast, FAST_RATIOS, rounds, warmup, device)
    compile_counters = inductor_cache_counters()
    del fast
    eager = {
        "acclip_foreach": ACClip(params, **ACCLIP_HPARAMS, foreach=True),
        "acclip_single": ACClip(params, **ACCLIP_HPARAMS, foreach=False),
        "adamw_foreach": torch.optim.AdamW(params, **ADAMW_HPARAMS, foreach=True),
        "adamw_forloop": torch.optim.AdamW(params, **ADAMW_HPARAMS, foreach=False),
        "acclip_public_loop": PublicStyleACClip(params, **ACCLIP_HPARAMS),
    }
    times2, first2, ratios2, nbytes2 = run_phase(eager, EAGER_RATIOS, eager_rounds, warmup, device)
    del eager
    for merged, part in ((times, times2), (first, first2), (ratios, ratios2), (nbytes, nbytes2)):
        merged.update(part)

    medians = {name: statistics.median(t) for name, t in times.items()}
    compile_s = first["acclip_fused"] - medians["acclip_fused"] / 1e3
    state_ratio = {
        "acclip_fused_vs_adamw_fused": nbytes["acclip_fused"] / nbytes["adamw_fused"],
        "acclip_foreach_vs_adamw_foreach": nbytes["acclip_foreach"] / nbytes["adamw_foreach"],
        "acclip_public_loop_vs_adamw_foreach": nbytes["acclip_public_loop"] / nbytes["adamw_foreach"],
    }
    for name, value in medians.items():
        print(f"median {name:<22s} {value:9.1f} ms/step", flush=True)
    for name, r in ratios.items():
        print(
            f"ratio  {name:<40s} {r['median']:6.3f}  (quartiles {r['q1']:.3f}-{r['q3']:.3f}, "
            f"range {r['min']:.3f}-{r['max']:.3f}, {r['rounds']} rounds)",
            flush=True,
        )
    for name, value in state_ratio.items():
        print(f"state-bytes ratio {name:<36s} {value:.4f}", flush=True)
    print(
        f"one-time compile cost (acclip fused, first step minus median) {compile_s:.1f} s; "
        f"inductor cache {compile_counters}",
        flush=True,
    )
    return {
        "workload": workload,
        "method": {
            "rounds": {"fast": rounds, "eager": eager_rounds},
            "warmup_rounds": warmup,
            "statistic": "median over rounds of the per-round time ratio, with quartiles and range",
            "order": "one step per contender per round, order rotating each round",
            "timed": "optimizer.step() wall time" + (" between cuda.synchronize() calls" if device == "cuda" else ""),
        },
        "hparams": {"acclip": ACCLIP_HPARAMS, "adamw": ADAMW_HPARAMS},
        "median_ms": medians,
        "step_ms": times,
        "ratios": ratios,
        "state_bytes": nbytes,
        "state_bytes_ratio": state_ratio,
        "compile": {
            "first_step_s": first["acclip_fused"],
            "one_time_cost_s": compile_s,
            "inductor_cache_dir": os.environ.get(
                "TORCHINDUCTOR_CACHE_DIR", "default (/tmp/torchinductor_$USER)"
            ),
            "counters": compile_counters,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--config", help="resolved job config (JSON string or path); optional")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if available")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds, fused phase (cpu 60, cuda 400)")
    parser.add_argument(
        "--eager-rounds", type=int, default=None, help="timed rounds, eager phase (cpu 12, cuda 100)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds after the first step")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config) if args.config else {}
    device = pick_device(args.device, args.threads, "optim")
    rounds, eager_rounds = DEFAULT_ROUNDS[device]
    result = run(device, args.rounds or rounds, args.eager_rounds or eager_rounds, args.warmup)
    write_result(args.out, result, cfg)


if __name__ == "__main__":
    main()
