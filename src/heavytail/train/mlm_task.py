"""BERT masked-LM pretraining as an engine Task, and the resolution of a pretrain job config into engine config."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from heavytail.data.frequency import frequency_groups as frequency_groups_of
from heavytail.data.frequency import token_counts
from heavytail.data.mlm import (
    MaskingSpec,
    MLMBatches,
    context_free_loss,
    fixed_validation,
    load_meta,
    load_split,
    prepare_mlm_data,
    unigram_loss,
)
from heavytail.errors import ConfigError
from heavytail.io import content_digest, read_json
from heavytail.models.bert import build_bert
from heavytail.train.group_loss import GroupLoss

PRELOAD_MAX_TOKENS = 200_000_000  # below this the training split is read into memory once


class MLMData:
    """Packed splits, masking spec, fixed validation set and the two floors (unigram, context-free)."""

    def __init__(self, data_dir: str | Path, mask_probability: float = 0.15, max_predictions: int = 20,
                 validation_sequences: int | None = None):
        self.dir = Path(data_dir)
        self.meta = load_meta(self.dir)
        self.spec = MaskingSpec.from_meta(self.meta, mask_probability, max_predictions)
        tokens = self.meta["splits"]["train"]["tokens"]
        self.train = load_split(self.dir, "train", preload=tokens <= PRELOAD_MAX_TOKENS)
        self.validation = fixed_validation(load_split(self.dir, "validation"), self.spec, validation_sequences)
        counts = np.load(self.dir / "unigram_counts.npy")
        self.unigram_loss = unigram_loss(counts, self.validation["masked_labels"], self.validation["masked_weights"])
        self.context_free_loss = context_free_loss(counts, self.validation, self.spec.mask_id)

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def max_seq_length(self) -> int:
        return int(self.meta["max_seq_length"])


def _phase(cfg: dict, long: bool) -> tuple[str, int, int]:
    """(data folder key, sequence length, prediction cap) of the first phase or of the long phase."""
    if long:
        phase = cfg["long_phase"]
        return "long_mlm_data", int(phase["max_seq_length"]), int(phase["max_predictions_per_seq"])
    return "mlm_data", int(cfg["max_seq_length"]), int(cfg["max_predictions_per_seq"])


def ensure_mlm_data(cfg: dict) -> None:
    """Prepare `cfg["mlm_data"]` (and the long phase's `long_mlm_data`) from `corpus` + `tokenizer` where missing
    (run on one process only)."""
    for long in (False, True) if cfg.get("long_phase") else (False,):
        key, length, _ = _phase(cfg, long)
        data_dir = Path(cfg[key])
        if not (data_dir / "meta.json").is_file():
            if not cfg.get("corpus") or not cfg.get("tokenizer"):
                raise ConfigError(f"{data_dir}/meta.json is missing; pass `corpus` and `tokenizer` folders in the "
                                  "config (or run the prepare_mlm_data rule) to build it")
            prepare_mlm_data(cfg["corpus"], cfg["tokenizer"], data_dir, length, nsp=bool(cfg["nsp"]),
                             seed=int(cfg["data_seed"]))


def load_mlm_data(cfg: dict, long: bool = False) -> MLMData:
    """The prepared data of the first phase (`mlm_data`) or of the long phase (`long_mlm_data`), checked against
    the config's sequence length and NSP switch."""
    key, length, predictions = _phase(cfg, long)
    data_dir = Path(cfg[key])
    data = MLMData(data_dir, float(cfg["mask_probability"]), predictions, cfg["validation_sequences"])
    if data.max_seq_length != length or bool(data.meta["nsp"]) != bool(cfg["nsp"]):
        raise ConfigError(f"{data_dir} was prepared with max_seq_length {data.max_seq_length}, nsp "
                          f"{data.meta['nsp']}; delete it to rebuild for the config's values")
    return data


def long_phase_of(cfg: dict, steps: int) -> tuple[int, MLMData] | None:
    """(the step the long phase starts at, its data) for a run of `steps`, or None without a long phase."""
    phase = cfg.get("long_phase")
    if not phase:
        return None
    return steps - int(round(float(phase["fraction"]) * steps)), load_mlm_data(cfg, long=True)


class MLMPretrainTask:
    """Task for the engine: BERT of `arch` (either position kind), Devlin-masked batches, validation MLM loss.

    `model_name` is the architecture's key under pretrain.models, named by configuration errors. With
    `frequency_groups` = G, every training step also logs the MLM loss of G token-frequency groups
    (heavytail.data.frequency: equal shares of the training tokens), read from the loss the step computes anyway.
    """

    def __init__(self, data: MLMData, arch: dict, nsp: bool = False, variant: str = "attention", seed: int = 0,
                 eval_batch_size: int = 128, export_hf: bool = True, model_name: str | None = None,
                 frequency_groups: int | None = None, long_phase: tuple[int, MLMData] | None = None):
        self.data, self.arch, self.nsp, self.variant = data, arch, nsp, variant
        self.seed, self.eval_batch_size, self.export_hf = seed, eval_batch_size, export_hf
        self.model_name = model_name
        # (first step of the long phase, its data): BERT's second phase, on longer sequences
        self.long_phase = long_phase
        self.group_loss = None
        if frequency_groups:
            groups = frequency_groups_of(token_counts(data.dir), int(frequency_groups))
            self.group_loss = GroupLoss(groups)

    def build_model(self):
        longest = max([self.data.max_seq_length] + ([self.long_phase[1].max_seq_length] if self.long_phase else []))
        return build_bert(self.arch, self.data.vocab_size, longest, self.nsp, self.variant, name=self.model_name)

    def train_batches(self, start_step: int, batch_size: int, rank: int, world_size: int):
        first = MLMBatches(self.data.train, self.data.spec, self.seed)
        switch, long = (self.long_phase[0], MLMBatches(self.long_phase[1].train, self.long_phase[1].spec, self.seed)) \
            if self.long_phase else (None, None)
        for step in itertools.count(start_step):
            source = long if switch is not None and step >= switch else first
            # each rank reads and masks only its rows of the step's global batch
            yield to_tensors(source.batch(step, batch_size, rank, world_size))

    def loss(self, model, batch):
        out = model(**batch)
        stats = {"mlm_loss": out["mlm_loss"], "mlm_accuracy": out["mlm_correct"] / out["mlm_count"]}
        if "nsp_loss" in out:
            stats["nsp_loss"] = out["nsp_loss"]
        if self.group_loss is not None:
            stats.update(self.group_loss.stats(out["mlm_token_loss"], batch["masked_labels"],
                                               batch.get("masked_weights")))
        return out["loss"], stats

    def evaluate(self, model, ctx=None) -> dict:
        """Validation MLM (and NSP) loss and accuracy at the first phase's length (and, with frequency groups, each
        group's MLM loss there; with a long phase, `mlm_*_long` at its length); under torchrun each rank scores its
        share of the rows."""
        metrics = self._score(model, self.data, ctx, self.group_loss)
        metrics.update(unigram_loss=self.data.unigram_loss, context_free_loss=self.data.context_free_loss)
        if self.long_phase:
            long = self._score(model, self.long_phase[1], ctx)
            metrics.update({f"{k}_long": v for k, v in long.items() if k.startswith("mlm_")})
        return metrics

    def _score(self, model, data: MLMData, ctx, group_loss: GroupLoss | None = None) -> dict:
        device = next(model.parameters()).device
        totals: dict[str, float] = {"mlm_nll": 0.0, "mlm_correct": 0.0, "mlm_count": 0.0, "nsp_nll": 0.0,
                                    "nsp_correct": 0.0, "rows": 0.0}
        if group_loss is not None:
            totals.update(group_loss.zeros())
        rows = len(data.validation["input_ids"])
        share = ctx.shard(rows) if ctx is not None else range(rows)
        for start in range(share.start, share.stop, self.eval_batch_size):
            stop = min(start + self.eval_batch_size, share.stop)
            part = {k: v[start:stop] for k, v in data.validation.items()}
            part_tensors = {k: t.to(device) for k, t in to_tensors(part).items()}
            out = model(**part_tensors)
            n = len(part["input_ids"])
            totals["mlm_nll"] += float(out["mlm_loss"]) * float(out["mlm_count"])
            totals["mlm_correct"] += float(out["mlm_correct"])
            totals["mlm_count"] += float(out["mlm_count"])
            if "nsp_loss" in out:
                totals["nsp_nll"] += float(out["nsp_loss"]) * n
                totals["nsp_correct"] += float(out["nsp_correct"])
            totals["rows"] += n
            if group_loss is not None:
                group_loss.add_to(totals, out["mlm_token_loss"], part_tensors["masked_labels"],
                                       part_tensors["masked_weights"])
        if ctx is not None:
            totals = ctx.sum_values(totals)
        metrics = {"mlm_loss": totals["mlm_nll"] / totals["mlm_count"],
                   "mlm_accuracy": totals["mlm_correct"] / totals["mlm_count"]}
        if self.nsp:
            metrics["nsp_loss"] = totals["nsp_nll"] / totals["rows"]
            metrics["nsp_accuracy"] = totals["nsp_correct"] / totals["rows"]
        if group_loss is not None:  # the loss by token frequency on the fixed validation set
            metrics.update(group_loss.means(totals))
        metrics["loss"] = metrics["mlm_loss"] + metrics.get("nsp_loss", 0.0)
        return metrics

    def on_finish(self, model, out_dir: Path) -> None:
        """Keep the trained weights in Hugging Face format for fine-tuning (QA models read bert.* / roformer.*)."""
        if self.export_hf:
            model.save_pretrained(str(Path(out_dir) / "hf_model"))


def to_tensors(columns: dict) -> dict:
    dtypes = {"masked_weights": torch.float32}
    return {k: torch.as_tensor(np.asarray(v), dtype=dtypes.get(k, torch.long)) for k, v in columns.items()}


def bert_arch(job: dict, model: str) -> dict:
    """The architecture of `model` with the experiment's position embeddings (pretrain.position_embedding)."""
    arch = job["models"][model]
    return {**arch, "position_embedding": job.get("position_embedding") or arch.get("position_embedding", "absolute")}


def resolve_optimizer(cfg: dict) -> dict:
    """The optimizer setting of `cfg["optimizer"]` (a label of `optimizers`), with its tuned choice merged in."""
    label = cfg["optimizer"]
    if label not in cfg["optimizers"]:
        raise ConfigError(f"pretrain.optimizers has no entry {label!r} (entries: {', '.join(cfg['optimizers'])})")
    setting = dict(cfg["optimizers"][label])
    choice_path = cfg.get("tuned_choice")
    if choice_path:
        choice = read_json(choice_path)
        setting.update(choice["hparams"])
    return setting


def train_config(job: dict, optimizer_setting: dict, seed: int, steps: int | None = None) -> dict:
    """The engine's train config of one pretraining run: the `train` section, the optimizer, BERT's recipe
    (its own gradient clipping, no weight decay on 1-D parameters, an evaluation at step 0); `steps` shortens
    the run (tuning), its cadences and warm-up with it."""
    train = dict(job["train"])
    if steps is not None:
        scale = steps / train["steps"]
        train["steps"] = steps
        for key in ("eval_every", "checkpoint_every", "log_every"):
            train[key] = max(1, min(train[key], steps))
        if train["schedule"]["warmup_steps"] is not None:
            train["schedule"] = {**train["schedule"], "warmup_steps": int(round(train["schedule"]["warmup_steps"]
                                                                             * scale))}
    label = job.get("optimizer")
    clip = (job.get("grad_clip_norm") or {}).get(label)
    snapshots = sorted({int(round(f * train["steps"])) for f in job.get("snapshot_fractions") or []})
    train.update(seed=seed, optimizer=optimizer_setting, grad_clip_norm=clip, snapshot_steps=snapshots,
                 weight_decay_exclude_1d=True, eval_at_start=True, task=task_identity(job))
    return train


def task_identity(cfg: dict) -> dict:
    """What the engine cannot see but that changes the run: the architecture, the masking and the data's
    content. A finished run or checkpoint with another identity is not reused (Snakemake reruns the job when
    e.g. a retrained tokenizer changes the data; the engine must then train again, not resume)."""
    data = _data_digest(Path(cfg["mlm_data"]))
    long = cfg.get("long_phase")
    identity = {"model": bert_arch(cfg, cfg["model"]),
                "variant": cfg["variant"], "nsp": bool(cfg["nsp"]),
                "max_seq_length": cfg["max_seq_length"], "mask_probability": cfg["mask_probability"],
                "max_predictions_per_seq": cfg["max_predictions_per_seq"],
                "validation_sequences": cfg["validation_sequences"], "data": data,
                "long_phase": long, "long_data": _data_digest(Path(cfg["long_mlm_data"])) if long else None}
    if cfg.get("frequency_groups"):  # a finished run without the group statistics is not reused
        identity["frequency_groups"] = int(cfg["frequency_groups"])
    return identity


def _data_digest(data_dir: Path) -> str | None:
    meta_path = data_dir / "meta.json"
    meta = read_json(meta_path) if meta_path.is_file() else {}
    return meta.get("content_sha256") or (content_digest(meta_path) if meta else None)
