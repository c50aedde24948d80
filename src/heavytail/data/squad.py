"""SQuAD v1.1 features and predictions exactly as BERT's `run_squad.py` builds them, on a fast tokenizer.

Preprocessing: the question is cut to `max_query_length` tokens; the context is tokenised once and cut into
windows of `max_seq_length - len(question) - 3` tokens whose starts are `doc_stride` tokens apart (BERT's
meaning of doc_stride, not the tokenizer's overlap). Each window is `[CLS] question [SEP] window [SEP]`.
Character offsets come from the fast tokenizer's offset mapping; a window that does not hold the whole answer
is labelled with the CLS index (0). Token `i` of a window is its "max context" window when it has the most
tokens on its shorter side there, as in BERT; only such tokens may start an answer.

Postprocessing: for every window of an example, the `n_best_size` highest start and end logits are paired;
spans outside the context, reversed, longer than `max_answer_length` tokens or starting outside their max
context are dropped; the best start + end score wins and its text is cut from the context through the offsets.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from heavytail.errors import ConfigError

CLS_INDEX = 0
NOT_CONTEXT = (-1, -1)  # offset of a question, special or padding token (arrow columns hold no None pairs)
FEATURE_VERSION = 1  # bump when the feature layout changes, so cached arrow files are not reused
YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")


@dataclass(frozen=True)
class FeatureSpec:
    """BERT's preprocessing lengths (384 / 128 / 64 in Devlin et al.)."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    def __post_init__(self):
        if self.max_seq_length < self.max_query_length + 4:
            raise ConfigError(f"squad.max_seq_length ({self.max_seq_length}) must exceed max_query_length "
                              f"({self.max_query_length}) + 3 special tokens")
        if self.doc_stride < 1:
            raise ConfigError(f"squad.doc_stride must be >= 1 (got {self.doc_stride})")


def truncated_question(tokenizer, question: str, max_query_length: int) -> list[int]:
    """The question's token ids, cut to `max_query_length` as BERT does (leading whitespace removed)."""
    ids = tokenizer(question.lstrip(), add_special_tokens=False)["input_ids"]
    return ids[:max_query_length]


