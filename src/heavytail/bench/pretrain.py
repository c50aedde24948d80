"""Time our pretraining step against the stock transformers model + torch AdamW; tokens/s of each scale's model.

    python -m heavytail.bench.pretrain --config <json> --out results/bench/pretrain.json [--threads N]

The step ratio (ours / stock, goal <= 0.33) is measured for both position kinds on the same weights and
batch: stock is BertForMaskedLM (absolute) or RoFormerForMaskedLM (rotary), which decode every position;
ours runs the last encoder layer and the vocab-sized decoder at the masked positions only (and RoFormer's
attention through SDPA). Contenders alternate one step each per round after warm-up, so drifting load on a
shared machine hits both alike; medians are compared (and the fastest rounds, the least disturbed).
Engine costs: the parts the training engine adds, timed alone (clip_grad_norm_; the registry's AdamW, whose
CPU default is the per-tensor loop, against foreach and fused AdamW). Tokens/s: a few steps of each scale's
pretraining models at their sequence length (small batch on CPU). On CUDA it also reports BERT-base seq-128
bf16 model-FLOPs utilisation (goal >= 40 %).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from heavytail.bench.common import write_result
from heavytail.config import load_job_config
from heavytail.data.mlm import MaskingSpec, mask_tokens
from heavytail.models.bert import build_bert, position_embedding_of

# the probe: where the masked-only head was measured 3x faster than stock
PROBE_SHAPE = {"arch": {"num_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512,
                        "dropout": 0.1}, "vocab": 8192, "seq": 128, "batch": 32}
# issue 17's tiny encoder at the length it pretrains at: where the <= 0.33 goal is judged
TINY_SHAPE = {"arch": {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 256,
                       "dropout": 0.0, "initializer_range": 0.06}, "vocab": 2048, "seq": 128, "batch": 32}
KINDS = ("absolute", "rotary")
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


def _interleaved_times(steps: dict, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each step function per round (one of each per round) after `warmup` rounds."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + rounds):
        for name, step in steps.items():
            seconds = _timed(step)
            if i >= warmup:
                times[name].append(seconds)
    return times


def _training_step(model, optimizer, loss_of, clip: float | None = None):
    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        loss_of().backward()
        if clip is not None:  # as the engine: the global norm, measured every step and clipped when set
            float(torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], clip))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _ours_and_stock(arch: dict, vocab: int, seq: int, batch_size: int):
    from transformers import BertForMaskedLM, RoFormerForMaskedLM

    torch.manual_seed(0)
    ours = build_bert(arch, vocab, seq)
    stock_class = RoFormerForMaskedLM if position_embedding_of(arch) == "rotary" else BertForMaskedLM
    stock = stock_class(ours.config)
    stock.load_state_dict(ours.state_dict())
    batch = synthetic_batch(vocab, seq, batch_size, max(1, round(0.15 * seq)))
    return ours, stock, batch


def step_ratio(arch: dict, vocab: int, seq: int, batch_size: int, rounds: int = 12, warmup: int = 2) -> dict:
    """Median seconds per training step (forward, backward, AdamW) of ours and of the stock masked LM."""
    ours, stock, batch = _ours_and_stock(arch, vocab, seq, batch_size)
    labels = stock_labels(batch)
    adamw = {"lr": 1e-4, "foreach": True}
    times = _interleaved_times({
        "ours": _training_step(ours, torch.optim.AdamW(ours.parameters(), **adamw), lambda: ours(**batch)["loss"]),
        "stock": _training_step(stock, torch.optim.AdamW(stock.parameters(), **adamw),
                                lambda: stock(input_ids=batch["input_ids"], labels=labels).loss),
    }, rounds, warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    # the fastest round is the one other jobs disturbed least: a second view on a shared machine
    fastest = {k: min(v) for k, v in times.items()}
    return {"arch": arch, "position_embedding": position_embedding_of(arch), "stock": type(stock).__name__,
            "vocab": vocab, "seq": seq, "batch": batch_size, "rounds": rounds, "ours_s": med["ours"],
            "stock_s": med["stock"], "ratio": med["ours"] / med["stock"],
            "ratio_of_fastest": fastest["ours"] / fastest["stock"], "goal": 0.33}


def engine_costs(arch: dict, vocab: int, seq: int, batch_size: int, rounds: int = 12, warmup: int = 2) -> dict:
    """What the engine adds to our step: its global-norm measurement/clip and its AdamW (three torch paths).

    The registry's AdamW leaves `foreach` to torch, whose CPU default is the per-tensor loop; each part is
    timed alone on the gradients of one step and compared with the whole step (forward, backward, AdamW).
    """
    from heavytail.optim import build_optimizer
    from heavytail.train.optimization import param_groups

    ours, _, batch = _ours_and_stock(arch, vocab, seq, batch_size)

    def adamw(**extra):  # BERT's recipe as the engine builds it: no weight decay on 1-D parameters
        return build_optimizer("adamw", param_groups(ours, 0.01, True), lr=1e-4, weight_decay=0.01, **extra)

    optimizers = {"adamw_engine_default": adamw(), "adamw_foreach": adamw(foreach=True),
                  "adamw_fused": adamw(fused=True)}
    step = _training_step(ours, optimizers["adamw_foreach"], lambda: ours(**batch)["loss"])
    step_s = statistics.median(_interleaved_times({"step": step}, rounds, warmup)["step"])
    ours(**batch)["loss"].backward()
    params = [p for p in ours.parameters() if p.grad is not None]
    parts = {name: opt.step for name, opt in optimizers.items()}
    parts["clip_grad_norm"] = lambda: float(torch.nn.utils.clip_grad_norm_(params, 1.0))
    med = {k: statistics.median(v) for k, v in _interleaved_times(parts, rounds, warmup).items()}
    return {"arch": arch, "position_embedding": position_embedding_of(arch), "vocab": vocab, "seq": seq,
            "batch": batch_size, "rounds": rounds, "step_s": step_s, "parts_s": med,
            "fraction_of_step": {k: v / step_s for k, v in med.items()}}


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


def _with_threads(threads: int | None, fn, *args, **kwargs):
    if threads:
        torch.set_num_threads(threads)
    return fn(*args, **kwargs)


def in_fresh_process(fn, threads: int | None, *args, **kwargs):
    """`fn(*args, **kwargs)` in a new Python process: the timings then do not depend on what ran before.

    glibc's allocator adapts its mmap threshold to the sizes freed so far, and stock's full-vocabulary logits are
    large: run after the issue-probe shape in one process, the tiny-shape ratios read 0.385 / 0.363 (absolute /
    rotary) against 0.318 / 0.291 in a fresh one (measured once, loaded machine).
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_with_threads, threads, fn, *args, **kwargs).result()


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
    result: dict = {"step_ratio": {}, "engine_costs": {}, "tokens_per_s": {}}
    shapes = {"issue_probe": PROBE_SHAPE, "tiny_shape": TINY_SHAPE}
    tiny = pretrain_sections.get("tiny")
    if tiny:
        shapes["tiny_preset"] = {"arch": {**tiny["models"][tiny["base_model"]],
                                          "position_embedding": tiny.get("position_embedding", "absolute")}, "vocab": vocab_sizes.get("tiny", 8192),
                                 "seq": tiny["max_seq_length"], "batch": tiny["train"]["batch_size"]}
    for shape_name, shape in shapes.items():
        for kind in KINDS:
            entry = in_fresh_process(step_ratio, args.threads, {**shape["arch"], "position_embedding": kind},
                                     shape["vocab"], shape["seq"], shape["batch"], rounds=args.rounds)
            result["step_ratio"][f"{shape_name}/{kind}"] = entry
            print(f"step ratio ({shape_name}, {kind} vs {entry['stock']}): {entry['ratio']:.3f} (medians: ours "
                  f"{entry['ours_s'] * 1e3:.1f} ms, stock {entry['stock_s'] * 1e3:.1f} ms; fastest rounds "
                  f"{entry['ratio_of_fastest']:.3f}; goal <= 0.33)", flush=True)
    for kind in KINDS:
        entry = in_fresh_process(engine_costs, args.threads, {**TINY_SHAPE["arch"], "position_embedding": kind},
                                 TINY_SHAPE["vocab"], TINY_SHAPE["seq"], TINY_SHAPE["batch"], rounds=args.rounds)
        result["engine_costs"][f"tiny_shape/{kind}"] = entry
        print(f"engine costs (tiny_shape, {kind}), ms (share of our {entry['step_s'] * 1e3:.1f} ms step): "
              + ", ".join(f"{k} {v * 1e3:.2f} ({entry['fraction_of_step'][k]:.1%})"
                          for k, v in entry["parts_s"].items()), flush=True)
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
