"""Wikipedia + BookCorpus through `datasets.load_dataset`, as {id, title, text} documents.

A source is a config mapping: a Hub dataset or a local folder in its Hub layout (`path`, `name`, `revision`;
see `heavytail.data.hub` for how an unpinned revision is resolved and recorded), or local parquet shards
(`data_files`). BookCorpus's default branch holds a loading script that datasets >= 4 refuses, so it is read
from the Hub's parquet export (`refs/convert/parquet`, config `default`, column `text`).

The mix: `max_documents` caps the whole corpus, and every source gives the same fraction of its documents (a
Wikipedia article before the stub filter; a block of `lines_per_document` BookCorpus lines), drawn as a seeded
sample (`split_seed`). The capped corpus thus keeps the full corpus's proportions of Wikipedia and books.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from heavytail.data.hub import raise_problems, resolve, source_problems
from heavytail.data.wikitext import MIN_ARTICLE_WORDS, prose_paragraphs
from heavytail.errors import ConfigError

WIKIPEDIA_COLUMNS = ("id", "title", "text")  # wikimedia/wikipedia also has `url`, unused
BOOKCORPUS_COLUMNS = ("text",)  # one sentence per row, books concatenated in order
SOURCES = ("wikipedia", "bookcorpus")


def text_source_problems(spec: dict, key: str) -> list[str]:
    """Every problem of one source that can be seen before any download, one line each."""
    files = spec.get("data_files")
    if files:
        return [f"{key}.data_files: {path} does not exist (point it at parquet shards, or set it to null to read "
                f"{spec.get('path')} from the Hub)"
                for path in ([files] if isinstance(files, str) else files)
                if "*" not in str(path) and not Path(path).is_file()]
    return source_problems(spec.get("path"), spec.get("revision"), key)


def text_problems(text_cfg: dict) -> list[str]:
    """Every problem of data.text's Hub sources (none for the tiny gensim dump), one line each."""
    if text_cfg["source"] == "gensim_wiki":
        return []
    return [p for name in SOURCES for p in text_source_problems(text_cfg[name], f"data.text.{name}")]


def check_source(spec: dict, key: str) -> None:
    """Raise one ConfigError naming every problem of the source (see text_source_problems)."""
    raise_problems(text_source_problems(spec, key))


def resolve_source(spec: dict, key: str, api=None) -> dict:
    """The source's provenance: the spec with its revision resolved to a commit (or its data files)."""
    if spec.get("data_files"):
        raise_problems(text_source_problems(spec, key))
        return {"data_files": spec["data_files"]}
    return {**resolve(spec.get("path"), spec.get("revision"), key, api=api), "name": spec.get("name")}


def load_source(spec: dict, resolved: dict, cache_dir: Path, num_proc: int | None = None):
    """The `train` split of one source, exactly as resolved: a Hub commit, a local folder, or parquet shards."""
    import datasets

    if resolved.get("data_files"):
        return datasets.load_dataset("parquet", data_files=resolved["data_files"], split="train",
                                     cache_dir=str(cache_dir), num_proc=num_proc)
    revision = None if resolved["local"] else resolved["revision"]
    return datasets.load_dataset(resolved["path"], spec.get("name"), revision=revision, split="train",
                                 cache_dir=str(cache_dir), num_proc=num_proc)


