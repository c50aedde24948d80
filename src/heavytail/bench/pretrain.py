"""Time our pretraining step against stock BertForMaskedLM + torch AdamW; tokens/s of each scale's model.

    python -m heavytail.bench.pretrain --config <json> --out results/bench/pretrain.json [--threads N]

The step ratio (ours / stock, goal <= 0.33) is measured on the same weights and batch: ours gathers the
masked positions before the vocab-sized decoder, stock decodes every position. Contenders alternate one step
each per round after warm-up, so drifting load on a shared machine hits both alike; medians are compared.
Tokens/s: a few steps of each scale's pretraining models at their sequence length (small batch on CPU).
On CUDA it also reports BERT-base seq-128 bf16 model-FLOPs utilisation (goal >= 40 %).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from heavytail.bench.common import write_result
from heavytail.config import load_job_config
from heavytail.data.mlm import MaskingSpec, mask_tokens
from heavytail.models.bert import build_bert

# the probe: where the masked-only head was measured 3x faster than stock
PROBE_SHAPE = {"arch": {"num_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512,
                        "dropout": 0.1}, "vocab": 8192, "seq": 128, "batch": 32}
BERT_BASE = {"num_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072,
             "dropout": 0.1}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def synthetic_batch(vocab: int, seq: int, batch: int, max_predictions: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, size=(batch, seq))
    ids[:, 0], ids[:, -1] = 2, 3
    spec = MaskingSpec(vocab, 4, (0, 1, 2, 3, 4), max_predictions=max_predictions)
    return {k: torch.as_tensor(v) for k, v in mask_tokens(ids, spec, rng).items()}


def stock_labels(batch: dict) -> torch.Tensor:
    labels = torch.full_like(batch["input_ids"], -100)
    rows = torch.arange(len(labels)).unsqueeze(1).expand_as(batch["masked_positions"])
    keep = batch["masked_weights"] > 0
    labels[rows[keep], batch["masked_positions"][keep]] = batch["masked_labels"][keep]
    return labels


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def step_ratio(arch: dict, vocab: int, seq: int, batch_size: int, rounds: int = 12, warmup: int = 2) -> dict:
    """Median seconds per training step (forward, backward, AdamW) of ours and of stock BertForMaskedLM."""
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    ours = build_bert(arch, vocab, seq)
    stock = BertForMaskedLM(ours.config)
    stock.load_state_dict(ours.state_dict())
    batch = synthetic_batch(vocab, seq, batch_size, max(1, round(0.15 * seq)))
    labels = stock_labels(batch)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4, foreach=True)
    opt_stock = torch.optim.AdamW(stock.parameters(), lr=1e-4, foreach=True)

    def step_ours():
        ours(**batch)["loss"].backward()
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)

    def step_stock():
        stock(input_ids=batch["input_ids"], labels=labels).loss.backward()
        opt_stock.step()
        opt_stock.zero_grad(set_to_none=True)

    times = {"ours": [], "stock": []}
    for i in range(warmup + rounds):
        for name, step in (("ours", step_ours), ("stock", step_stock)):
            seconds = _timed(step)
            if i >= warmup:
                times[name].append(seconds)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"arch": arch, "vocab": vocab, "seq": seq, "batch": batch_size, "rounds": rounds,
            "ours_s": med["ours"], "stock_s": med["stock"], "ratio": med["ours"] / med["stock"], "goal": 0.33}


def tokens_per_second(arch: dict, vocab: int, seq: int, batch_size: int, steps: int, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    model = build_bert(arch, vocab, seq).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    batch = {k: v.to(device) for k, v in synthetic_batch(vocab, seq, batch_size, max(1, round(0.15 * seq))).items()}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu",
                                                                                                    enabled=False)

    def step():
        with autocast:
            loss = model(**batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: allocations, lazy optimizer state
    seconds = statistics.median(_timed(step) for _ in range(steps))
    params = sum(p.numel() for p in model.parameters())
    return {"arch": arch, "vocab": vocab, "seq": seq, "batch": batch_size, "steps": steps, "device": device,
            "step_s": seconds, "tokens_per_s": batch_size * seq / seconds, "parameters": params}


def model_flops_per_token(arch: dict, vocab: int, seq: int, mask_fraction: float = 0.15) -> float:
    """Training FLOPs per token: 6 x (encoder matmul weights) + attention scores, + the masked-only decoder."""
    h, layers, ff = arch["hidden_size"], arch["num_layers"], arch.get("intermediate_size", 4 * arch["hidden_size"])
    encoder = layers * (4 * h * h + 2 * h * ff)
    attention = layers * 2 * seq * h
    head = mask_fraction * (h * h + h * vocab)
    return 6.0 * (encoder + attention + head)


def gpu_mfu(steps: int = 20) -> dict | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    result = tokens_per_second(BERT_BASE, 30522, 128, 128, steps, device="cuda")
    achieved = result["tokens_per_s"] * model_flops_per_token(BERT_BASE, 30522, 128)
    result.update(gpu=name, achieved_tflops=achieved / 1e12, peak_bf16_tflops=peak,
                  mfu=achieved / (peak * 1e12) if peak else None, goal=0.40)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="resolved job config with `pretrain_experiments` and `vocab_sizes` per scale")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds of the step-ratio comparison")
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config) if args.config else {}
    if args.threads:
        torch.set_num_threads(args.threads)
    pretrain_sections, vocab_sizes = cfg.get("pretrain_experiments", {}), cfg.get("vocab_sizes", {})
    result: dict = {"step_ratio": {}, "tokens_per_s": {}}
    result["step_ratio"]["issue_probe"] = step_ratio(PROBE_SHAPE["arch"], PROBE_SHAPE["vocab"], PROBE_SHAPE["seq"],
                                                     PROBE_SHAPE["batch"], rounds=args.rounds)
    print(f"step ratio (issue probe shape): {result['step_ratio']['issue_probe']['ratio']:.3f}", flush=True)
    tiny = pretrain_sections.get("tiny")
    if tiny:
        arch = tiny["models"][tiny["base_model"]]
        result["step_ratio"]["tiny_preset"] = step_ratio(arch, vocab_sizes.get("tiny", 8192), tiny["max_seq_length"],
                                                         tiny["train"]["batch_size"], rounds=args.rounds)
        print(f"step ratio (tiny preset): {result['step_ratio']['tiny_preset']['ratio']:.3f}", flush=True)
    for scale, pre in pretrain_sections.items():
        # a few steps on CPU: the tiny models at their batch, bigger ones at batch 2
        names = (pre.get("table2_models") or [pre["base_model"]]) if scale == "tiny" else [pre["base_model"]]
        for name in names:
            batch = pre["train"]["batch_size"] if scale == "tiny" else 2
            steps = 10 if scale == "tiny" else 2
            entry = tokens_per_second(pre["models"][name], vocab_sizes.get(scale, 30522), pre["max_seq_length"],
                                      batch, steps)
            result["tokens_per_s"][f"{scale}/{name}"] = entry
            print(f"tokens/s {scale}/{name}: {entry['tokens_per_s']:.0f} ({entry['step_s']:.3f} s/step, "
                  f"batch {batch})", flush=True)
    result["gpu_mfu"] = gpu_mfu()
    write_result(args.out, result, cfg)


if __name__ == "__main__":
    main()
