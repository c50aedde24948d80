"""SQuAD v1.1 fine-tuning as an engine Task: a BERT/RoFormer QA model from a pretrained encoder, EM/F1 on dev."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from heavytail.data.squad import postprocess_predictions, references
from heavytail.errors import ConfigError
from heavytail.io import read_json
from heavytail.metrics import squad_v1
from heavytail.train.checkpoint import CHECKPOINT_NAME, load_checkpoint

MODEL_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")
# the QA class of each encoder type a pretraining run or a Hugging Face folder can hold
QA_CLASSES = {"bert": "BertForQuestionAnswering", "roformer": "RoFormerForQuestionAnswering"}


def load_qa_model(init_from: str, pretrained: bool = True):
    """A question-answering model whose encoder comes from `init_from`; the span head is freshly initialised.
    With `pretrained=False`, the encoder too (the random-encoder control): `init_from`'s architecture and
    vocabulary, none of its weights.

    `init_from` is one of: a pretraining run folder (or its checkpoint.pt) of `heavytail.train.pretrain`, a
    folder in Hugging Face format (config.json + weights), or a model name in the Hugging Face cache
    (bert-base-uncased, bert-large-uncased). The class follows the encoder: BertForQuestionAnswering for
    absolute positions, RoFormerForQuestionAnswering for rotary ones.
    """
    from heavytail.models.rotary import use_sdpa_attention

    # RoFormer's eager attention -> SDPA (BERT has it)
    return use_sdpa_attention(_load_qa_model(init_from, pretrained))


def _load_qa_model(init_from: str, pretrained: bool):
    path = Path(init_from)
    run_dir = path.parent if path.name == CHECKPOINT_NAME else path
    if (run_dir / CHECKPOINT_NAME).is_file():
        return _from_pretraining_run(run_dir, pretrained)
    if path.is_dir() and (path / "config.json").is_file():
        return _from_hf(str(path), init_from, pretrained)
    if path.exists() or init_from.startswith((".", "/")) or init_from.count("/") > 1:
        raise ConfigError(f"squad init_from: {init_from} is neither a pretraining run (checkpoint.pt) nor a "
                          "Hugging Face model folder (config.json); run the pretraining stage first")
    try:
        return _from_hf(init_from, init_from, pretrained)
    except OSError as exc:
        raise ConfigError(f"squad init_from: {init_from!r} is not in the Hugging Face cache under paths.hf_home "
                          f"(download it there on a machine with internet first): {exc}") from exc


def _from_hf(source: str, init_from: str, pretrained: bool):
    """The QA class of a Hugging Face model's type (bert or roformer), loaded with its encoder weights."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    if config.model_type not in QA_CLASSES:
        raise ConfigError(f"squad init_from: {init_from} is a {config.model_type!r} model; SQuAD fine-tunes "
                          f"{' or '.join(QA_CLASSES)} encoders")
    qa_class = _qa_class(config.model_type)
    return qa_class.from_pretrained(source) if pretrained else qa_class(config)


def _qa_class(model_type: str):
    import transformers

    return getattr(transformers, QA_CLASSES[model_type])


