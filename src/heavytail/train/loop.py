"""The step loop behind `heavytail.train.engine.run_training`: one optimizer step, logging, eval, checkpoints."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from heavytail.batches import prefetched, to_device
from heavytail.device import autocast_context, grad_scaler
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
from heavytail.train.signals import EXIT_REQUEUE, Requeue, StopRequest, mark_requeue
from heavytail.train.stepping import clip_gradients, forward_backward, settle

# dropout streams of the ranks > 0 under torchrun: rank r is seeded with seed + RANK_SEED_STRIDE * r after every
# rank has built the same initial model (rank 0 keeps the single-process stream)
RANK_SEED_STRIDE = 7919


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
        if ctx.rank > 0:  # the same init everywhere, then each rank its own dropout masks
            torch.manual_seed(int(cfg["seed"]) + RANK_SEED_STRIDE * ctx.rank)
        self.optimizer = build_optimizer_for(self.model, cfg)
        self.scaler = grad_scaler(ctx.device, cfg["precision"])
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
            **({"grad_scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
        }

    def save(self) -> None:
        payload = self._payload()  # every rank joins the RNG gather; rank 0 writes
        if self.ctx.is_main:
            save_checkpoint(self.out / CHECKPOINT_NAME, payload)
        self.ctx.barrier()

    def restore(self) -> bool:
        try:  # on the CPU, whatever the device: the state dicts move their tensors where they belong
            state = load_checkpoint(self.out / CHECKPOINT_NAME)
        except ConfigError as exc:
            return self._set_aside(f"cannot be read safely ({exc})")
        if state is None:
            return False
        if comparable(state["config"]) != comparable(self.cfg):
            # the recipe changed (Snakemake reruns a job whose params changed): start over rather than resume a
            # different run or refuse to run
            return self._set_aside("was written with a different config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.step, self.rows, self.interval = state["step"], state["metrics_rows"], state["interval"]
        rngs = state["rng"]
        if state["world_size"] == self.ctx.world_size:
            set_rng_state(rngs[self.ctx.rank])
        else:
            torch.manual_seed(int(self.cfg["seed"]) + RANK_SEED_STRIDE * self.ctx.rank + self.step)
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])
        return True

    def _set_aside(self, why: str) -> bool:
        """Keep an unusable checkpoint as stale-checkpoint.pt and start from step 0."""
        stale = self.out / f"stale-{CHECKPOINT_NAME}"
        if self.ctx.is_main:
            (self.out / CHECKPOINT_NAME).replace(stale)
            print(f"{self.out / CHECKPOINT_NAME} {why}: moved it to {stale.name} and starting from step 0",
                  flush=True)
        self.ctx.barrier()
        return False

    # --- one step -------------------------------------------------------------------------------------------
    def _step(self, batch):
        """Forward, backward, clip and, unless the step diverged, the optimizer's update; its settled numbers."""
        cfg = self.cfg
        losses, stats = forward_backward(self.task, self.ddp or self.model, batch, self.accumulation, self.ddp,
                                         self.ctx.device, cfg["precision"], self.scaler)
        norm = clip_gradients(self.model, self.optimizer, cfg["grad_clip_norm"], self.scaler)
        outcome = settle(losses, stats, norm, self.accumulation, self.ctx, self.stop.requested,
                         scaled=self.scaler is not None)
        if not outcome.diverged:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)  # skips the update when the scaled gradient overflowed
                self.scaler.update()
            else:
                self.optimizer.step()
            self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return outcome

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
        """Validation on every rank, each on its share of the data; every rank gets the same metrics."""
        self.model.eval()
        with torch.no_grad(), autocast_context(self.ctx.device, self.cfg["precision"]):
            metrics = {k: float(v) for k, v in self.task.evaluate(self.model, self.ctx).items()}
        self.model.train()
        self.rows.append({"split": "validation", "step": self.step, **metrics})
        if self.ctx.is_main:
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
                  f"{self.ctx.device}, {torch.get_num_threads()} threads per process)", flush=True)
        self.model.train()
        if self.step == 0:
            if 0 in self.snapshot_steps:
                self._snapshot()
            if cfg["eval_at_start"]:
                self._evaluate()
        batches = self.task.train_batches(self.step, cfg["batch_size"], self.ctx.rank, self.ctx.world_size)
        if self.ctx.device.type == "cuda":
            # the next batch is built (read, masked, pinned) on the host while the GPU runs this step
            batches = prefetched(batches)
        tick = time.perf_counter()
        diverged_at = None
        while self.step < self.total:
            outcome = self._step(to_device(next(batches), self.ctx.device))
            if outcome.diverged:
                diverged_at = self.step + 1
                break
            stop = outcome.stop
            self.step += 1
            self._accumulate(outcome.loss, outcome.grad_norm, outcome.stats)
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
                    mark_requeue(self.step)
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
