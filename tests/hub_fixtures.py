"""Builders of test inputs in the exact formats the Hub and ImageNet deliver, from the tiny data.

Each builder writes a folder that the real loaders read through the same call the real run makes, with `path`
pointing at the folder instead of a Hub id:
  wikipedia       wikimedia/wikipedia: README.md `configs:` + <config>/train-0000k-of-0000n.parquet (id, url, title,
                  text; plain text with headings as bare lines and paragraphs separated by blank lines)
  bookcorpus      the Hub's parquet export of bookcorpus/bookcorpus (refs/convert/parquet): plain_text/train/
                  0000.parquet ..., column `text`, one sentence per row, no README (config `default`)
  squad_parquet   rajpurkar/squad: README.md (configs + dataset_info) + plain_text/{train,validation}-00000-of-00001
                  .parquet (id, title, context, question, answers{text, answer_start})
  squad_json      the official train-v1.1.json / dev-v1.1.json
  bert_tokenizer  bert-base-uncased's files: vocab.txt ([PAD] 0, [unused*], [UNK] 100, [CLS] 101, [SEP] 102,
                  [MASK] 103), tokenizer_config.json, config.json (tokenizer.json optional)
  imagenet        Kaggle's ILSVRC layout: <root>/LOC_val_solution.csv and <root>/ILSVRC/Data/CLS-LOC/ with
                  train/<wnid>/<wnid>_<k>.JPEG and a flat val/ILSVRC2012_val_<8 digits>.JPEG; real JPEG files of
                  varied sizes, one greyscale and one CMYK among them, as in ImageNet
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

WIKIPEDIA_CONFIG = "20231101.en"
SPECIALS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
WNIDS = ("n01440764", "n01443537", "n01484850")


def tiny_articles(n: int) -> list[dict]:
    """The first n articles of the tiny corpus (the Wikipedia excerpt in the gensim wheel): {id, title, text}."""
    from heavytail.data.wikitext import gensim_wiki_dump, iter_dump_articles

    articles = []
    for article in iter_dump_articles(gensim_wiki_dump()):
        articles.append(article)
        if len(articles) == n:
            break
    return articles


def _write_parquet(rows, path: Path, schema=None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_wikipedia(root: Path, articles: list[dict], shards: int = 2, config: str = WIKIPEDIA_CONFIG) -> Path:
    """wikimedia/wikipedia's layout; each article's paragraphs get a heading and a References section around
    them, as the plain-text dump has."""
    rows = [{"id": str(a["id"]), "url": f"https://en.wikipedia.org/wiki?curid={a['id']}", "title": a["title"],
             "text": "\n\n".join([a["text"].split("\n")[0], "History", *a["text"].split("\n")[1:], "References",
                                  "Smith, J. (2001). A book."])} for a in articles]
    for k in range(shards):
        _write_parquet(rows[k::shards], root / config / f"train-{k:05d}-of-{shards:05d}.parquet")
    (root / "README.md").write_text(
        f"---\nlanguage:\n- en\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: train\n"
        f"    path: {config}/train-*\n---\n# Wikipedia (test fixture in the wikimedia/wikipedia layout)\n")
    return root


def book_lines(articles: list[dict]) -> list[str]:
    """BookCorpus-style rows from article text: one lowercased sentence per row, punctuation split off."""
    lines = []
    for article in articles:
        for sentence in re.split(r"(?<=[.!?])\s+", article["text"].replace("\n", " ")):
            if sentence.strip():
                lines.append(re.sub(r"\s*([,.;:!?])", r" \1", sentence.lower()).strip())
    return lines


def write_bookcorpus_export(root: Path, lines: list[str], shards: int = 2) -> Path:
    """bookcorpus/bookcorpus as its parquet export branch holds it."""
    per = -(-len(lines) // shards)
    for k in range(shards):
        _write_parquet([{"text": t} for t in lines[k * per:(k + 1) * per]], root / "plain_text" / "train" /
                       f"{k:04d}.parquet")
    return root


def squad_articles(articles: list[dict], side_words: int = 4) -> list[dict]:
    """SQuAD v1.1 `data` articles with template questions on the tiny articles (answers are exact spans)."""
    from heavytail.data.qa import generate_wiki_articles

    out = generate_wiki_articles(articles, side_words)
    for article in out:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa.pop("kind", None)  # the official files have no `kind`
    return out


def write_squad_json(root: Path, train: list[dict], dev: list[dict]) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = root / "train-v1.1.json", root / "dev-v1.1.json"
    for path, data in zip(paths, (train, dev), strict=True):
        path.write_text(json.dumps({"data": data, "version": "1.1"}))
    return paths


SQUAD_README = """---
dataset_info:
  config_name: plain_text
  features:
  - name: id
    dtype: string
  - name: title
    dtype: string
  - name: context
    dtype: string
  - name: question
    dtype: string
  - name: answers
    sequence:
    - name: text
      dtype: string
    - name: answer_start
      dtype: int32
  splits:
{splits}configs:
- config_name: plain_text
  data_files:
  - split: train
    path: plain_text/train-*
  - split: validation
    path: plain_text/validation-*
  default: true