def doc_windows(n_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window over `n_tokens` context tokens, as in BERT's `_DocSpan` loop."""
    windows, start = [], 0
    while True:
        length = min(n_tokens - start, max_tokens_for_doc)
        windows.append((start, length))
        if start + length >= n_tokens:
            return windows
        start += min(length, doc_stride)


def is_max_context(windows: list[tuple[int, int]], index: int, position: int) -> bool:
    """Whether window `index` gives token `position` the most context (BERT's `_check_is_max_context`)."""
    best_score, best_index = None, None
    for i, (start, length) in enumerate(windows):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, i
    return best_index == index


def answer_token_span(offsets: list[tuple[int, int]], char_start: int, char_end: int) -> tuple[int, int]:
    """First and last context token overlapping the answer characters [char_start, char_end)."""
    start = next(i for i, (s, e) in enumerate(offsets) if e > char_start)
    end = max(i for i, (s, e) in enumerate(offsets) if s < char_end)
    return start, end


def featurize_batch(examples: dict, tokenizer, spec: FeatureSpec) -> dict:
    """A `datasets.map(batched=True)` function: examples -> windows with labels and offsets (one row each)."""
    contexts = tokenizer(examples["context"], add_special_tokens=False, return_offsets_mapping=True)
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    out: dict[str, list] = {k: [] for k in ("example_id", "input_ids", "token_type_ids", "attention_mask",
                                            "offset_mapping", "max_context", "start_positions", "end_positions")}
    for i, question in enumerate(examples["question"]):
        q_ids = truncated_question(tokenizer, question, spec.max_query_length)
        doc_ids, doc_offsets = contexts["input_ids"][i], [tuple(o) for o in contexts["offset_mapping"][i]]
        max_doc = spec.max_seq_length - len(q_ids) - 3
        windows = doc_windows(len(doc_ids), max_doc, spec.doc_stride)
        answers = examples["answers"][i]
        gold = None
        if answers["text"]:
            char_start = int(answers["answer_start"][0])
            gold = answer_token_span(doc_offsets, char_start, char_start + len(answers["text"][0]))
        prefix = [cls_id, *q_ids, sep_id]
        for w, (start, length) in enumerate(windows):
            ids = prefix + doc_ids[start:start + length] + [sep_id]
            pad = spec.max_seq_length - len(ids)
            n_prefix = len(prefix)
            offsets = ([NOT_CONTEXT] * n_prefix + doc_offsets[start:start + length]
                       + [NOT_CONTEXT] * (1 + pad))
            max_context = ([False] * n_prefix + [is_max_context(windows, w, start + j) for j in range(length)]
                           + [False] * (1 + pad))
            if gold is not None and start <= gold[0] and gold[1] < start + length:
                label = (gold[0] - start + n_prefix, gold[1] - start + n_prefix)
            else:
                label = (CLS_INDEX, CLS_INDEX)
            out["example_id"].append(examples["id"][i])
            out["input_ids"].append(ids + [pad_id] * pad)
            out["token_type_ids"].append([0] * n_prefix + [1] * (length + 1) + [0] * pad)
            out["attention_mask"].append([1] * len(ids) + [0] * pad)
            out["offset_mapping"].append([list(o) for o in offsets])
            out["max_context"].append(max_context)
            out["start_positions"].append(label[0])
            out["end_positions"].append(label[1])
    return out


def _fingerprint(dataset, tokenizer, spec: FeatureSpec) -> str:
    """A key that changes with the examples, the tokenizer, the lengths and the feature layout."""
    h = hashlib.sha256()
    for column in ("id", "question", "context", "answers"):
        h.update(json.dumps(list(dataset[column]), sort_keys=True).encode())
    h.update(tokenizer.backend_tokenizer.to_str().encode())
    h.update(json.dumps({**asdict(spec), "version": FEATURE_VERSION}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def featurize(dataset, tokenizer, spec: FeatureSpec, cache_dir: str | Path | None = None):
    """The windows of every example, cached as an arrow file under `cache_dir` (keyed by content) when given."""
    key = _fingerprint(dataset, tokenizer, spec)
    kwargs = {}
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        # an in-memory dataset has no cache of its own: name the file, so a rerun (or another job) reuses it
        kwargs = {"cache_file_name": str(Path(cache_dir) / f"features-{key}.arrow"), "load_from_cache_file": True}
    return dataset.map(featurize_batch, batched=True, remove_columns=dataset.column_names, new_fingerprint=key,
                       fn_kwargs={"tokenizer": tokenizer, "spec": spec}, desc="squad features", **kwargs)


def postprocess_predictions(examples, features, start_logits: np.ndarray, end_logits: np.ndarray,
                            n_best_size: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """{example id: answer text} from the start/end logits of every window (BERT's `write_predictions`)."""
    by_example: dict[str, list[int]] = {}
    for f, example_id in enumerate(features["example_id"]):
        by_example.setdefault(example_id, []).append(f)
    offsets_all, max_context_all = features["offset_mapping"], features["max_context"]
    predictions = {}
    for example_id, context in zip(examples["id"], examples["context"], strict=True):
        best_score, best_text = -np.inf, ""
        for f in by_example.get(example_id, []):
            offsets, max_context = offsets_all[f], max_context_all[f]
            starts = np.argsort(start_logits[f])[::-1][:n_best_size]
            ends = np.argsort(end_logits[f])[::-1][:n_best_size]
            for s in starts:
                if offsets[s][0] < 0 or not max_context[s]:
                    continue
                for e in ends:
                    if offsets[e][0] < 0 or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = float(start_logits[f][s] + end_logits[f][e])
                    if score > best_score:
                        best_score, best_text = score, context[offsets[s][0]:offsets[e][1]]
        predictions[example_id] = best_text
    return predictions


def first_year_baseline(examples) -> dict[str, str]:
    """The trivial baseline: the first four-digit year (1000-2029) of the context, or "" if there is none."""
    predictions = {}
    for example_id, context in zip(examples["id"], examples["context"], strict=True):
        match = YEAR.search(context)
        predictions[example_id] = match.group(1) if match else ""
    return predictions


def first_of_kind_baseline(examples) -> dict[str, str]:
    """The answer-type baseline: the context's first span of the kind the question asks for (a year for "what
    year", a percentage for "what percentage", ...), from the question generator's templates."""
    from heavytail.data.qagen import first_of_kind

    return {example_id: first_of_kind(question, context) for example_id, question, context
            in zip(examples["id"], examples["question"], examples["context"], strict=True)}


def references(examples) -> dict[str, list[str]]:
    """{example id: gold answer texts}, the references of `heavytail.metrics.squad_v1`."""
    return {example_id: list(answers["text"]) for example_id, answers in zip(examples["id"], examples["answers"],
                                                                          strict=True)}
