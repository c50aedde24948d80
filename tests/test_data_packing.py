"""Packed MLM data: compact storage with the same values as the packers produce, chunked counts, loaders, and a
validation set drawn across the whole split."""

from __future__ import annotations

import numpy as np
import pytest

from heavytail.bench.packing import write_synthetic_corpus, write_word_tokenizer
from heavytail.data import mlm, packed


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("packing")
    write_synthetic_corpus(root / "corpus", articles=60, seed=1)
    write_word_tokenizer(root / "tokenizer")
    return root


def reference_packing(corpus_dir, tokenizer_dir, split: str, max_seq_length: int, nsp: bool, seed: int) -> dict:
    """The packers applied straight to the corpus, batch by batch as prepare_mlm_data's map does, kept as int64."""
    from datasets import load_from_disk

    tok = mlm.load_tokenizer(tokenizer_dir)
    ids = {"cls": tok.cls_token_id, "sep": tok.sep_token_id, "pad": tok.pad_token_id}
    rows = load_from_disk(str(corpus_dir))[split]
    out: dict[str, list] = {}
    for first in range(0, len(rows), mlm.MAP_BATCH_ARTICLES):
        texts = rows[first:first + mlm.MAP_BATCH_ARTICLES]["text"]
        if nsp:
            docs = [[tok(s, add_special_tokens=False)["input_ids"] for p in text.split("\n")
                     for s in mlm.SENTENCE_END.split(p) if s.strip()] for text in texts]
            part = mlm._pack_nsp(docs, max_seq_length, ids, np.random.default_rng([seed, first]))
        else:
            part = mlm._pack_plain(tok(texts, add_special_tokens=False)["input_ids"], max_seq_length, ids["cls"],
                                   ids["sep"])
        for name, values in part.items():
            out.setdefault(name, []).extend(values)
    return {name: np.asarray(values, dtype=np.int64) for name, values in out.items()}


@pytest.mark.parametrize("nsp", [False, True], ids=["plain", "nsp"])
def test_packing_stores_compact_columns_with_the_packers_values(inputs, tmp_path, nsp):
    meta = mlm.prepare_mlm_data(inputs / "corpus", inputs / "tokenizer", tmp_path, 32, nsp=nsp, seed=7)
    expected_dtypes = {"input_ids": np.uint16}
    if nsp:
        expected_dtypes.update(token_type_ids=np.uint8, attention_mask=np.uint8, next_sentence_label=np.uint8)
    assert meta["dtypes"] == {k: np.dtype(v).name for k, v in expected_dtypes.items()}
    for split in ("train", "validation"):
        stored = mlm.load_split(tmp_path, split)
        reference = reference_packing(inputs / "corpus", inputs / "tokenizer", split, 32, nsp, seed=7)
        assert {k: v.dtype for k, v in stored.items()} == expected_dtypes
        assert stored.keys() == reference.keys()
        for name in reference:
            np.testing.assert_array_equal(stored[name].astype(np.int64), reference[name], err_msg=name)
        if split == "train":
            counts = np.load(tmp_path / "unigram_counts.npy")
            np.testing.assert_array_equal(counts, np.bincount(reference["input_ids"].ravel(),
                                                              minlength=meta["vocab_size"]))


def test_ids_widen_only_past_uint16():
    assert [packed.id_dtype(n) for n in (30522, 65536, 65537)] == ["uint16", "uint16", "uint32"]


def test_counts_read_in_chunks_and_loaders_agree(inputs, tmp_path, monkeypatch):
    meta = mlm.prepare_mlm_data(inputs / "corpus", inputs / "tokenizer", tmp_path, 32, nsp=True, seed=0)
    ids = mlm.load_split(tmp_path, "train")["input_ids"]
    monkeypatch.setattr(packed, "COUNT_CHUNK_ROWS", 5)  # many chunks, and a ragged last one
    np.testing.assert_array_equal(packed.count_tokens(tmp_path, "train", meta["vocab_size"]),
                                  np.bincount(ids.ravel().astype(np.int64), minlength=meta["vocab_size"]))
    spec = mlm.MaskingSpec.from_meta(meta)
    preloaded = mlm.MLMBatches(mlm.load_split(tmp_path, "train", preload=True), spec, seed=3)
    mapped = mlm.MLMBatches(mlm.load_split(tmp_path, "train", preload=False), spec, seed=3)
    for step in (0, 1, len(ids) // 8 + 1):  # the last one wraps into the next epoch
        a, b = preloaded.batch(step, 8), mapped.batch(step, 8)
        assert a.keys() == b.keys() and "next_sentence_label" in a
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
            assert a[name].dtype == (np.float32 if name == "masked_weights" else np.int64)


def test_fixed_validation_samples_rows_across_the_whole_split():
    # rows 0-49 stand for Wikipedia (id 10), rows 50-99 for BookCorpus (id 20): the corpus order
    ids = np.full((100, 8), 10, dtype=np.uint16)
    ids[50:] = 20
    ids[:, 0], ids[:, -1] = 2, 3
    split = {"input_ids": ids}
    spec = mlm.MaskingSpec(vocab_size=30, mask_id=4, special_ids=(0, 1, 2, 3, 4))
    val = mlm.fixed_validation(split, spec, max_sequences=10)
    sources = set(val["masked_labels"][val["masked_weights"] > 0].tolist())
    assert sources == {10, 20}
    assert len(val["input_ids"]) == 10 and val["input_ids"].dtype == np.int64
    again = mlm.fixed_validation(split, spec, max_sequences=10)
    assert all(np.array_equal(val[k], again[k]) for k in val)  # the same set for every run
    everything = mlm.fixed_validation(split, spec, max_sequences=None)
    assert len(everything["input_ids"]) == 100 and (everything["input_ids"][:, 0] == 2).all()
