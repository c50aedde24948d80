"""The BERT WordPiece tokenizer: trained on the corpus's train split (tiny) or bert-base-uncased (small, paper).

The output folder loads with `transformers.BertTokenizerFast.from_pretrained(out)`; it holds vocab.txt,
tokenizer.json, tokenizer_config.json and special_tokens_map.json. A pretrained tokenizer is a Hub model id or
a local folder in its layout (vocab.txt, tokenizer_config.json); an unpinned one (data.tokenizer.revision null)
is resolved to its commit, which tokenizer_stats.json records.

    python -m heavytail.data.tokenizer --config <json> --corpus results/{scale}/data/corpus --out <dir>
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

from heavytail.config import load_job_config, resolve_job_config
from heavytail.data.hub import raise_problems, resolve, source_problems, use_project_hf_home
from heavytail.errors import ConfigError
from heavytail.io import atomic_dir, write_json
from heavytail.provenance import record_run

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MIN_FREQUENCY = 2  # a subword seen once is noise, not vocabulary
PROBE_SENTENCE = "The first known use of this word was in 1539, during the French Revolution."


def wordpiece_tokenizer():
    """An untrained BERT-uncased WordPiece pipeline: NFD, lowercase, strip accents, BertPreTokenizer."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    tok = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def paragraphs(ds, batch_size: int = 256) -> Iterator[list[str]]:
    for batch in ds.iter(batch_size=batch_size):
        yield [p for text in batch["text"] for p in text.split("\n") if p]


def train_wordpiece(train_split, vocab_size: int):
    """Train WordPiece on the paragraphs of the train split; returns a `tokenizers.Tokenizer`."""
    from tokenizers import processors, trainers

    tok = wordpiece_tokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=MIN_FREQUENCY,
                                        special_tokens=list(SPECIAL_TOKENS), continuing_subword_prefix="##",
                                        show_progress=False)
    tok.train_from_iterator(paragraphs(train_split), trainer=trainer, length=len(train_split))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return tok


def save_bert_tokenizer(tok, out: Path, model_max_length: int = 512):
    """Save a trained WordPiece `tokenizers.Tokenizer` as a BertTokenizerFast folder, vocab.txt included."""
    from transformers import BertTokenizerFast

    # The trainer numbers its initial alphabet in hash-map order, which differs from run to run (measured: 177
    # of 2048 ids moved between two trainings on the same corpus). A retrained tokenizer would then silently
    # permute the ids a pretrained checkpoint was trained with. WordPiece tokenises by longest match over the
    # vocabulary *set*, so fixed ids (special tokens first, then the rest sorted) change no tokenisation.
    trained = tok.get_vocab()
    ordered = list(SPECIAL_TOKENS) + sorted(set(trained) - set(SPECIAL_TOKENS))
    vocab = {token: i for i, token in enumerate(ordered)}
    # transformers 5.x ignores vocab_file=: pass the vocabulary itself; BertTokenizerFast rebuilds the same
    # pipeline around it (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] $A [SEP]), checked below
    bert = BertTokenizerFast(vocab=vocab, do_lower_case=True, strip_accents=True,
                             model_max_length=model_max_length)
    if bert.tokenize(PROBE_SENTENCE) != tok.encode(PROBE_SENTENCE, add_special_tokens=False).tokens:
        raise RuntimeError("BertTokenizerFast built from the trained vocab tokenizes differently from it")
    bert.save_pretrained(str(out))
    # transformers 5 keeps special tokens in tokenizer_config.json; older readers look for this file
    write_json(out / "special_tokens_map.json", {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                                                 "cls_token": "[CLS]", "mask_token": "[MASK]"})
    (out / "vocab.txt").write_text("".join(token + "\n" for token in ordered), encoding="utf-8")
    return bert


def verify_tokenizer(out: Path, expected_vocab: int | None) -> dict:
    """Reload the folder the way training code will and check it is the tokenizer just written."""
    from transformers import BertTokenizerFast

    loaded = BertTokenizerFast.from_pretrained(str(out))
    tokens = loaded.tokenize(PROBE_SENTENCE)
    if expected_vocab is not None and len(loaded) != expected_vocab:
        raise RuntimeError(f"reloaded tokenizer has {len(loaded)} tokens, trained {expected_vocab}")
    if not tokens or loaded.unk_token in tokens[:3]:
        raise RuntimeError(f"reloaded tokenizer splits the probe sentence into {tokens[:10]}")
    ids = loaded(PROBE_SENTENCE)["input_ids"]
    if ids[0] != loaded.cls_token_id or ids[-1] != loaded.sep_token_id:
        raise RuntimeError("reloaded tokenizer does not add [CLS] ... [SEP]")
    missing = [t for t in SPECIAL_TOKENS if loaded.convert_tokens_to_ids(t) == loaded.unk_token_id and t != "[UNK]"]
    if missing:
        raise RuntimeError(f"reloaded tokenizer lacks special tokens {missing}")
    return {"vocab_size": len(loaded), "probe": PROBE_SENTENCE, "probe_tokens": tokens,
            "unk_rate_probe": tokens.count(loaded.unk_token) / len(tokens)}


