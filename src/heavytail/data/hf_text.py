"""Wikipedia + BookCorpus through `datasets.load_dataset`, with pinned revisions, as {id, title, text} documents.

A source is a config mapping: either a Hub dataset (`path`, `name`, `revision`) or local parquet shards in the
same format (`data_files`), which is how tests and clusters without internet read them.
"""

from __future__ import annotations

from pathlib import Path

from heavytail.data.wikitext import MIN_ARTICLE_WORDS, prose_paragraphs
from heavytail.errors import ConfigError

WIKIPEDIA_COLUMNS = ("id", "title", "text")  # wikimedia/wikipedia also has `url`, unused
BOOKCORPUS_COLUMNS = ("text",)  # one sentence per row, books concatenated in order


def check_source(spec: dict, key: str) -> None:
    """A Hub source must pin a revision; local shards must exist. Raises ConfigError before any download."""
    files = spec.get("data_files")
    if files:
        for path in [files] if isinstance(files, str) else files:
            if "*" not in str(path) and not Path(path).is_file():
                raise ConfigError(f"{key}.data_files: {path} does not exist (point it at parquet shards "
                                  f"or set it to null to read {spec.get('path')} from the Hub)")
        return
    if not spec.get("path"):
        raise ConfigError(f"{key}.path is empty: name a Hub dataset (e.g. wikimedia/wikipedia) or set data_files")
    if not spec.get("revision"):
        raise ConfigError(f"{key}.revision must pin a commit of {spec['path']} (copy a 40-hex sha from "
                          f"https://huggingface.co/datasets/{spec['path']}/commits), or set {key}.data_files")


def load_source(spec: dict, cache_dir: Path, key: str, num_proc: int | None = None):
    """The `train` split of one source, from the Hub at a pinned revision or from local parquet shards."""
    import datasets

    check_source(spec, key)
    if spec.get("data_files"):
        ds = datasets.load_dataset("parquet", data_files=spec["data_files"], split="train",
                                   cache_dir=str(cache_dir), num_proc=num_proc)
    else:
        ds = datasets.load_dataset(spec["path"], spec.get("name"), revision=spec["revision"], split="train",
                                   cache_dir=str(cache_dir), num_proc=num_proc)
    return ds


def _require_columns(ds, columns: tuple[str, ...], key: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ConfigError(f"{key}: dataset has columns {ds.column_names}, missing {missing}; "
                          "point it at the real dataset (same columns as on the Hub)")


def _wikipedia_batch(batch: dict) -> dict:
    out = {"id": [], "title": [], "text": []}
    for page_id, title, text in zip(batch["id"], batch["title"], batch["text"], strict=True):
        paragraphs = prose_paragraphs(text.split("\n"))
        if sum(len(p.split()) for p in paragraphs) >= MIN_ARTICLE_WORDS:
            out["id"].append(f"wiki-{page_id}")
            out["title"].append(title)
            out["text"].append("\n".join(paragraphs))
    return out


def wikipedia_documents(ds, key: str = "data.text.wikipedia", max_documents: int | None = None,
                        num_proc: int | None = None):
    """wikimedia/wikipedia rows -> one document per article, headings and back matter dropped."""
    _require_columns(ds, WIKIPEDIA_COLUMNS, key)
    if max_documents is not None:
        ds = ds.select(range(min(max_documents, len(ds))))
    return ds.map(_wikipedia_batch, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  desc="wikipedia articles")


def bookcorpus_documents(ds, lines_per_document: int, key: str = "data.text.bookcorpus",
                         max_documents: int | None = None, num_proc: int | None = None):
    """BookCorpus rows (one sentence each) -> documents of `lines_per_document` consecutive lines."""
    _require_columns(ds, BOOKCORPUS_COLUMNS, key)
    if max_documents is not None:
        ds = ds.select(range(min(max_documents * lines_per_document, len(ds))))

    def chunk(batch: dict, indices: list[int]) -> dict:
        # a batch of `lines_per_document` rows is one document; BookCorpus has no titles, so rows name it
        lines = [line.strip() for line in batch["text"] if line.strip()]
        if not lines:
            return {"id": [], "title": [], "text": []}
        first, last = indices[0], indices[-1]
        return {"id": [f"bookcorpus-{first}"], "title": [f"BookCorpus lines {first}-{last}"],
                "text": ["\n".join(lines)]}

    return ds.map(chunk, batched=True, batch_size=lines_per_document, with_indices=True,
                  remove_columns=ds.column_names, num_proc=num_proc, desc="bookcorpus documents")


def load_wikipedia_bookcorpus(text_cfg: dict, cache_dir: Path, num_proc: int | None = None):
    """Wikipedia and BookCorpus documents, concatenated (not yet split), each capped at max_documents."""
    import datasets

    cap = text_cfg.get("max_documents")
    wiki = load_source(text_cfg["wikipedia"], cache_dir, "data.text.wikipedia", num_proc)
    books = load_source(text_cfg["bookcorpus"], cache_dir, "data.text.bookcorpus", num_proc)
    wiki_docs = wikipedia_documents(wiki, max_documents=cap, num_proc=num_proc)
    book_docs = bookcorpus_documents(books, text_cfg["bookcorpus"]["lines_per_document"],
                                     max_documents=cap, num_proc=num_proc)
    print(f"corpus wikipedia {len(wiki_docs)} articles bookcorpus {len(book_docs)} documents", flush=True)
    return datasets.concatenate_datasets([wiki_docs, book_docs])
