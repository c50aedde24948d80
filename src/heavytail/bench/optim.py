"""Time one ACClip step against torch's AdamW on BERT-base parameter shapes; write ratios as JSON.

    python -m heavytail.bench.optim --out results/bench/optim.json [--device cpu|cuda] [--steps 20]

Contenders run interleaved (one step of each per round) after warm-up rounds, so drifting load on a
shared machine hits them alike; the medians of >= 20 steps are compared. Two phases keep memory low:
the fast paths (ACClip fused=True vs AdamW fused=True), then the foreach paths plus a per-parameter
Python loop written the way the public ACClip implementation is (three buffers, one loop iteration per
tensor). Set TORCHINDUCTOR_CACHE_DIR to keep ACClip's compiled kernel between runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from heavytail.bench.common import pick_device, write_result
from heavytail.config import load_job_config
from heavytail.optim import ACClip

ACCLIP_HPARAMS = {"lr": 1e-4, "betas": (0.9, 0.99), "eps": 1e-5, "weight_decay": 1e-5, "alpha": 1.0}
ADAMW_HPARAMS = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-5}


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


def time_interleaved(contenders: dict, steps: int, warmup: int, device: str) -> tuple[dict, dict]:
    """Step times in ms per contender after warm-up, and each contender's first step in s."""

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
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + steps):
        for name, fn in contenders.items():
            elapsed = timed(fn)
            if round_ >= warmup:
                times[name].append(elapsed * 1e3)
        if round_ >= warmup and (round_ - warmup + 1) % 5 == 0:
            medians = "  ".join(f"{n} {statistics.median(t):.1f}" for n, t in times.items())
            print(f"round {round_ - warmup + 1:3d}/{steps} median ms: {medians}", flush=True)
    return times, first


def inductor_cache_counters() -> dict:
    from torch._dynamo.utils import counters

    return {k: int(v) for k, v in counters["inductor"].items() if k.startswith("fxgraph_cache")}


def run(device: str, steps: int, warmup: int) -> dict:
    shapes = bert_base_shapes()
    params = make_params(shapes, device)
    n_params = sum(p.numel() for p in params)
    print(
        f"workload BERT-base: {len(params)} tensors, {n_params / 1e6:.1f}M parameters, fp32, {device}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    medians: dict[str, float] = {}
    all_times: dict[str, list[float]] = {}
    nbytes: dict[str, int] = {}

    # phase 1: fast paths
    fast = {
        "acclip_fused": ACClip(params, **ACCLIP_HPARAMS, fused=True),
        "adamw_fused": torch.optim.AdamW(params, **ADAMW_HPARAMS, fused=True),
    }
    times, first = time_interleaved({n: o.step for n, o in fast.items()}, steps, warmup, device)
    compile_counters = inductor_cache_counters()
    nbytes.update({n: state_bytes(o) for n, o in fast.items()})
    del fast

    # phase 2: foreach paths and the public-style loop
    eager = {
        "acclip_foreach": ACClip(params, **ACCLIP_HPARAMS, foreach=True),
        "adamw_foreach": torch.optim.AdamW(params, **ADAMW_HPARAMS, foreach=True),
        "acclip_public_loop": PublicStyleACClip(params, **ACCLIP_HPARAMS),
    }
    times2, _ = time_interleaved({n: o.step for n, o in eager.items()}, steps, warmup, device)
    times.update(times2)
    nbytes.update({n: state_bytes(o) for n, o in eager.items()})
    del eager

    for name, t in times.items():
        medians[name] = statistics.median(t)
        all_times[name] = t
    compile_s = first["acclip_fused"] - medians["acclip_fused"] / 1e3
    ratios = {
        "acclip_fused_vs_adamw_fused": medians["acclip_fused"] / medians["adamw_fused"],
        "acclip_foreach_vs_adamw_foreach": medians["acclip_foreach"] / medians["adamw_foreach"],
        "public_loop_vs_adamw_foreach": medians["acclip_public_loop"] / medians["adamw_foreach"],
        "public_loop_vs_acclip_foreach": medians["acclip_public_loop"] / medians["acclip_foreach"],
        "acclip_fused_vs_adamw_foreach": medians["acclip_fused"] / medians["adamw_foreach"],
    }
    state_ratio = {
        "acclip_foreach_vs_adamw_foreach": nbytes["acclip_foreach"] / nbytes["adamw_foreach"],
        "acclip_fused_vs_adamw_fused": nbytes["acclip_fused"] / nbytes["adamw_fused"],
        "public_loop_vs_adamw_foreach": nbytes["acclip_public_loop"] / nbytes["adamw_foreach"],
    }
    for name, value in medians.items():
        print(f"median {name:<22s} {value:9.1f} ms/step", flush=True)
    for name, value in ratios.items():
        print(f"ratio  {name:<34s} {value:6.2f}x", flush=True)
    for name, value in state_ratio.items():
        print(f"state-bytes ratio {name:<32s} {value:.4f}", flush=True)
    print(
        f"one-time compile cost (acclip fused, first step minus median) {compile_s:.1f} s; "
        f"inductor cache {compile_counters}",
        flush=True,
    )
    return {
        "workload": {
            "model": "BertForPreTraining(BertConfig())",
            "tensors": len(params),
            "parameters": n_params,
            "dtype": "float32",
            "device": device,
            "threads": torch.get_num_threads(),
        },
        "method": {"steps": steps, "warmup_rounds": warmup, "statistic": "median", "order": "interleaved"},
        "hparams": {"acclip": ACCLIP_HPARAMS, "adamw": ADAMW_HPARAMS},
        "median_ms": medians,
        "step_ms": all_times,
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
    parser.add_argument(
        "--steps", type=int, default=20, help="timed steps per contender (>= 20 for the report)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds after the first step")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config) if args.config else {}
    device = pick_device(args.device, args.threads, "optim")
    result = run(device, args.steps, args.warmup)
    write_result(args.out, result, cfg)


if __name__ == "__main__":
    main()
