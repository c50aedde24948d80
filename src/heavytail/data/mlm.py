"""Masked-LM data: the corpus tokenised and packed into fixed-length sequences, Devlin masking, unigram and
context-free floors.

`prepare_mlm_data` turns the corpus DatasetDict (one row per article: id, title, text) into packed sequences
with `datasets.map` (the arrow files it writes are the cache and the output). Without NSP, articles are joined
with [SEP] and cut into `[CLS] chunk [SEP]` rows of exactly `max_seq_length` tokens. With NSP, rows are
`[CLS] A [SEP] B [SEP]` pairs of sentence runs built per article as in BERT's create_pretraining_data (B is
the true next text half of the time, a random other article's text otherwise), padded to `max_seq_length`.

`MLMBatches` draws the batch of step s as a pure function of (seed, s): an epoch permutation of the rows, then
masking as in Devlin et al. -- round(15 %) of the maskable tokens of each row (capped at
`max_predictions`), of which 80 % become [MASK], 10 % a random token and 10 % stay unchanged. The packed columns
are stored compactly (`heavytail.data.packed`); batches come out as int64, as the model takes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heavytail.data.packed import (
    column_dtypes,
    count_tokens,
    load_split,
    num_rows,
    packed_features,
    take_rows,
)
from heavytail.errors import ConfigError
from heavytail.io import content_digest, read_json, write_json

__all__ = ["MLMBatches", "MaskingSpec", "context_free_loss", "fixed_validation", "load_meta", "load_split",
           "mask_tokens", "prepare_mlm_data", "unigram_loss"]

MAP_BATCH_ARTICLES = 1000
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
META_NAME = "meta.json"


def load_tokenizer(tokenizer_dir: str | Path):
    from transformers import BertTokenizerFast

    path = Path(tokenizer_dir)
    if not path.is_dir():
        raise ConfigError(f"tokenizer folder {path} does not exist (run `snakemake results/<scale>/data/tokenizer`)")
    tokenizer = BertTokenizerFast.from_pretrained(str(path))
    tokenizer.model_max_length = 1 << 30  # whole articles are tokenised, then cut; silence the length warning
    return tokenizer


def _pack_plain(token_lists: list[list[int]], max_seq_length: int, cls_id: int, sep_id: int) -> dict:
    body = max_seq_length - 2
    stream: list[int] = []
    for tokens in token_lists:
        if tokens:
            stream.extend(tokens)
            stream.append(sep_id)
    rows = [[cls_id, *stream[i:i + body], sep_id] for i in range(0, len(stream) - body + 1, body)]
    return {"input_ids": rows}


def _pack_nsp(paragraph_lists: list[list[list[int]]], max_seq_length: int, ids: dict, rng) -> dict:
    """Sentence pairs per article, as in BERT's create_instances_from_document (no short-sequence sampling)."""
    target = max_seq_length - 3
    out = {"input_ids": [], "token_type_ids": [], "attention_mask": [], "next_sentence_label": []}
    docs = [[p for p in doc if p] for doc in paragraph_lists]
    for d, doc in enumerate(docs):
        chunk, length, i = [], 0, 0
        while i < len(doc):
            chunk.append(doc[i])
            length += len(doc[i])
            if i == len(doc) - 1 or length >= target:
                a_end = int(rng.integers(1, len(chunk))) if len(chunk) >= 2 else 1
                first = [t for seg in chunk[:a_end] for t in seg]
                others = [k for k in range(len(docs)) if k != d and docs[k]]
                if (len(chunk) == 1 or rng.random() < 0.5) and others:
                    other = docs[others[int(rng.integers(len(others)))]]
                    start = int(rng.integers(len(other)))
                    second = [t for seg in other[start:] for t in seg][:target]
                    label = 1
                    i -= len(chunk) - a_end  # put back the unused segments, as BERT does
                else:
                    second = [t for seg in chunk[a_end:] for t in seg]
                    label = 0
                while len(first) + len(second) > target:  # trim the longer side, alternating ends
                    longer = first if len(first) > len(second) else second
                    longer.pop(0 if rng.random() < 0.5 else -1)
                if first and second:
                    row = [ids["cls"], *first, ids["sep"], *second, ids["sep"]]
                    types = [0] * (len(first) + 2) + [1] * (len(second) + 1)
                    pad = max_seq_length - len(row)
                    out["input_ids"].append(row + [ids["pad"]] * pad)
                    out["token_type_ids"].append(types + [0] * pad)
                    out["attention_mask"].append([1] * len(row) + [0] * pad)
                    out["next_sentence_label"].append(label)
                chunk, length = [], 0
            i += 1
    return out


