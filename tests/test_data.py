"""Data preparation on small real-format files: MediaWiki bz2 dump, parquet shards, idx .gz, ImageFolder, SQuAD."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets/transformers are imported anywhere below
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import bz2  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from xml.sax.saxutils import escape  # noqa: E402

import pytest  # noqa: E402

from heavytail.config import load_config  # noqa: E402
from heavytail.errors import ConfigError  # noqa: E402
from heavytail.preflight import preflight  # noqa: E402

N_ARTICLES = 8


@pytest.fixture(autouse=True)
def restore_environment():
    """The entry points point HF_HOME at paths.hf_home (a tmp folder here); undo that after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


# --------------------------------------------------------------------------- real-format input files
def article_markup(i: int) -> str:
    """Wiki markup of one article, with the constructs a real dump has: templates, links, refs, files, lists."""
    return f"""{{{{Infobox settlement|name=Exampleton {i}|population=12{i}00}}}}
'''Exampleton {i}''' is a [[city|small city]] in the [[Kingdom of Example]], on the banks of the river Ex.<ref>{{{{cite book|title=Towns|year=2001}}}}</ref> It was founded in 15{i}0 by [[John Smith (settler)|John Smith]], a merchant from the coast.

== History ==
In 18{i}7, the council of Exampleton {i} built a new harbour, which doubled the trade of the town within a decade. About 4{i}% of the people worked in fishing, and the town had 3{i} churches by the end of the century.
[[File:Exampleton.jpg|thumb|A caption that is not prose]]
* A list item that must not survive cleaning, however long it happens to be here.

== Economy ==
Exampleton {i} is a centre of the wool trade in the region. Its market, held every Tuesday since 16{i}2, draws traders from the whole valley, and the "Great Fair" is famous (see below).

== See also ==
* [[Another town]] is a link list that belongs to the back matter of the article.

== References ==
{{{{reflist}}}}
[[Category:Example towns]]
"""


def page_xml(title: str, page_id: int, text: str, ns: int = 0) -> str:
    return (f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>\n"
            f"    <revision>\n      <id>{page_id * 10}</id>\n      <text xml:space=\"preserve\">{escape(text)}</text>\n"
            "    </revision>\n  </page>\n")


def write_wiki_dump(path: Path) -> Path:
    pages = [page_xml(f"Exampleton {i}", 100 + i, article_markup(i)) for i in range(N_ARTICLES)]
    pages.insert(2, page_xml("Exampletown", 90, "#REDIRECT [[Exampleton 0]]"))
    pages.insert(4, page_xml("Tiny stub", 91, "'''Tiny stub''' is a stub with far too few words to keep."))
    pages.append(page_xml("Wikipedia:About", 92, article_markup(0), ns=4))
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
           "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n  </siteinfo>\n" + "".join(pages) + "</mediawiki>\n")
    path.write_bytes(bz2.compress(xml.encode("utf-8")))
    return path


