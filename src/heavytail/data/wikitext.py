"""MediaWiki dump -> clean prose articles, with gensim's own wikicorpus parser and markup filter.

gensim's `tokenize` lowercases and drops punctuation, which a BERT corpus must keep, so only its page
extraction (`extract_pages`) and markup removal (`filter_wiki`) are used; paragraphs are kept whole.
"""

from __future__ import annotations

import bz2
import importlib.util
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from heavytail.errors import ConfigError

MIN_PARAGRAPH_WORDS = 8  # shorter lines are captions, list items or leftovers of tables and infoboxes
MIN_ARTICLE_WORDS = 50  # gensim's ARTICLE_MIN_WORDS: disambiguation pages and stubs fall below it
BACK_MATTER = {"see also", "references", "external links", "further reading", "notes", "bibliography",
               "sources", "footnotes", "citations", "notes and references", "works cited"}

_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_BOLD_ITALIC = re.compile(r"'{2,}")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)")  # left behind where templates such as {{lang|...}} stood
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_MARKUP_START = tuple("*#:;|!{}=<")
_SENTENCE_END = (".", "!", "?", '"', "'", ")", "\u201d")


def clean_paragraph(line: str) -> str:
    """Tidy one line of filtered wiki text: drop emphasis quotes, empty parentheses and doubled spaces."""
    line = _BOLD_ITALIC.sub("", line.replace("\u00a0", " "))
    line = _EMPTY_PARENS.sub("", line)
    line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
    return _SPACES.sub(" ", line).strip()


def is_prose(line: str) -> bool:
    """A paragraph of running text: long enough and ending like a sentence (headings and captions do not)."""
    return len(line.split()) >= MIN_PARAGRAPH_WORDS and line.endswith(_SENTENCE_END)


def prose_paragraphs(lines: Iterable[str]) -> list[str]:
    """Keep the prose paragraphs of an article, stopping at its back matter (references, external links)."""
    paragraphs = []
    for raw in lines:
        line = raw.strip()
        heading = _HEADING.match(line)
        if heading:
            if heading.group(2).strip().lower() in BACK_MATTER:
                break
            continue
        if line.lower() in BACK_MATTER:  # plain-text dumps (wikimedia/wikipedia) keep headings as bare lines
            break
        if not line or line.startswith(_MARKUP_START):
            continue
        line = clean_paragraph(line)
        if is_prose(line):
            paragraphs.append(line)
    return paragraphs


def wiki_markup_to_paragraphs(raw: str) -> list[str]:
    """Wiki markup of one page -> its prose paragraphs, using gensim's markup filter."""
    from gensim.corpora.wikicorpus import filter_wiki

    return prose_paragraphs(filter_wiki(raw).split("\n"))


def is_redirect(raw: str) -> bool:
    return raw.lstrip()[:9].upper() == "#REDIRECT"


def iter_dump_articles(dump: Path) -> Iterator[dict]:
    """Articles of a pages-articles .xml.bz2 dump as {id, title, text}; redirects, stubs, other namespaces skipped."""
    from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, extract_pages

    with bz2.BZ2File(dump) as fh:
        for title, raw, page_id in extract_pages(fh, filter_namespaces=("0",)):
            if not raw or is_redirect(raw) or any(title.startswith(ns + ":") for ns in IGNORED_NAMESPACES):
                continue
            paragraphs = wiki_markup_to_paragraphs(raw)
            if sum(len(p.split()) for p in paragraphs) < MIN_ARTICLE_WORDS:
                continue
            yield {"id": str(page_id), "title": title, "text": "\n".join(paragraphs)}


# --- the tiny corpus: the dump inside the gensim wheel, checked before any job reads it ------------------------

GENSIM_WIKI_DUMP = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def gensim_wiki_dump() -> Path:
    """The real English Wikipedia excerpt shipped inside the gensim wheel, located without importing gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("data.text.wiki_dump: gensim is not installed, and its wheel ships the tiny corpus "
                          "(pip install gensim, or set data.text.wiki_dump to a MediaWiki .xml.bz2 dump)")
    return Path(list(spec.submodule_search_locations)[0]) / GENSIM_WIKI_DUMP


def wiki_dump_path(data_cfg: dict) -> Path:
    configured = data_cfg["text"].get("wiki_dump")
    return Path(configured) if configured else gensim_wiki_dump()


def check_bz2_file(path: Path, key: str) -> None:
    """A truncated or corrupt bz2 file fails decompression; read it to the end, in chunks."""
    if not path.is_file():
        raise ConfigError(f"{key}: corpus file {path} does not exist (reinstall gensim or point {key} at a dump)")
    decompressor = bz2.BZ2Decompressor()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                decompressor.decompress(chunk)
                if decompressor.eof and fh.read(1):
                    break  # multi-stream bz2: the first stream is intact, which is all a check needs
    except (OSError, EOFError, ValueError) as exc:
        raise ConfigError(f"{key}: corpus file {path} is corrupt ({exc}); reinstall gensim "
                          f"(pip install --force-reinstall gensim) or point {key} at an intact dump") from exc
    if not decompressor.eof:
        raise ConfigError(f"{key}: corpus file {path} is truncated (bz2 stream ends early); reinstall gensim "
                          f"(pip install --force-reinstall gensim) or point {key} at an intact dump")