---
# SQuAD (test fixture in the rajpurkar/squad layout)
"""


def squad_rows(articles: list[dict]) -> list[dict]:
    return [{"id": qa["id"], "title": a["title"], "context": p["context"], "question": qa["question"],
             "answers": {"text": [x["text"] for x in qa["answers"]],
                         "answer_start": [int(x["answer_start"]) for x in qa["answers"]]}}
            for a in articles for p in a["paragraphs"] for qa in p["qas"]]


def write_squad_parquet(root: Path, train: list[dict], dev: list[dict]) -> Path:
    import pyarrow as pa

    schema = pa.schema([("id", pa.string()), ("title", pa.string()), ("context", pa.string()),
                        ("question", pa.string()),
                        ("answers", pa.struct([("text", pa.list_(pa.string())),
                                               ("answer_start", pa.list_(pa.int32()))]))])
    splits = ""
    for split, data in (("train", train), ("validation", dev)):
        path = root / "plain_text" / f"{split}-00000-of-00001.parquet"
        rows = squad_rows(data)
        _write_parquet(rows, path, schema)
        # datasets checks the card's example counts against the files, as it does for the real card
        splits += f"  - name: {split}\n    num_bytes: {path.stat().st_size}\n    num_examples: {len(rows)}\n"
    (root / "README.md").write_text(SQUAD_README.format(splits=splits))
    return root


def bert_vocab(words: list[str]) -> list[str]:
    """A vocabulary with bert-base-uncased's special-token ids: [unused*] fill the gaps, then the words."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert all(tokens[i] == name for name, i in SPECIALS.items())
    seen = set(tokens)
    return tokens + [w for w in words if not (w in seen or seen.add(w))]


def wordpiece_words(articles: list[dict], size: int = 1500) -> list[str]:
    """Characters, ##characters and the most frequent lowercase words of the articles: no [UNK] on them."""
    from collections import Counter

    text = " ".join(a["text"] for a in articles).lower()
    chars = sorted({c for c in text if not c.isspace()})
    words = [w for w, _ in Counter(re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", text)).most_common(size)]
    return chars + [f"##{c}" for c in chars] + words


def write_bert_tokenizer(root: Path, words: list[str], tokenizer_json: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab(words)
    (root / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    (root / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))
    (root / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert",
                                                  "vocab_size": len(vocab), "hidden_size": 768}))
    if tokenizer_json:
        from transformers import BertTokenizerFast

        fast = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
        fast.backend_tokenizer.save(str(root / "tokenizer.json"))
    return root


def _photo(rng: np.random.Generator, height: int, width: int, label: int) -> np.ndarray:
    """A smooth picture (gradients and a class-coloured disc) that compresses like a photo, not like noise."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 31 + 160) % 256], dtype=np.float64)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
    disc = ((y - cy) ** 2 + (x - cx) ** 2 < r * r)[..., None]
    background = np.stack([200 * x, 200 * y, 120 + 60 * x * y], axis=-1)
    image = np.where(disc, hue, background) + rng.normal(0, 6, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_imagenet(root: Path, wnids=WNIDS, train_per_class: int = 4, val_per_class: int = 2,
                   seed: int = 0) -> dict:
    """Kaggle's ImageNet layout (see the module docstring); returns its paths and the val labels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    sizes = [(48, 64), (64, 48), (40, 40), (56, 72)]

    def save(path: Path, label: int, k: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(_photo(rng, *sizes[k % len(sizes)], label))
        if k == 1:
            image = image.convert("L")  # ImageNet holds greyscale JPEGs ...
        elif k == 2 and label == 0:
            image = image.convert("CMYK")  # ... and a few CMYK ones
        image.save(path, "JPEG", quality=90)

    for label, wnid in enumerate(wnids):
        for k in range(train_per_class):
            save(data / "train" / wnid / f"{wnid}_{k}.JPEG", label, k)
    val_labels, number = {}, 0
    for k in range(val_per_class):
        for label, wnid in enumerate(wnids):
            number += 1
            image_id = f"ILSVRC2012_val_{number:08d}"
            save(data / "val" / f"{image_id}.JPEG", label, k)
            val_labels[image_id] = wnid
    # the devkit's labels: ImageId, then "wnid x_min y_min x_max y_max" once per box
    lines = ["ImageId,PredictionString"] + [f"{image_id},{wnid} 1 2 30 40 {wnid} 3 4 20 30 "
                                            for image_id, wnid in val_labels.items()]
    (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    return {"root": root, "imagenet_dir": data, "val_labels_file": root / "LOC_val_solution.csv",
            "val_labels": val_labels, "wnids": list(wnids)}