def prepare_mlm_data(corpus_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path,
                     max_seq_length: int, nsp: bool = False, seed: int = 0, num_proc: int = 1) -> dict:
    """Tokenise and pack both splits into `out_dir` ({split}.arrow + meta.json); returns the metadata."""
    from datasets import load_from_disk

    if max_seq_length < 8:
        raise ConfigError(f"pretrain.max_seq_length must be >= 8 (got {max_seq_length})")
    corpus_path = Path(corpus_dir)
    if not corpus_path.is_dir():
        raise ConfigError(f"corpus folder {corpus_path} does not exist (run `snakemake results/<scale>/data/corpus`)")
    corpus = load_from_disk(str(corpus_path))
    tokenizer = load_tokenizer(tokenizer_dir)
    ids = {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id, "pad": tokenizer.pad_token_id}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def pack(batch, indices):
        if not nsp:
            tokens = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
            return _pack_plain(tokens, max_seq_length, ids["cls"], ids["sep"])
        # BERT's segments are sentences: a naive split after . ! ? is enough to cut pairs at sentence ends
        paragraphs = [[sent for p in text.split("\n") for sent in SENTENCE_END.split(p) if sent.strip()]
                      for text in batch["text"]]
        flat = tokenizer([p for doc in paragraphs for p in doc], add_special_tokens=False)["input_ids"]
        docs, k = [], 0
        for doc in paragraphs:
            docs.append(flat[k:k + len(doc)])
            k += len(doc)
        return _pack_nsp(docs, max_seq_length, ids, np.random.default_rng([seed, indices[0]]))

    meta = {"max_seq_length": max_seq_length, "nsp": nsp, "seed": seed, "vocab_size": len(tokenizer),
            "special_ids": sorted(set(tokenizer.all_special_ids)), "mask_id": tokenizer.mask_token_id,
            "pad_id": ids["pad"], "tokenizer_dir": str(tokenizer_dir), "splits": {}}
    meta["dtypes"] = column_dtypes(meta["vocab_size"], nsp)
    features = packed_features(meta["dtypes"], max_seq_length)
    for split in ("train", "validation"):
        if split not in corpus:
            raise ConfigError(f"corpus {corpus_path} has no `{split}` split (splits: {', '.join(corpus)})")
        packed = corpus[split].map(pack, batched=True, batch_size=MAP_BATCH_ARTICLES, with_indices=True,
                                   remove_columns=corpus[split].column_names, num_proc=num_proc, features=features,
                                   cache_file_name=str(out / f"{split}.arrow"), desc=f"pack {split}")
        if len(packed) == 0:
            raise ConfigError(f"corpus split {split} is too short for one sequence of {max_seq_length} tokens")
        meta["splits"][split] = {"sequences": len(packed), "tokens": len(packed) * max_seq_length}
        del packed  # its memory map; the counts below read the file in chunks instead
    np.save(out / "unigram_counts.npy", count_tokens(out, "train", meta["vocab_size"]))
    # what the training runs compare before reusing a checkpoint: hashed once here, not at every job start
    meta["content_sha256"] = content_digest(*(out / f"{split}.arrow" for split in ("train", "validation")))
    write_json(out / META_NAME, meta)
    return meta


@dataclass(frozen=True)
class MaskingSpec:
    vocab_size: int
    mask_id: int
    special_ids: tuple[int, ...]
    mask_probability: float = 0.15
    max_predictions: int = 20

    @classmethod
    def from_meta(cls, meta: dict, mask_probability: float = 0.15, max_predictions: int = 20) -> MaskingSpec:
        return cls(meta["vocab_size"], meta["mask_id"], tuple(meta["special_ids"]), mask_probability,
                   max_predictions)