def _require_columns(ds, columns: tuple[str, ...], key: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ConfigError(f"{key}: dataset has columns {ds.column_names}, missing {missing}; "
                          "point it at the real dataset (same columns as on the Hub)")


def mix_counts(available: dict[str, int], cap: int | None) -> dict[str, int]:
    """Documents to take from each source: all of them, or the same fraction of each, `cap` in total."""
    total = sum(available.values())
    if cap is None or cap >= total:
        return dict(available)
    taken = {name: min(n, round(cap * n / total)) for name, n in available.items()}
    largest = max(available, key=available.get)
    taken[largest] = min(available[largest], taken[largest] + cap - sum(taken.values()))  # rounding
    return taken


def sample_documents(n: int, k: int, seed: int, stream: int) -> np.ndarray:
    """k of n document indices, a seeded sample in corpus order (all of them when k == n)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, stream]).choice(n, size=k, replace=False))


def _wikipedia_batch(batch: dict) -> dict:
    out = {"id": [], "title": [], "text": []}
    for page_id, title, text in zip(batch["id"], batch["title"], batch["text"], strict=True):
        paragraphs = prose_paragraphs(text.split("\n"))
        if sum(len(p.split()) for p in paragraphs) >= MIN_ARTICLE_WORDS:
            out["id"].append(f"wiki-{page_id}")
            out["title"].append(title)
            out["text"].append("\n".join(paragraphs))
    return out


def wikipedia_documents(ds, key: str = "data.text.wikipedia", rows: np.ndarray | None = None,
                        num_proc: int | None = None):
    """wikimedia/wikipedia rows (all, or those at `rows`) -> one document per article, headings and back matter
    dropped, stubs skipped."""
    _require_columns(ds, WIKIPEDIA_COLUMNS, key)
    if rows is not None and len(rows) < len(ds):
        ds = ds.select(rows)
    return ds.map(_wikipedia_batch, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  desc="wikipedia articles")


def bookcorpus_blocks(ds, lines_per_document: int) -> int:
    return math.ceil(len(ds) / lines_per_document)


def bookcorpus_documents(ds, lines_per_document: int, key: str = "data.text.bookcorpus",
                         blocks: np.ndarray | None = None):
    """BookCorpus rows (one sentence each) -> documents of `lines_per_document` consecutive lines (every block,
    or the blocks numbered in `blocks`)."""
    _require_columns(ds, BOOKCORPUS_COLUMNS, key)
    n_lines, per = len(ds), lines_per_document
    if blocks is None:
        blocks = np.arange(bookcorpus_blocks(ds, per))
    elif len(blocks) < bookcorpus_blocks(ds, per):
        lines = (blocks[:, None] * per + np.arange(per)[None, :]).ravel()
        ds = ds.select(lines[lines < n_lines])  # every block is whole, except the corpus's last one

    def chunk(batch: dict, indices: list[int]) -> dict:
        # one map batch is one block; BookCorpus has no titles, so the block's line numbers name it
        lines = [line.strip() for line in batch["text"] if line.strip()]
        if not lines:
            return {"id": [], "title": [], "text": []}
        first = int(blocks[indices[0] // per]) * per
        last = first + len(batch["text"]) - 1
        return {"id": [f"bookcorpus-{first}"], "title": [f"BookCorpus lines {first}-{last}"],
                "text": ["\n".join(lines)]}

    # one process: num_proc shards need not start on a block boundary, and then a map batch would straddle two
    return ds.map(chunk, batched=True, batch_size=per, with_indices=True, remove_columns=ds.column_names,
                  desc="bookcorpus documents")


def load_wikipedia_bookcorpus(text_cfg: dict, cache_dir: Path, num_proc: int | None = None,
                              api=None) -> tuple[object, dict]:
    """Wikipedia and BookCorpus documents, mixed as the module docstring says (not yet split); and where each
    source came from (resolved commits) and how many documents it gave."""
    import datasets

    keys = {name: f"data.text.{name}" for name in SOURCES}
    raise_problems(text_problems(text_cfg))
    # every revision is resolved (and every refusal raised) before the first byte is downloaded
    resolved = {name: resolve_source(text_cfg[name], keys[name], api) for name in SOURCES}
    raw = {name: load_source(text_cfg[name], resolved[name], cache_dir, num_proc) for name in SOURCES}
    per = text_cfg["bookcorpus"]["lines_per_document"]
    available = {"wikipedia": len(raw["wikipedia"]), "bookcorpus": bookcorpus_blocks(raw["bookcorpus"], per)}
    taken = mix_counts(available, text_cfg.get("max_documents"))
    seed = int(text_cfg.get("split_seed", 0))
    wiki = wikipedia_documents(raw["wikipedia"], keys["wikipedia"],
                               sample_documents(available["wikipedia"], taken["wikipedia"], seed, 1), num_proc)
    books = bookcorpus_documents(raw["bookcorpus"], per, keys["bookcorpus"],
                                 sample_documents(available["bookcorpus"], taken["bookcorpus"], seed, 2))
    print(f"corpus wikipedia {len(wiki)} articles (of {taken['wikipedia']} drawn from {available['wikipedia']}) "
          f"bookcorpus {len(books)} documents (of {available['bookcorpus']})", flush=True)
    for name in SOURCES:
        resolved[name].update(available=available[name], drawn=taken[name])
    resolved["wikipedia"]["documents"], resolved["bookcorpus"]["documents"] = len(wiki), len(books)
    return datasets.concatenate_datasets([wiki, books]), resolved
