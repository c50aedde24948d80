"""Cost of noise-norm sampling against plain forward+backward passes, and its peak extra memory; write JSON.

    python -m heavytail.bench.noise --out results/bench/noise.json [--device cpu|cuda] [--batches 16]

Workload: a small BERT masked-LM (Hugging Face `BertForMaskedLM`, vocab 8k, 2 layers, hidden 128) on random
token batches. Time: each round runs N plain forward+backward passes (`zero_grad(set_to_none=True)` each) and
then `sample_noise_norms` with n_mean = n_samples = N on the same batches; the ratio compares the medians over
rounds of the noise pass (N noise norms) and of the N plain passes. Goal <= 2.2x. Memory: the peak tensor
memory the sampler adds above the model (CPU profiler allocation events or CUDA peak stats, see
`heavytail.noise.memory`) on batches of 2x16 tokens, over the parameter bytes, with block sums on as
`measure_noise` runs it. Goal <= 3x. A plain forward+backward on the same batches is measured alongside.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from heavytail.bench.common import pick_device, write_result
from heavytail.config import load_job_config
from heavytail.noise.memory import parameter_bytes, peak_extra_bytes
from heavytail.noise.sampler import sample_noise_norms

GOALS = {"time_ratio": 2.2, "memory_ratio": 3.0}
WORKLOAD = {"vocab_size": 8000, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 512, "seq_len": 64, "batch_size": 8}
MEMORY_BATCH = {"batch_size": 2, "seq_len": 16}


def build_workload(device: str, n_batches: int, seed: int = 0):
    """A small BERT masked LM, its loss and `n_batches` random token batches with 15% of positions labelled."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(**{k: v for k, v in WORKLOAD.items() if k not in ("seq_len", "batch_size")},
                        max_position_embeddings=WORKLOAD["seq_len"])
    model = BertForMaskedLM(config).to(device).train()

    def loss_fn(m, batch):
        return m(**batch).loss

    return model, loss_fn, token_batches(device, n_batches, WORKLOAD["batch_size"], WORKLOAD["seq_len"], seed)


def token_batches(device: str, n_batches: int, batch_size: int, seq_len: int, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        ids = torch.randint(0, WORKLOAD["vocab_size"], (batch_size, seq_len), generator=gen)
        labels = torch.where(torch.rand(ids.shape, generator=gen) < 0.15, ids, torch.full_like(ids, -100))
        labels[:, 0] = ids[:, 0]  # at least one labelled position, so no batch has an undefined loss
        batches.append({"input_ids": ids.to(device), "labels": labels.to(device)})
    return batches


def run(device: str, n_batches: int, rounds: int) -> dict:
    model, loss_fn, batches = build_workload(device, n_batches)
    params = parameter_bytes(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"workload small BERT MLM: {n_params / 1e6:.2f}M parameters, {params / 1e6:.1f} MB, batches of "
          f"{WORKLOAD['batch_size']}x{WORKLOAD['seq_len']}, N={n_batches}, {device}", flush=True)

    def plain(batches=batches) -> None:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss_fn(model, batch).backward()
        model.zero_grad(set_to_none=True)

    def sampler(block_size=None):
        return sample_noise_norms(model, loss_fn, batches, n_mean=n_batches, n_samples=n_batches,
                                  block_size=block_size)

    plain()  # warm-up: first passes pay one-time allocation and dispatch costs
    sampler()
    times = {"plain": [], "noise_pass": [], "mean_pass": []}
    for round_ in range(rounds):
        start = _now(device)
        plain()
        times["plain"].append(_now(device) - start)
        seconds = sampler().seconds
        times["noise_pass"].append(seconds["noise_pass"])
        times["mean_pass"].append(seconds["mean_pass"])
        print(f"round {round_ + 1}/{rounds} plain {times['plain'][-1]:.3f} s noise pass "
              f"{times['noise_pass'][-1]:.3f} s mean pass {times['mean_pass'][-1]:.3f} s", flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}

    # memory on a short run with tiny batches: the profiler's bookkeeping would distort the timing above, and
    # activations (which a plain training step needs too) would hide the sampler's own buffers
    half = 4
    small = token_batches(device, 2 * half, MEMORY_BATCH["batch_size"], MEMORY_BATCH["seq_len"], seed=1)
    memory = {"parameter_bytes": params}
    memory["sampler_peak_extra_bytes"], _ = peak_extra_bytes(
        lambda: sample_noise_norms(model, loss_fn, small, n_mean=half, n_samples=half, block_size=2), device)
    memory["sampler_no_block_sums_peak_extra_bytes"], _ = peak_extra_bytes(
        lambda: sample_noise_norms(model, loss_fn, small, n_mean=half, n_samples=half), device)
    memory["plain_peak_extra_bytes"], _ = peak_extra_bytes(lambda: plain(small), device)

    ratios = {"time_noise_pass_over_plain": medians["noise_pass"] / medians["plain"],
              "time_both_passes_over_plain": (medians["noise_pass"] + medians["mean_pass"]) / medians["plain"],
              "memory_sampler_over_params": memory["sampler_peak_extra_bytes"] / params,
              "memory_sampler_no_block_sums_over_params": memory["sampler_no_block_sums_peak_extra_bytes"] / params,
              "memory_plain_over_params": memory["plain_peak_extra_bytes"] / params,
              "memory_sampler_minus_plain_over_params":
                  (memory["sampler_peak_extra_bytes"] - memory["plain_peak_extra_bytes"]) / params}
    for name, value in ratios.items():
        print(f"ratio  {name:<42s} {value:6.2f}x", flush=True)
    print(f"goal time_noise_pass_over_plain <= {GOALS['time_ratio']}x: "
          f"{'met' if ratios['time_noise_pass_over_plain'] <= GOALS['time_ratio'] else 'MISSED'}; "
          f"goal memory_sampler_over_params <= {GOALS['memory_ratio']}x: "
          f"{'met' if ratios['memory_sampler_over_params'] <= GOALS['memory_ratio'] else 'MISSED'}", flush=True)
    return {"workload": {**WORKLOAD, "model": "BertForMaskedLM", "n_parameters": n_params, "n_batches": n_batches,
                         "device": device, "threads": torch.get_num_threads()},
            "method": {"rounds": rounds, "statistic": "median over rounds",
                       "memory": "CPU profiler allocation events" if device == "cpu" else "CUDA peak stats",
                       "memory_run": {"n_mean": half, "n_samples": half, "block_size": 2, **MEMORY_BATCH}},
            "seconds": times, "median_seconds": medians, "ratios": ratios, "memory": memory, "goals": GOALS}


def _now(device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--config", help="resolved job config (JSON string or path); optional")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if available")
    parser.add_argument("--batches", type=int, default=16, help="N: minibatches per pass")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; medians are compared")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config) if args.config else {}
    device = pick_device(args.device, args.threads, "noise")
    result = run(device, args.batches, args.rounds)
    write_result(args.out, result, cfg)


if __name__ == "__main__":
    main()