def mask_tokens(input_ids: np.ndarray, spec: MaskingSpec, rng: np.random.Generator) -> dict:
    """Devlin masking of a [batch, length] array with one stream; returns masked inputs and [batch, predictions]
    targets."""
    maskable = ~np.isin(input_ids, spec.special_ids)
    scores = rng.random(input_ids.shape)
    width = _prediction_width(maskable, spec)
    return _masked(input_ids, spec, maskable, scores, rng.random((len(input_ids), width)),
                   rng.integers(0, spec.vocab_size, size=(len(input_ids), width)))


def mask_rows(input_ids: np.ndarray, spec: MaskingSpec, streams: list[list[int]]) -> dict:
    """Devlin masking with one stream per row (`streams[i]` seeds row i): a row's masks depend on that row alone,
    so a batch split over processes is masked exactly as the whole batch is in one process."""
    length, cap = input_ids.shape[1], spec.max_predictions
    scores = np.empty(input_ids.shape)
    action = np.empty((len(input_ids), cap))
    tokens = np.empty((len(input_ids), cap), dtype=np.int64)
    for i, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        scores[i], action[i], tokens[i] = rng.random(length), rng.random(cap), rng.integers(0, spec.vocab_size, cap)
    maskable = ~np.isin(input_ids, spec.special_ids)
    width = _prediction_width(maskable, spec)
    return _masked(input_ids, spec, maskable, scores, action[:, :width], tokens[:, :width])


def _predictions_per_row(maskable: np.ndarray, spec: MaskingSpec) -> np.ndarray:
    per_row = np.minimum(spec.max_predictions,
                         np.maximum(1, np.round(maskable.sum(1) * spec.mask_probability).astype(np.int64)))
    return np.minimum(per_row, maskable.sum(1))


def _prediction_width(maskable: np.ndarray, spec: MaskingSpec) -> int:
    return int(_predictions_per_row(maskable, spec).max()) if len(maskable) else 0


def _masked(input_ids, spec, maskable, scores, action, random_tokens) -> dict:
    batch = len(input_ids)
    per_row = _predictions_per_row(maskable, spec)
    width = action.shape[1]
    # a random order of each row's maskable positions: the first per_row[i] are predicted
    scores = np.where(maskable, scores, np.inf)
    positions = np.sort(np.argsort(scores, axis=1, kind="stable")[:, :width], axis=1)
    weights = (np.arange(width)[None, :] < per_row[:, None]).astype(np.float32)
    # padding predictions point at position 0 ([CLS]) with weight 0
    positions = np.where(weights > 0, positions, 0)
    labels = np.take_along_axis(input_ids, positions, axis=1)
    replaced = np.where(action < 0.8, spec.mask_id, np.where(action < 0.9, random_tokens, labels))
    masked = input_ids.copy()
    rows = np.repeat(np.arange(batch), width).reshape(batch, width)
    keep = weights > 0
    masked[rows[keep], positions[keep]] = replaced[keep]
    return {"input_ids": masked, "masked_positions": positions, "masked_labels": labels, "masked_weights": weights}


class MLMBatches:
    """The training batch of any step, as a pure function of (seed, step): resumable with no loader state."""

    def __init__(self, split: dict, spec: MaskingSpec, seed: int):
        self.split, self.spec, self.seed = split, spec, seed
        self.rows = num_rows(split)
        self._epoch, self._order = -1, None

    def _row_indices(self, step: int, batch_size: int) -> np.ndarray:
        stream = np.arange(step * batch_size, (step + 1) * batch_size)
        out = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(stream // self.rows):
            if epoch != self._epoch:
                self._epoch = int(epoch)
                self._order = np.random.default_rng([self.seed, 0, self._epoch]).permutation(self.rows)
            hit = stream // self.rows == epoch
            out[hit] = self._order[stream[hit] % self.rows]
        return out

    def batch(self, step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        """Rank `rank`'s rows of the global batch of `step` (of `world_size` equal shares), masked, as numpy
        arrays. Each row is masked with its own stream (seed, step, its place in the global batch): a rank
        reads and masks only its rows, and every world size trains on the same batches."""
        share = batch_size // world_size
        first = rank * share
        index = self._row_indices(step, batch_size)[first:first + share]
        # sorted reads are much faster on a memory-mapped Dataset; the row order is restored after
        order = np.argsort(index, kind="stable")
        rows = take_rows(self.split, index[order])
        undo = np.argsort(order, kind="stable")
        columns = {k: np.asarray(v, dtype=np.int64)[undo] for k, v in rows.items()}
        return _with_extras(columns, mask_rows(columns["input_ids"], self.spec,
                                               [[self.seed, 1, step, first + i] for i in range(share)]))


def _masked_batch(columns: dict, spec: MaskingSpec, rng: np.random.Generator) -> dict:
    """Mask the rows' ids with one stream; every column comes out int64 (the storage is compact, the model
    takes int64)."""
    columns = {k: np.asarray(v, dtype=np.int64) for k, v in columns.items()}
    return _with_extras(columns, mask_tokens(columns["input_ids"], spec, rng))


def _with_extras(columns: dict, masked: dict) -> dict:
    for extra in ("token_type_ids", "attention_mask", "next_sentence_label"):
        if extra in columns:
            masked[extra] = columns[extra]
    return masked


def validation_rows(n: int, max_sequences: int | None, seed: int) -> np.ndarray:
    """All n rows, or a seeded sample of `max_sequences` of them in file order.

    The packed rows follow the corpus (Wikipedia first, then BookCorpus), so the first N would hold one source.
    """
    if max_sequences is None or max_sequences >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 0]).choice(n, size=max_sequences, replace=False))