def _from_pretraining_run(run_dir: Path, pretrained: bool):
    """Rebuild the pretraining architecture from the run's resolved config and copy its encoder weights."""
    from heavytail.models.bert import ENCODER_PREFIX, POSITION_TABLE, encoder_config, position_embedding_of

    config_path = run_dir / "resolved_config.json"
    if not config_path.is_file():
        raise ConfigError(f"{config_path} is missing: the pretraining run's resolved config names its architecture")
    job = read_json(config_path)
    if job.get("variant", "attention") != "attention":
        raise ConfigError(f"{run_dir} is a {job['variant']!r} variant; SQuAD fine-tunes the attention model")
    from heavytail.train.mlm_task import bert_arch

    arch = bert_arch(job, job["model"])
    kind = position_embedding_of(arch, job["model"])
    prefix = ENCODER_PREFIX[kind]
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)["model"]
    vocab = state[f"{prefix}.embeddings.word_embeddings.weight"].shape[0]
    max_positions = state[POSITION_TABLE[kind]].shape[0]
    config = encoder_config({**arch, "max_position_embeddings": max_positions}, vocab, max_positions, job["model"])
    model = _qa_class(config.model_type)(config)
    if not pretrained:
        return model
    encoder = {k: v for k, v in state.items() if k.startswith(f"{prefix}.") and not k.startswith(f"{prefix}.pooler.")}
    missing, unexpected = model.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith("qa_outputs.") for k in missing):
        raise ConfigError(f"{run_dir / CHECKPOINT_NAME}: encoder weights do not fit {type(model).__name__} "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


class SquadTask:
    """Task for the engine: shuffled training windows, span cross-entropy, EM/F1 of the dev predictions."""

    def __init__(self, train_features, dev_examples, dev_features, init_from: str, seed: int = 0,
                 eval_batch_size: int = 64, n_best_size: int = 20, max_answer_length: int = 30,
                 random_encoder: bool = False):
        self.init_from, self.seed, self.eval_batch_size = init_from, seed, eval_batch_size
        self.random_encoder = random_encoder
        self.n_best_size, self.max_answer_length = n_best_size, max_answer_length
        columns = (*MODEL_COLUMNS, "start_positions", "end_positions")
        self.train = {k: torch.as_tensor(np.asarray(train_features[k]), dtype=torch.long) for k in columns}
        self.dev_examples = dev_examples
        # python lists once: per-row access into an arrow column would decode it again every time
        self.dev_features = {k: list(dev_features[k]) for k in ("example_id", "offset_mapping", "max_context")}
        self.dev_inputs = {k: torch.as_tensor(np.asarray(dev_features[k]), dtype=torch.long) for k in MODEL_COLUMNS}
        self.references = references(dev_examples)
        self.last_predictions: dict[str, str] | None = None

    @property
    def train_windows(self) -> int:
        return len(self.train["input_ids"])

    def build_model(self):
        model = load_qa_model(self.init_from, pretrained=not self.random_encoder)
        if model.config.max_position_embeddings < self.train["input_ids"].shape[1]:
            raise ConfigError(f"squad.max_seq_length {self.train['input_ids'].shape[1]} exceeds the model's "
                              f"{model.config.max_position_embeddings} positions")
        return model

    def _rows(self, step: int, batch_size: int) -> np.ndarray:
        """Rows of the global batch of `step`: consecutive slices of per-epoch seeded permutations."""
        n = self.train_windows
        stream = np.arange(step * batch_size, (step + 1) * batch_size)
        rows = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(stream // n):
            order = np.random.default_rng([self.seed, int(epoch)]).permutation(n)
            hit = stream // n == epoch
            rows[hit] = order[stream[hit] % n]
        return rows

    def train_batches(self, start_step: int, batch_size: int, rank: int, world_size: int):
        share = batch_size // world_size
        for step in itertools.count(start_step):
            rows = torch.as_tensor(self._rows(step, batch_size)[rank * share:(rank + 1) * share])
            yield {k: v[rows] for k, v in self.train.items()}

    def loss(self, model, batch):
        # transformers' QA loss: mean of the start and end cross-entropies
        return model(**batch).loss, {}

    def predict(self, model, ctx=None) -> dict[str, str]:
        """Dev predictions: each rank's share of the windows on its device (under the loop's autocast), the
        logits gathered in order, then BERT's postprocessing (the same on every rank)."""
        device = next(model.parameters()).device
        rows = len(self.dev_inputs["input_ids"])
        share = ctx.shard(rows) if ctx is not None else range(rows)
        starts, ends = [np.zeros((0, self.dev_inputs["input_ids"].shape[1]), np.float32)], []
        ends.append(starts[0])
        for first in range(share.start, share.stop, self.eval_batch_size):
            last = min(first + self.eval_batch_size, share.stop)
            part = {k: v[first:last].to(device) for k, v in self.dev_inputs.items()}
            out = model(**part)
            starts.append(out.start_logits.float().cpu().numpy())
            ends.append(out.end_logits.float().cpu().numpy())
        start_logits, end_logits = np.concatenate(starts), np.concatenate(ends)
        if ctx is not None and ctx.distributed:
            pieces = ctx.all_gather_objects((start_logits, end_logits))  # contiguous shards, rank order
            start_logits = np.concatenate([p[0] for p in pieces])
            end_logits = np.concatenate([p[1] for p in pieces])
        return postprocess_predictions(self.dev_examples, self.dev_features, start_logits, end_logits,
                                       self.n_best_size, self.max_answer_length)

    def evaluate(self, model, ctx=None) -> dict[str, float]:
        self.last_predictions = self.predict(model, ctx)
        return squad_v1(self.last_predictions, self.references)
