"""The step loop behind `heavytail.train.engine.run_training`: one optimizer step, logging, eval, checkpoints."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from heavytail.batches import split_batch, to_device
from heavytail.device import autocast_context
from heavytail.errors import ConfigError
from heavytail.train.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from heavytail.train.distributed import DistContext
from heavytail.train.optimization import build_optimizer_for, warmup_steps_of
from heavytail.train.records import comparable, write_metrics
from heavytail.train.schedule import WarmupDecaySchedule
from heavytail.train.signals import EXIT_REQUEUE, Requeue, StopRequest


class TrainingLoop:
    def __init__(self, task, cfg: dict, out: Path, ctx: DistContext, stop: StopRequest):
        self.task, self.cfg, self.out, self.ctx, self.stop = task, cfg, out, ctx, stop
        self.total = cfg["steps"]
        world = ctx.world_size
        if cfg["batch_size"] % world:
            raise ConfigError(f"train.batch_size {cfg['batch_size']} must be divisible by the number of "
                              f"processes ({world})")
        local = cfg["batch_size"] // world
        micro = cfg["micro_batch_size"] or local
        if local % micro:
            raise ConfigError(f"train.micro_batch_size {micro} must divide the per-process batch {local}")
        self.accumulation = local // micro
        self.model = task.build_model().to(ctx.device)
        self.optimizer = build_optimizer_for(self.model, cfg)
        sched = cfg["schedule"]
        self.schedule = WarmupDecaySchedule(
            self.optimizer, self.total, warmup_steps_of(cfg), sched["decay"], sched["final_fraction"],
            sched["milestones"], sched["gamma"], tuple(sched["keys"]))
        self.ddp = (DistributedDataParallel(self.model, device_ids=[ctx.local_rank] if ctx.device.type == "cuda"
                                            else None) if ctx.distributed else None)
        self.step = 0
        self.rows: list[dict] = []
        self.interval = self._fresh_interval()
        self.snapshot_steps = {int(s) for s in cfg["snapshot_steps"]}

    # --- state ---------------------------------------------------------------------------------------------
    @staticmethod
    def _fresh_interval() -> dict:
        return {"steps": 0, "loss": 0.0, "grad_norm": 0.0, "stats": {}}

    def _payload(self) -> dict:
        return {
            "step": self.step,
            "data_position": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "rng": self.ctx.all_gather_objects(rng_state()),
            "world_size": self.ctx.world_size,
            "metrics_rows": self.rows,
            "interval": self.interval,
            "config": self.cfg,
        }

    def save(self) -> None:
        payload = self._payload()  # every rank joins the RNG gather; rank 0 writes
        if self.ctx.is_main:
            save_checkpoint(self.out / CHECKPOINT_NAME, payload)
        self.ctx.barrier()

    def restore(self) -> bool:
        state = load_checkpoint(self.out / CHECKPOINT_NAME, map_location=self.ctx.device)
        if state is None:
            return False
        if comparable(state["config"]) != comparable(self.cfg):
            # the recipe changed (Snakemake reruns a job whose params changed): start over, keeping the old
            # checkpoint aside rather than resuming a different run or refusing to run
            stale = self.out / f"stale-{CHECKPOINT_NAME}"
            if self.ctx.is_main:
                (self.out / CHECKPOINT_NAME).replace(stale)
                print(f"{self.out / CHECKPOINT_NAME} was written with a different config: moved it to "
                      f"{stale.name} and starting from step 0", flush=True)
            self.ctx.barrier()
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.step, self.rows, self.interval = state["step"], state["metrics_rows"], state["interval"]
        rngs = state["rng"]
        if state["world_size"] == self.ctx.world_size:
            set_rng_state(rngs[self.ctx.rank])
        else:
            torch.manual_seed(int(self.cfg["seed"]) + 7919 * self.ctx.rank + self.step)
        return True

    # --- one step -------------------------------------------------------------------------------------------
    def _forward_backward(self, batch) -> tuple[float, dict]:
        module = self.ddp or self.model
        micro_batches = split_batch(batch, self.accumulation)
        loss_total, stats_total = 0.0, {}
        for i, micro in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = contextlib.nullcontext() if (last or self.ddp is None) else self.ddp.no_sync()
            with sync, autocast_context(self.ctx.device, self.cfg["precision"]):
                loss, stats = self.task.loss(module, micro)
            with sync:
                (loss / self.accumulation).backward()
            loss_total += float(loss.detach()) / self.accumulation
            for key, value in stats.items():
                stats_total[key] = stats_total.get(key, 0.0) + float(value) / self.accumulation
        return loss_total, stats_total

    def _grad_norm(self) -> float:
        max_norm = self.cfg["grad_clip_norm"]
        params = [p for p in self.model.parameters() if p.grad is not None]
        # clip_grad_norm_ returns the pre-clip norm; with max_norm=inf it only measures
        norm = torch.nn.utils.clip_grad_norm_(params, float("inf") if max_norm is None else float(max_norm))
        return float(norm)

    def _agree(self, loss: float, stats: dict, nonfinite: bool) -> tuple[float, dict, bool, bool]:
        """Average loss/stats over ranks and agree on divergence and stop requests (one all-reduce)."""
        if not self.ctx.distributed:
            return loss, stats, nonfinite, self.stop.requested
        keys = sorted(stats)
        packed = torch.tensor([loss, float(nonfinite), float(self.stop.requested)] + [stats[k] for k in keys],
                              dtype=torch.float64, device=self.ctx.device)
        self.ctx.all_reduce_sum(packed)
        world = self.ctx.world_size
        values = packed.tolist()
        return (values[0] / world, {k: v / world for k, v in zip(keys, values[3:], strict=True)},
                values[1] > 0 or not math.isfinite(values[0]), values[2] > 0)

    # --- logging --------------------------------------------------------------------------------------------
    def _log_interval(self, elapsed: float) -> None:
        n = self.interval["steps"]
        row = {"split": "train", "step": self.step, "loss": self.interval["loss"] / n,
               "lr": self.schedule.current("lr"), "grad_norm": self.interval["grad_norm"] / n,
               "it_per_s": n / elapsed if elapsed > 0 else float("nan")}
        row.update({k: v / n for k, v in self.interval["stats"].items()})
        self.rows.append(row)
        if self.ctx.is_main:
            print(f"step {self.step}/{self.total} loss {row['loss']:.3f} lr {row['lr']:.1e} "
                  f"gnorm {row['grad_norm']:.2f} {row['it_per_s']:.1f} it/s", flush=True)
            write_metrics(self.out, self.rows)
        self.interval = self._fresh_interval()

    def _evaluate(self) -> dict:
        metrics = {}
        if self.ctx.is_main:
            self.model.eval()
            with torch.no_grad(), autocast_context(self.ctx.device, self.cfg["precision"]):
                metrics = {k: float(v) for k, v in self.task.evaluate(self.model).items()}
            self.model.train()
            row = {"split": "validation", "step": self.step, **metrics}
            self.rows.append(row)
            shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            print(f"eval step {self.step}/{self.total} {shown}", flush=True)
            write_metrics(self.out, self.rows)
        return metrics

    def _snapshot(self) -> None:
        if self.ctx.is_main:
            save_checkpoint(self.out / "snapshots" / f"step{self.step}.pt",
                            {"step": self.step, "model": self.model.state_dict(), "config": self.cfg})

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.restore()
        if self.ctx.is_main:
            print(f"{'resuming at' if resumed else 'starting'} step {self.step}/{self.total} "
                  f"(world size {self.ctx.world_size}, accumulation {self.accumulation}, device "
                  f"{self.ctx.device})", flush=True)
        self.model.train()
        if self.step == 0:
            if 0 in self.snapshot_steps:
                self._snapshot()
            if cfg["eval_at_start"]:
                self._evaluate()
        batches = self.task.train_batches(self.step, cfg["batch_size"], self.ctx.rank, self.ctx.world_size)
        tick = time.perf_counter()
        diverged_at = None
        while self.step < self.total:
            batch = to_device(next(batches), self.ctx.device)
            loss, stats = self._forward_backward(batch)
            grad_norm = self._grad_norm()
            nonfinite = not (math.isfinite(loss) and math.isfinite(grad_norm))
            loss, stats, nonfinite, stop = self._agree(loss, stats, nonfinite)
            if nonfinite:
                diverged_at = self.step + 1
                break
            self.optimizer.step()
            self.schedule.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self._accumulate(loss, grad_norm, stats)
            if self.step % cfg["log_every"] == 0 or self.step == self.total:
                self._log_interval(time.perf_counter() - tick)
                tick = time.perf_counter()
            if self.step % cfg["eval_every"] == 0 or self.step == self.total:
                self._evaluate()
            if self.step in self.snapshot_steps:
                self._snapshot()
            if self.step % cfg["checkpoint_every"] == 0 or self.step == self.total or stop:
                self.save()
            if stop and self.step < self.total:
                if self.ctx.is_main:
                    print(f"stop requested: checkpoint at step {self.step}, exiting {EXIT_REQUEUE} "
                          "to be requeued", flush=True)
                    sys.stdout.flush()
                raise Requeue()
        return self._finish(diverged_at)

    def _accumulate(self, loss: float, grad_norm: float, stats: dict) -> None:
        self.interval["steps"] += 1
        self.interval["loss"] += loss
        self.interval["grad_norm"] += grad_norm
        for key, value in stats.items():
            self.interval["stats"][key] = self.interval["stats"].get(key, 0.0) + value

    def _finish(self, diverged_at: int | None) -> dict:
        status = "diverged" if diverged_at is not None else "ok"
        final_row = {"split": "status", "step": self.step, "status": status, "diverged_at_step": diverged_at}
        self.rows.append(final_row)
        validation = [r for r in self.rows if r["split"] == "validation"]
        if self.ctx.is_main:
            if diverged_at is not None:
                print(f"diverged at step {diverged_at}/{self.total}: non-finite loss or gradient", flush=True)
            write_metrics(self.out, self.rows)
            if hasattr(self.task, "on_finish") and diverged_at is None:
                self.task.on_finish(self.model, self.out)
        self.ctx.barrier()
        return {"status": status, "diverged_at_step": diverged_at, "steps_completed": self.step,
                "final_validation": validation[-1] if validation else None}