def fixed_validation(split, spec: MaskingSpec, max_sequences: int | None, seed: int = 12345) -> dict:
    """The validation set: `max_sequences` rows sampled across the split, masked once with a fixed seed."""
    rows = take_rows(split, validation_rows(num_rows(split), max_sequences, seed))
    return _masked_batch(rows, spec, np.random.default_rng(seed))


def unigram_loss(train_counts: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Validation MLM loss (nats) of predicting every masked token by its training frequency (add-one smoothed)."""
    probs = (train_counts.astype(np.float64) + 1.0) / (train_counts.sum() + len(train_counts))
    nll = -np.log(probs[labels])
    return float((nll * weights).sum() / weights.sum())


def context_free_loss(train_counts: np.ndarray, validation: dict, mask_id: int) -> float:
    """Validation MLM loss (nats) of the best predictor that sees only the token *at* each masked position.

    Devlin masking leaves 10 % of the predicted tokens unchanged and swaps 10 % for a uniform random token,
    so a model that ignores every neighbour already beats the unigram floor: it copies a visible token with
    the posterior probability that it was kept. With unigram u and vocabulary size V, an input [MASK] gives
    p(y) = u(y); an input token x gives p(y | x) = (u(x) [y = x] + u(y) / V) / (u(x) + 1 / V). A model below
    this floor uses context; one at it has learned only word frequencies.
    """
    u = (train_counts.astype(np.float64) + 1.0) / (train_counts.sum() + len(train_counts))
    vocab = len(u)
    labels, weights = validation["masked_labels"], validation["masked_weights"]
    inputs = np.take_along_axis(validation["input_ids"], validation["masked_positions"], axis=1)
    kept_or_random = inputs != mask_id
    x = np.where(kept_or_random, inputs, 0)
    p_visible = (u[x] * (labels == x) + u[labels] / vocab) / (u[x] + 1.0 / vocab)
    nll = -np.log(np.where(kept_or_random, p_visible, u[labels]))
    return float((nll * weights).sum() / weights.sum())


def load_meta(data_dir: str | Path) -> dict:
    return read_json(Path(data_dir) / META_NAME)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from heavytail.config import load_job_config, resolve_job_config
    from heavytail.provenance import record_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="job config: max_seq_length, nsp, data_seed (JSON or path)")
    parser.add_argument("--corpus", required=True, help="corpus DatasetDict folder")
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder (BertTokenizerFast)")
    parser.add_argument("--out", required=True, help="output folder for the packed splits")
    args = parser.parse_args(argv)
    keys = ("max_seq_length", "nsp", "data_seed")
    cfg = resolve_job_config(load_job_config(args.config), "mlm_data", keys, required=keys)
    with record_run(args.out, cfg) as run:
        meta = prepare_mlm_data(args.corpus, args.tokenizer, args.out, int(cfg["max_seq_length"]),
                                nsp=bool(cfg["nsp"]), seed=int(cfg["data_seed"]))
        run["splits"] = meta["splits"]
        print(json.dumps(meta["splits"]), flush=True)


if __name__ == "__main__":
    main()
