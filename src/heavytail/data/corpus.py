"""Build the pretraining corpus: a `datasets.DatasetDict` {train, validation} held out by article.

Rows (a contract for the pretraining and QA code): `id` (str), `title` (str), `text` (str: clean prose,
paragraphs separated by "\\n"). tiny reads the Wikipedia dump inside the gensim wheel; small and paper read
Wikipedia + BookCorpus through `datasets.load_dataset` (heavytail.data.hf_text), and stats.json records the
commit each source was read at.

    python -m heavytail.data.corpus --config <json> --out results/{scale}/data/corpus
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from heavytail.config import load_job_config, resolve_job_config
from heavytail.data.hub import raise_problems, use_project_hf_home
from heavytail.data.wikitext import check_bz2_file, wiki_dump_path
from heavytail.errors import ConfigError
from heavytail.io import atomic_dir, write_json
from heavytail.provenance import record_run

SPLITS = ("train", "validation")
PROGRESS_EVERY = 25


def features():
    import datasets

    return datasets.Features({name: datasets.Value("string") for name in ("id", "title", "text")})


def read_gensim_dump(dump: Path):
    """The articles of a MediaWiki .xml.bz2 dump as a Dataset of {id, title, text}."""
    import datasets

    from heavytail.data.wikitext import iter_dump_articles

    rows = []
    for rows_done, row in enumerate(iter_dump_articles(dump), start=1):
        rows.append(row)
        if rows_done % PROGRESS_EVERY == 0:
            print(f"corpus articles {rows_done:6d} last {row['title'][:40]!r}", flush=True)
    if len(rows) < 2:
        raise ConfigError(f"data.text.wiki_dump: {dump} holds {len(rows)} article(s) after removing redirects "
                          "and stubs; a train/validation split needs at least 2")
    return datasets.Dataset.from_list(rows, features=features())


def split_by_document(ds, validation_fraction: float, seed: int):
    """Hold out whole documents: a seeded permutation picks round(fraction * n) of them (at least one)."""
    import datasets

    n = len(ds)
    if n < 2:
        raise ConfigError(f"data.text: only {n} document(s) to split; need at least 2")
    n_val = min(n - 1, max(1, round(validation_fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return datasets.DatasetDict(train=ds.select(train_idx), validation=ds.select(val_idx))


def split_stats(ds) -> dict:
    """Articles, paragraphs, characters and words of one split, computed column-wise with pyarrow."""
    import pyarrow.compute as pc

    stats = {"articles": 0, "paragraphs": 0, "characters": 0, "words": 0}
    for batch in ds.with_format("arrow").iter(batch_size=10_000):
        text = batch["text"]
        nonempty = pc.sum(pc.greater(pc.utf8_length(text), 0)).as_py() or 0
        stats["articles"] += len(text)
        stats["paragraphs"] += (pc.sum(pc.count_substring(text, "\n")).as_py() or 0) + nonempty
        stats["characters"] += pc.sum(pc.utf8_length(text)).as_py() or 0
        stats["words"] += pc.sum(pc.list_value_length(pc.utf8_split_whitespace(text))).as_py() or 0
    return stats


def check_corpus_inputs(cfg: dict) -> None:
    """Every check that can fail before work starts, so a bad input leaves nothing behind."""
    if cfg["data"]["text"]["source"] == "gensim_wiki":
        check_bz2_file(wiki_dump_path(cfg["data"]), "data.text.wiki_dump")
    from heavytail.data.hf_text import text_problems

    raise_problems(text_problems(cfg["data"]["text"]))


def build_corpus(cfg: dict, out: Path, num_proc: int | None = None) -> dict:
    """Read the configured source, split it by document and save it to `out`; returns the stats."""
    text = cfg["data"]["text"]
    if text["source"] == "gensim_wiki":
        dump = wiki_dump_path(cfg["data"])
        print(f"corpus source gensim_wiki dump {dump}", flush=True)
        docs, source = read_gensim_dump(dump), {"kind": "gensim_wiki", "dump": str(dump)}
    else:
        from heavytail.data.hf_text import load_wikipedia_bookcorpus

        cache = use_project_hf_home(cfg.get("paths", {})) / "datasets"
        docs, sources = load_wikipedia_bookcorpus(text, cache, num_proc=num_proc)
        docs = docs.cast(features())
        source = {"kind": text["source"], **sources, "max_documents": text.get("max_documents"),
                  "mix": "max_documents caps the total; each source gives the same fraction of its documents"}
    corpus = split_by_document(docs, text["validation_fraction"], text["split_seed"])
    corpus.save_to_disk(str(out), num_proc=num_proc)
    stats = {"source": source, "split": "by article", "validation_fraction": text["validation_fraction"],
             "split_seed": text["split_seed"], **{name: split_stats(corpus[name]) for name in SPLITS}}
    write_json(out / "stats.json", stats)
    for name in SPLITS:
        s = stats[name]
        print(f"corpus {name:10s} articles {s['articles']:7d} paragraphs {s['paragraphs']:8d} "
              f"words {s['words']:10d} characters {s['characters']:11d}", flush=True)
    return stats


def load_corpus(path: str | Path):
    """The saved corpus as a DatasetDict; a clear error when the folder is not one."""
    import datasets

    path = Path(path)
    if not (path / "dataset_dict.json").is_file():
        raise ConfigError(f"--corpus: {path} is not a saved corpus (run heavytail.data.corpus to build it)")
    return datasets.load_from_disk(str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved job config: JSON string or file")
    parser.add_argument("--out", required=True, type=Path, help="output folder (DatasetDict + stats.json)")
    parser.add_argument("--threads", type=int, default=1, help="worker processes for cleaning the hf sources")
    args = parser.parse_args(argv)
    cfg = resolve_job_config(load_job_config(args.config), "corpus")
    check_corpus_inputs(cfg)
    threads = args.threads
    with atomic_dir(args.out) as staging, record_run(staging, cfg) as run:
        run["stats"] = build_corpus(cfg, staging, num_proc=threads if threads and threads > 1 else None)


if __name__ == "__main__":
    main()