def build_tokenizer(cfg: dict, corpus: Path | None, out: Path) -> dict:
    tok_cfg = cfg["data"]["tokenizer"]
    if tok_cfg["kind"] == "train_wordpiece":
        from heavytail.data.corpus import load_corpus

        train = load_corpus(corpus)["train"]
        start = time.perf_counter()
        tok = train_wordpiece(train, tok_cfg["vocab_size"])
        seconds = time.perf_counter() - start
        print(f"tokenizer trained vocab {tok.get_vocab_size()} on {len(train)} articles in {seconds:.2f} s",
              flush=True)
        save_bert_tokenizer(tok, out)
        info = {"kind": "train_wordpiece", "trained_on": f"{corpus} train split", "train_seconds": seconds,
                "requested_vocab_size": tok_cfg["vocab_size"]}
        expected = tok.get_vocab_size()
    else:
        source = save_pretrained_tokenizer(tok_cfg["pretrained"], cfg.get("paths", {}), out, tok_cfg.get("revision"))
        info = {"kind": "pretrained", "name": tok_cfg["pretrained"], "source": source}
        expected = None
    info.update(verify_tokenizer(out, expected))
    write_json(out / "tokenizer_stats.json", info)
    print(f"tokenizer vocab {info['vocab_size']} probe {' '.join(info['probe_tokens'])}", flush=True)
    return info


def tokenizer_problems(tok_cfg: dict, key: str = "data.tokenizer") -> list[str]:
    """Every problem of the tokenizer settings that can be seen before any download, one line each."""
    if tok_cfg["kind"] != "pretrained":
        return []
    name, revision = tok_cfg.get("pretrained"), tok_cfg.get("revision")
    problems = source_problems(name, revision, key, kind="model", path_field="pretrained")
    folder = Path(str(name)).expanduser()
    if not problems and folder.is_dir() and not any((folder / f).is_file() for f in ("vocab.txt", "tokenizer.json")):
        problems.append(f"{key}.pretrained: {folder} holds neither vocab.txt nor tokenizer.json (point it at a "
                        "tokenizer folder such as a copy of bert-base-uncased)")
    return problems


def save_pretrained_tokenizer(name: str, paths: dict, out: Path, revision: str | None = None, api=None) -> dict:
    """A named tokenizer resolved to a commit (or a local folder), loaded through the project's HF cache and
    saved to `out`; returns where it came from."""
    hub_cache = use_project_hf_home(paths) / "hub"
    raise_problems(tokenizer_problems({"kind": "pretrained", "pretrained": name, "revision": revision}))
    source = resolve(name, revision, "data.tokenizer", kind="model", api=api, path_field="pretrained")
    from transformers import BertTokenizerFast

    where = f"cannot load {name!r} at {source['revision']} into the HF cache under {paths.get('hf_home')}"
    try:
        tok = BertTokenizerFast.from_pretrained(source["path"], cache_dir=str(hub_cache),
                                                revision=None if source["local"] else source["revision"])
    except OSError as exc:
        raise ConfigError(f"data.tokenizer.pretrained: {where} ({str(exc).splitlines()[0]})") from exc
    # transformers 5 silently builds an empty tokenizer when no vocabulary file is found
    if len(tok) <= len(SPECIAL_TOKENS):
        raise ConfigError(f"data.tokenizer.pretrained: {where} (found no vocabulary)")
    tok.save_pretrained(str(out))
    return source


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config: JSON string or file")
    parser.add_argument("--corpus", type=Path, help="corpus folder (needed for train_wordpiece)")
    parser.add_argument("--out", required=True, type=Path, help="output tokenizer folder")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "tokenizer")
    if cfg["data"]["tokenizer"]["kind"] == "train_wordpiece" and (
            args.corpus is None or not (args.corpus / "dataset_dict.json").is_file()):
        raise ConfigError(f"--corpus: {args.corpus} is not a saved corpus (train_wordpiece trains on the corpus "
                          "built by heavytail.data.corpus)")
    with atomic_dir(args.out) as staging, record_run(staging, cfg) as run:
        run["tokenizer"] = build_tokenizer(cfg, args.corpus, staging)


if __name__ == "__main__":
    main()