def job_config(tmp_path: Path, **data_overrides) -> dict:
    """The tiny experiment's data job config, with paths inside tmp_path and `data` sections overridden."""
    resolved = load_config()
    cfg = {"scale": "tiny", "stage": "data", "paths": {"hf_home": str(tmp_path / "hf_home"),
                                                      "imagenet_dir": str(tmp_path / "imagenet")},
           "data": copy.deepcopy(resolved["data"])}
    for section, values in data_overrides.items():
        cfg["data"][section].update(values)
    return cfg


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One corpus from the tiny dump, shared by the corpus, tokenizer and QA tests."""
    from heavytail.data import corpus

    tmp = tmp_path_factory.mktemp("data")
    dump = write_wiki_dump(tmp / "dump.xml.bz2")
    cfg = job_config(tmp, text={"wiki_dump": str(dump), "validation_fraction": 0.4, "split_seed": 3})
    corpus.main(["--config", json.dumps(cfg), "--out", str(tmp / "corpus")])
    return {"tmp": tmp, "dump": dump, "cfg": cfg, "corpus": tmp / "corpus"}


# --------------------------------------------------------------------------- corpus
def test_corpus_split_by_article_keeps_clean_prose(built):
    from heavytail.data.corpus import load_corpus

    ds = load_corpus(built["corpus"])
    assert set(ds) == {"train", "validation"}
    assert ds["train"].column_names == ["id", "title", "text"]
    train_ids, val_ids = set(ds["train"]["id"]), set(ds["validation"]["id"])
    assert not train_ids & val_ids
    # redirect (90), stub (91) and the Wikipedia: namespace page (92) are dropped; 40% of 8 = 3 held out
    assert train_ids | val_ids == {str(100 + i) for i in range(N_ARTICLES)}
    assert len(val_ids) == 3
    text = ds["train"][0]["text"]
    i = int(ds["train"][0]["title"].split()[-1])
    assert text.split("\n")[0] == (f"Exampleton {i} is a small city in the Kingdom of Example, on the banks of "
                                   f"the river Ex. It was founded in 15{i}0 by John Smith, a merchant from the coast.")
    assert len(text.split("\n")) == 3  # lead, history, economy; headings, list, caption and back matter gone
    for leftover in ("[[", "{{", "'''", "<ref", "Infobox", "thumb", "Category", "list item", "link list"):
        assert leftover not in text
    assert '"Great Fair" is famous (see below).' in text  # punctuation and case are kept
    stats = json.loads((built["corpus"] / "stats.json").read_text())
    assert stats["validation"]["articles"] == 3 and stats["train"]["articles"] == N_ARTICLES - 3
    assert stats["train"]["paragraphs"] == 3 * (N_ARTICLES - 3)
    assert stats["train"]["words"] == sum(len(t.split()) for t in ds["train"]["text"])
    assert json.loads((built["corpus"] / "run.json").read_text())["status"] == "ok"


def test_truncated_or_corrupt_dump_rejected_before_any_output(built, tmp_path):
    from heavytail.data import corpus

    good = built["dump"].read_bytes()
    truncated = tmp_path / "truncated.xml.bz2"
    truncated.write_bytes(good[: len(good) * 2 // 3])
    corrupt = tmp_path / "corrupt.xml.bz2"
    corrupt.write_bytes(good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:])
    for bad in (truncated, corrupt):
        cfg = job_config(tmp_path, text={"wiki_dump": str(bad)})
        with pytest.raises(ConfigError, match="data.text.wiki_dump") as err:
            corpus.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "out" / "corpus")])
        assert "\n" not in str(err.value)
        problems, _ = preflight(cfg, {"text"})  # the Snakefile's parse-time check
        assert len(problems) == 1 and ("truncated" in problems[0] or "corrupt" in problems[0])
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- paper-scale text loader
def write_parquet_sources(folder: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    wiki_files = []
    for shard in range(2):  # wikimedia/wikipedia columns: id, url, title, text (plain text, headings as lines)
        rows = [{"id": str(10 * shard + i), "url": f"https://en.wikipedia.org/wiki?curid={10 * shard + i}",
                 "title": f"Topic {10 * shard + i}",
                 "text": f"Topic {i} is a subject studied since 1900 by many careful people around the world.\n\n"
                         "History\n\nIt grew quickly after the war, when new schools opened in every large city "
                         "of the country and abroad.\n\nToday it is taught in universities, where students read "
                         "the classic texts and write long essays about them.\n\nReferences\n\nSmith, J. (2001)."}
                for i in range(5)]
        path = folder / f"train-{shard:05d}-of-00002.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        wiki_files.append(str(path))
    lines = [f"sentence {k} of the book , he said ." for k in range(100)]
    books = folder / "bookcorpus-0000.parquet"
    pq.write_table(pa.table({"text": lines}), books)
    return {"wikipedia": wiki_files, "bookcorpus": [str(books)]}


def test_hf_wikipedia_bookcorpus_loader_on_local_parquet(tmp_path):
    from heavytail.data import corpus

    files = write_parquet_sources(tmp_path / "shards")
    cfg = job_config(tmp_path, text={
        "source": "hf_wikipedia_bookcorpus", "validation_fraction": 0.25, "max_documents": None,
        "wikipedia": {"path": "wikimedia/wikipedia", "revision": None, "data_files": files["wikipedia"]},
        "bookcorpus": {"path": "bookcorpus/bookcorpus", "revision": None, "data_files": files["bookcorpus"],
                       "lines_per_document": 30}})
    corpus.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "corpus")])
    ds = corpus.load_corpus(tmp_path / "corpus")
    rows = list(ds["train"]) + list(ds["validation"])
    assert not set(ds["train"]["id"]) & set(ds["validation"]["id"])
    wiki = sorted((r for r in rows if r["id"].startswith("wiki-")), key=lambda r: int(r["id"][5:]))
    books = sorted((r for r in rows if r["id"].startswith("bookcorpus-")), key=lambda r: int(r["id"][11:]))
    assert [r["id"] for r in wiki] == [f"wiki-{k}" for k in (0, 1, 2, 3, 4, 10, 11, 12, 13, 14)]
    assert wiki[0]["title"] == "Topic 0"
    assert wiki[0]["text"].split("\n") == [  # heading and back matter dropped, paragraphs kept
        "Topic 0 is a subject studied since 1900 by many careful people around the world.",
        "It grew quickly after the war, when new schools opened in every large city of the country and abroad.",
        "Today it is taught in universities, where students read the classic texts and write long essays about them."]
    assert [r["id"] for r in books] == ["bookcorpus-0", "bookcorpus-30", "bookcorpus-60", "bookcorpus-90"]
    assert books[1]["text"].split("\n")[0] == "sentence 30 of the book , he said ."
    assert len(books[3]["text"].split("\n")) == 10  # 100 lines = 3 x 30 + 10
    assert len(ds["validation"]) == 4  # round(0.25 * 14)


def test_unpinned_hub_source_rejected_offline(tmp_path):
    from heavytail.data import corpus

    cfg = job_config(tmp_path, text={"source": "hf_wikipedia_bookcorpus"})
    with pytest.raises(ConfigError, match="data.text.wikipedia.revision is null and HF_HUB_OFFLINE=1"):
        corpus.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "corpus")])
    assert not (tmp_path / "corpus").exists()


# --------------------------------------------------------------------------- tokenizer
def test_wordpiece_tokenizer_round_trips_through_bert_tokenizer_fast(built):
    from transformers import BertTokenizerFast

    from heavytail.data import tokenizer
    from heavytail.data.corpus import load_corpus

    out = built["tmp"] / "tokenizer"
    cfg = job_config(built["tmp"], tokenizer={"kind": "train_wordpiece", "vocab_size": 200})
    tokenizer.main(["--config", json.dumps(cfg), "--corpus", str(built["corpus"]), "--out", str(out)])
    vocab_lines = (out / "vocab.txt").read_text().splitlines()
    loaded = BertTokenizerFast.from_pretrained(str(out))
    assert len(loaded) == len(vocab_lines) == json.loads((out / "tokenizer_stats.json").read_text())["vocab_size"]
    assert vocab_lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert all(loaded.convert_tokens_to_ids(tok) == i for i, tok in enumerate(vocab_lines))
    # the trainer numbers its alphabet in hash-map order, different on every run: the saved ids must not
    # depend on it, or a rerun of the tokenizer rule would permute the ids pretrained checkpoints were trained on
    from tokenizers.models import WordPiece

    trained = tokenizer.train_wordpiece(load_corpus(built["corpus"])["train"], 200)
    tokens = sorted(trained.get_vocab(), key=trained.get_vocab().get)
    for order in (tokens, tokens[::-1]):
        trained.model = WordPiece(vocab={t: i for i, t in enumerate(order)}, unk_token="[UNK]")
        tokenizer.save_bert_tokenizer(trained, built["tmp"] / "renumbered")
        saved = (built["tmp"] / "renumbered" / "vocab.txt").read_text().splitlines()
        assert saved[:5] == vocab_lines[:5] and saved[5:] == sorted(set(tokens) - set(saved[:5]))
    tokens = loaded.tokenize("The Harbour of Exampleton doubled the trade.")
    assert "[UNK]" not in tokens and any(t.startswith("##") for t in tokens)  # real subwords, lowercased
    assert loaded.convert_tokens_to_string(tokens) == "the harbour of exampleton doubled the trade."
    ids = loaded("the town", "the river")["input_ids"]
    assert ids[0] == loaded.cls_token_id and ids.count(loaded.sep_token_id) == 2
    # kind=pretrained takes a Hub name or a folder: here the folder just written stands in for bert-base-uncased
    copy_out = built["tmp"] / "tokenizer_pretrained"
    cfg = job_config(built["tmp"], tokenizer={"kind": "pretrained", "pretrained": str(out)})
    tokenizer.main(["--config", json.dumps(cfg), "--out", str(copy_out)])
    assert BertTokenizerFast.from_pretrained(str(copy_out)).get_vocab() == loaded.get_vocab()
    cfg = job_config(built["tmp"], tokenizer={"kind": "pretrained", "pretrained": "bert-base-uncased"})
    with pytest.raises(ConfigError, match="data.tokenizer.revision is null and HF_HUB_OFFLINE=1"):
        tokenizer.main(["--config", json.dumps(cfg), "--out", str(built["tmp"] / "no_tokenizer")])
    assert not (built["tmp"] / "no_tokenizer").exists()


# --------------------------------------------------------------------------- QA
def test_question_templates_known_answers():
    from heavytail.data.qagen import paragraph_questions

    paragraph = ("The first known use of this word was in 1539. The U.S. imports 7% of its oil, about 300 barrels "
                 "a day. Anarchism is a political philosophy that rejects rulers.")
    found = {q.kind: q for q in paragraph_questions(paragraph)}
    assert found["year"].question == "The first known use of this word was in what year?"
    assert (found["year"].answer, found["year"].answer_start) == ("1539", 40)
    assert found["percent"].question == "The U.S. imports what percentage of its oil, about 300 barrels a day?"
    assert found["count"].question == "The U.S. imports 7% of its oil, about how many barrels a day?"
    assert found["definition"].question == "What is a political philosophy that rejects rulers?"
    for q in found.values():
        assert paragraph[q.answer_start:q.answer_start + len(q.answer)] == q.answer
    # short questions keep `side_words` words on each side of the wh-phrase, like SQuAD's ~10-word questions
    short = {q.kind: q for q in paragraph_questions(paragraph, side_words=3)}
    assert short["year"].question == "Word was in what year?"  # the year's sentence ends at the year
    assert short["count"].question == "Its oil, about how many barrels a day?"
    assert short["percent"].question == "The U.S. imports what percentage of its oil?"
    assert "definition" not in short  # "What is a political" is under MIN_QUESTION_WORDS: too little to go on
    assert all(short[kind].answer_start == found[kind].answer_start for kind in short)


def test_first_of_kind_baseline_knows_the_answer_type_not_the_answer():
    from heavytail.data.qagen import asked_kind, first_of_kind

    context = ("Rome was founded in 753 BC. In 1871 it became the capital, and in 1946 a republic. About 40% of "
               "Italians lived in 3 regions. Rome is the capital of Italy.")
    assert asked_kind("In 1871 it became what?") == "definition"
    assert asked_kind("And in what year a republic?") == "year"
    assert first_of_kind("And in what year a republic?", context) == "1871"  # the first year, not the right one
    assert first_of_kind("About what percentage of Italians?", context) == "40%"
    assert first_of_kind("Lived in how many regions?", context) == "3"
    assert first_of_kind("What is the capital of Italy?", context) == "Rome"
    assert first_of_kind("Which decade?", context) == ""  # no decade in the context


@pytest.mark.parametrize("train_from", ["training_articles", "held_out"])
def test_generated_qa_is_squad_format_with_dev_from_held_out_articles(built, train_from):
    from heavytail.data import qa
    from heavytail.data.corpus import load_corpus

    out = built["tmp"] / f"qa-{train_from}"
    cfg = job_config(built["tmp"], qa={"source": "generated_wiki", "seed": 0, "dev_fraction": 0.3,
                                       "train_from": train_from, "question_side_words": 4})
    qa.main(["--config", json.dumps(cfg), "--corpus", str(built["corpus"]), "--out", str(out)])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["description"] == "QA generated from Wikipedia (not SQuAD)"
    assert stats["source"]["train_from"] == train_from
    docs = {split: json.loads((out / f"{split}.json").read_text()) for split in ("train", "dev")}
    titles = {split: {a["title"] for a in doc["data"]} for split, doc in docs.items()}
    corpus = load_corpus(built["corpus"])
    held_out = set(corpus["validation"]["title"])
    assert not titles["train"] & titles["dev"]
    if train_from == "held_out":
        assert titles["train"] | titles["dev"] == held_out
    else:  # dev is every held-out article: the encoder never saw its text in pretraining
        assert titles["dev"] == held_out and titles["train"] <= set(corpus["train"]["title"])
    n_questions = 0
    for doc in docs.values():
        assert doc["version"] == "1.1"
        for article in doc["data"]:
            for paragraph in article["paragraphs"]:
                for item in paragraph["qas"]:
                    answer = item["answers"][0]
                    start = answer["answer_start"]
                    assert paragraph["context"][start:start + len(answer["text"])] == answer["text"]
                    assert item["question"].endswith("?") and len(item["question"].split()) <= 4 + 3 + 4
                    n_questions += 1
    assert n_questions == stats["questions"] == stats["train"]["questions"] + stats["dev"]["questions"]
    assert n_questions >= 3 * 6  # each held-out article has at least six year/count/percent/definition spans
    assert len(qa.load_squad_json(out / "dev.json")) == stats["dev"]["questions"]


SQUAD_SAMPLE = {"version": "1.1", "data": [{"title": "Normans", "paragraphs": [{
    "context": "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "qas": [{"id": "56ddde6b9a695914005b9628", "question": "In what country is Normandy located?",
             "answers": [{"text": "Normandy", "answer_start": 82}, {"text": "Normandy", "answer_start": 82}]},
            {"id": "56ddde6b9a695914005b9629", "question": "When were the Normans in Normandy?",
             "answers": [{"text": "10th and 11th centuries", "answer_start": 39}]}]}]}]}


def test_squad_json_loader_and_squad_v1_from_files(tmp_path):
    from heavytail.data import qa

    (tmp_path / "train-v1.1.json").write_text(json.dumps(SQUAD_SAMPLE))
    (tmp_path / "dev-v1.1.json").write_text(json.dumps(SQUAD_SAMPLE))
    ds = qa.load_squad_json(tmp_path / "train-v1.1.json")
    assert ds.column_names == ["id", "title", "context", "question", "answers"]
    assert ds[1]["answers"] == {"text": ["10th and 11th centuries"], "answer_start": [39]}
    assert ds[0]["title"] == "Normans" and len(ds[0]["answers"]["text"]) == 2
    cfg = job_config(tmp_path, qa={"source": "squad_v1", "squad": {
        "path": "rajpurkar/squad", "revision": None, "train_json": str(tmp_path / "train-v1.1.json"),
        "dev_json": str(tmp_path / "dev-v1.1.json")}})
    qa.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "qa")])
    assert json.loads((tmp_path / "qa" / "dev.json").read_text()) == SQUAD_SAMPLE
    assert json.loads((tmp_path / "qa" / "stats.json").read_text())["questions"] == 4
    broken = copy.deepcopy(SQUAD_SAMPLE)
    broken["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 40
    (tmp_path / "dev-v1.1.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigError, match="is not SQuAD v1.1 JSON"):
        qa.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "qa2")])
    assert not (tmp_path / "qa2").exists()
