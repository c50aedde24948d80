"""The GPU check of the CUDA-only paths: `bash workflow/scripts/gpu_check.sh` (about 8 minutes on one GPU).

Runs where nothing but the machine's own torch and transformers is installed (no datasets, no Snakemake, no
network): it imports the project from src/ and builds its inputs synthetically. Every section records its
numbers or its error in one JSON file, with the versions it ran on:
  versions     torch, CUDA, transformers, the GPU, the driver
  bert_mfu     BERT-base and BERT-large training steps in bf16 at length 128 with NSP and a padding mask: step
               time, tokens/s and model-FLOPs utilisation against the GPU's bf16 peak
  optimizers   ACClip (fused) / AdamW (fused) on BERT-base shapes (heavytail.bench.optim, on CUDA), and the eager
               paths' ratios
  resume       the engine under torchrun --nproc_per_node 1: SIGTERM mid-run, exit 75, resumed, compared with an
               uninterrupted run (the resume-on-CUDA defect: RNG states mapped to the GPU); fails unless it resumes
               to the same losses (within 1e-4: CUDA's embedding backward is not bitwise deterministic)
  squad        SquadTask.predict, the fine-tuning job's dev predictions, on the GPU under autocast against the same
               model's on the CPU in fp32
`--device cpu --smoke` runs every section at toy size on the CPU (the test suite does, so the script cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

BERT_BASE = {"num_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072,
             "dropout": 0.1, "initializer_range": 0.02}
BERT_LARGE = {"num_layers": 24, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096,
              "dropout": 0.1, "initializer_range": 0.02}
TOY = {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "dropout": 0.1,
       "initializer_range": 0.02}
VOCAB = 30522


def versions() -> dict:
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                    bf16=torch.cuda.is_bf16_supported(), arch_list=torch.cuda.get_arch_list())
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True)
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    return info


def nsp_batch(vocab: int, seq: int, batch: int, predictions: int, device, seed: int = 0) -> dict:
    """A BERT pretraining batch with NSP pairs and padding (a quarter of each row padded), from its own generator."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[:, seq - seq // 4:] = 0
    ids[mask == 0] = 0
    types = torch.zeros(batch, seq, dtype=torch.long)
    types[:, seq // 2:] = 1
    positions = torch.stack([torch.randperm(seq - seq // 4 - 1, generator=g)[:predictions] + 1 for _ in range(batch)])
    return {k: v.to(device) for k, v in {
        "input_ids": ids, "attention_mask": mask, "token_type_ids": types, "masked_positions": positions,
        "masked_labels": torch.randint(5, vocab, (batch, predictions), generator=g),
        "masked_weights": torch.ones(batch, predictions), "next_sentence_label": torch.randint(0, 2, (batch,),
                                                                                              generator=g)}.items()}


def bert_step(arch: dict, seq: int, batch_size: int, steps: int, device: str) -> dict:
    """Median training-step time of our pretraining BERT (NSP on) with fused AdamW, bf16 autocast on CUDA."""
    from heavytail.bench.pretrain import PEAK_BF16_TFLOPS, model_flops_per_token
    from heavytail.device import autocast_context
    from heavytail.models.bert import build_bert

    torch.manual_seed(0)
    model = build_bert(arch, VOCAB, seq, nsp=True).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    batch = nsp_batch(VOCAB, seq, batch_size, max(1, round(0.15 * seq)), device)

    def step():
        with autocast_context(torch.device(device), "auto"):
            loss = model(**batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    achieved = batch_size * seq / seconds * model_flops_per_token(arch, VOCAB, seq)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return {"batch": batch_size, "seq": seq, "step_s": seconds, "tokens_per_s": batch_size * seq / seconds,
            "achieved_tflops": achieved / 1e12, "peak_bf16_tflops": peak,
            "mfu": achieved / (peak * 1e12) if peak else None,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}


def bert_mfu(device: str, smoke: bool) -> dict:
    if smoke:
        return {"toy": bert_step(TOY, 16, 4, 2, device)}
    return {"bert_base": bert_step(BERT_BASE, 128, 128, 20, device),
            "bert_large": bert_step(BERT_LARGE, 128, 64, 15, device)}


def optimizers(device: str, smoke: bool) -> dict:
    """ACClip (fused) / AdamW (fused), and the eager paths, through heavytail.bench.optim: on BERT-base shapes,
    or, in the smoke run, the same call on three small tensors and a few rounds."""
    from heavytail.bench import optim

    if smoke:
        result = optim.run(device, rounds=3, eager_rounds=2, warmup=1, shapes=[("toy", torch.Size([64, 64]))] * 3)
    else:
        result = optim.run(device, *optim.DEFAULT_ROUNDS[device], warmup=5)
    result.pop("step_ms", None)  # every round's time: the medians and ratios are the numbers
    return result


# --- the engine under torchrun: SIGTERM, exit 75, resume ----------------------------------------------------

class SyntheticMLM:
    """A BERT pretraining task on seeded random tokens: the engine's Task, with no data files."""

    def __init__(self, arch: dict, seq: int):
        self.arch, self.seq = arch, seq

    def build_model(self):
        from heavytail.models.bert import build_bert

        return build_bert(self.arch, 512, self.seq, nsp=True)

    def train_batches(self, start_step, batch_size, rank, world_size):
        # a pure function of the step, as the real tasks' batches are; never the global RNG, which dropout draws
        # from (the loop prefetches batches in a thread on CUDA)
        step = start_step
        while True:
            yield nsp_batch(512, self.seq, batch_size // world_size, 3, "cpu", seed=10_000 + step)
            step += 1

    def loss(self, model, batch):
        out = model(**batch)
        return out["loss"], {"mlm_loss": out["mlm_loss"]}

    def evaluate(self, model, ctx=None):
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in nsp_batch(512, self.seq, 8, 3, "cpu").items()}
        return {"loss": float(model(**batch)["loss"])}


def engine_worker(out: str, steps: int, gpus: int) -> int:
    """One training run of the engine (the process torchrun starts)."""
    from heavytail.train.distributed import join_job
    from heavytail.train.engine import run_training

    cfg = {"steps": steps, "batch_size": 8, "micro_batch_size": None, "seed": 0, "grad_clip_norm": 1.0,
           "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01}, "weight_decay_exclude_1d": True,
           "schedule": {"warmup_steps": None, "warmup_fraction": 0.1, "decay": "linear", "final_fraction": 0.0,
                        "milestones": [], "gamma": 0.1, "keys": ["lr"]},
           "log_every": 2, "eval_every": steps, "eval_at_start": False, "checkpoint_every": 4, "snapshot_steps": [],
           "device": "auto", "precision": "auto"}
    ctx = join_job("auto", gpus)
    run_training(SyntheticMLM(TOY, 32), cfg, out, ctx)
    return 0


def resume(device: str, smoke: bool) -> dict:
    steps, gpus = (16, 0) if device == "cpu" else (400, 1)
    root = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    cmd = ["torchrun", "--standalone", "--nproc_per_node", "1", "-m", "heavytail.bench.gpu_check", "--worker",
           "--steps", str(steps), "--gpus", str(gpus), "--out"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if subprocess.run([*cmd[:2], "--help"], capture_output=True, text=True).stdout.count("--shutdown-timeout"):
        cmd[1:1] = ["--shutdown-timeout", "110"]
    whole = subprocess.run([*cmd, str(root / "whole")], capture_output=True, text=True, env=env)
    marker = root / "requeue-marker"
    proc = subprocess.Popen([*cmd, str(root / "stopped")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**env, "HEAVYTAIL_REQUEUE_MARKER": str(marker)})
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step ") and int(line.split()[1].split("/")[0]) >= steps // 2:
            proc.send_signal(signal.SIGTERM)
            break
    lines += proc.stdout.read().splitlines(keepends=True)
    first_exit = proc.wait()
    again = subprocess.run([*cmd, str(root / "stopped")], capture_output=True, text=True, env=env)

    def rows(name):
        return [{k: v for k, v in json.loads(line).items() if k != "it_per_s"}
                for line in (root / name / "metrics.jsonl").read_text().splitlines() if line.strip()]

    a, b = rows("whole"), rows("stopped")
    diffs = [abs(x.get("loss", 0) - y.get("loss", 0)) for x, y in zip(a, b, strict=False)]
    resumed_from = next((ln.strip() for ln in again.stdout.splitlines() if ln.startswith("resuming")), None)
    # torchrun reports the worker's exit 75 as 1; the marker says it was a requeue
    found = {"whole_exit": whole.returncode, "sigterm_exit": first_exit, "requeue_marked": marker.is_file(),
             "resumed_exit": again.returncode, "resumed_from": resumed_from, "rows_equal": a == b,
             "max_loss_difference": max(diffs) if diffs else None, "rows": len(a), "rows_resumed": len(b),
             "errors": [out.stderr[-2000:] for out in (whole, again) if out.returncode]}
    # CUDA's embedding backward adds with atomics, so a GPU run need not be bitwise equal even uninterrupted
    passed = (whole.returncode == 0 and first_exit != 0 and marker.is_file() and again.returncode == 0
              and resumed_from is not None and len(a) == len(b) > 0 and max(diffs) <= 1e-4)
    if not passed:
        raise AssertionError(f"the stopped run did not resume to the uninterrupted one's metrics: {found}")
    return found


def squad(device: str, smoke: bool) -> dict:
    """The fine-tuning job's dev predictions (`SquadTask.predict`, as `final_predictions` calls it) of one QA
    model on synthetic windows: on `device` under the run's autocast, and on the CPU in fp32."""
    from transformers import BertForQuestionAnswering

    from heavytail.device import autocast_context
    from heavytail.models.bert import bert_config
    from heavytail.train.distributed import DistContext
    from heavytail.train.squad_task import SquadTask

    arch, windows, seq, question = (TOY, 8, 384, 24) if smoke else (BERT_BASE, 256, 384, 24)
    words = [f"w{j}" for j in range(seq)]
    context = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:j]) for j in range(seq)]
    # the first tokens are the question's ([CLS] + question + [SEP]): no answer starts there
    offsets = [[-1, -1] if j < question else [starts[j], starts[j] + len(words[j])] for j in range(seq)]
    ids = torch.randint(5, VOCAB, (windows, seq), generator=torch.Generator().manual_seed(0))
    features = {"input_ids": ids, "token_type_ids": (torch.arange(seq) >= question).long().expand(windows, seq),
                "attention_mask": torch.ones_like(ids), "start_positions": torch.zeros(windows, dtype=torch.long),
                "end_positions": torch.zeros(windows, dtype=torch.long),
                "example_id": [f"q{i}" for i in range(windows)], "offset_mapping": [offsets] * windows,
                "max_context": [[True] * seq] * windows}
    examples = {"id": features["example_id"], "context": [context] * windows,
                "answers": [{"text": [words[question]], "answer_start": [starts[question]]}] * windows}
    task = SquadTask(features, examples, features, init_from="unused", eval_batch_size=64)
    torch.manual_seed(0)
    model = BertForQuestionAnswering(bert_config(arch, VOCAB, seq)).eval()

    def predictions(dev: str):
        model.to(dev)
        with torch.no_grad(), autocast_context(torch.device(dev), "auto"):
            start = time.perf_counter()
            found = task.predict(model, DistContext(device=torch.device(dev)))
            return found, time.perf_counter() - start

    on_device, seconds = predictions(device)
    on_cpu, cpu_seconds = predictions("cpu")
    agree = sum(on_device[k] == on_cpu[k] for k in on_cpu) / len(on_cpu)
    return {"windows": windows, "seq": seq, "device_s": seconds, "cpu_s": cpu_seconds,
            "device_windows_per_s": windows / seconds, "prediction_agreement": agree}


SECTIONS = {"versions": lambda d, s: versions(), "bert_mfu": bert_mfu, "optimizers": optimizers, "resume": resume,
            "squad": squad}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the JSON file (with --worker: the run folder)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="every section at toy size (the test suite's run)")
    parser.add_argument("--only", nargs="*", default=list(SECTIONS), help="sections to run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return engine_worker(args.out, args.steps, args.gpus)
    result = {"machine": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": args.device,
              "smoke": args.smoke, "sections": {}}
    for name in args.only:
        start = time.perf_counter()
        try:
            value = SECTIONS[name](args.device, args.smoke)
            result["sections"][name] = {"ok": True, "seconds": round(time.perf_counter() - start, 1), **(
                value if isinstance(value, dict) else {"value": value})}
        except Exception as exc:  # record and go on: the other sections' numbers still come back
            result["sections"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                        "traceback": traceback.format_exc()[-3000:]}
        print(f"{name}: {json.dumps(result['sections'][name], default=str)[:400]}", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0 if all(s["ok"] for s in result["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
