"""Small- and paper-scale text inputs in their Hub formats: Wikipedia, BookCorpus, SQuAD, the BERT tokenizer.

The fixtures (tests/hub_fixtures.py) are folders in the Hub repos' layouts, read by the very `load_dataset` /
`from_pretrained` calls of a real run with `path` set to the folder. Revisions: unpinned sources resolve to a
commit (a fake Hub API stands in for the Hub) and the commit is recorded; every input problem is listed at once.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import hub_fixtures as fx
import numpy as np
import pytest

from heavytail.config import load_config
from heavytail.errors import ConfigError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def restore_environment():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny corpus's first articles, written as Wikipedia, BookCorpus and SQuAD in their Hub layouts."""
    root = tmp_path_factory.mktemp("hub")
    articles = fx.tiny_articles(12)
    wiki = fx.write_wikipedia(root / "wikipedia", articles)
    # a git clone of a Hub repo keeps the Hub's commit: the loader records it
    git = ["git", "-C", str(wiki), "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        subprocess.run(git + cmd, check=True, capture_output=True)
    books = fx.write_bookcorpus_export(root / "bookcorpus", fx.book_lines(articles[:6]))
    qa_articles = fx.squad_articles(articles[:6])
    return {"root": root, "articles": articles, "wiki": wiki, "books": books, "qa_articles": qa_articles,
            "wiki_commit": subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()}


def small_job(tmp_path: Path, **text) -> dict:
    """The small experiment's data job config, with paths inside tmp_path and data.text overridden."""
    cfg = {"scale": "small", "stage": "data", "paths": {"hf_home": str(tmp_path / "hf_home")},
           "data": copy.deepcopy(load_config(overrides={"scale": "small"})["data"])}
    cfg["data"]["text"].update(text)
    return cfg


def hub_sources(tiny, **books) -> dict:
    return {"wikipedia": {"path": str(tiny["wiki"]), "name": fx.WIKIPEDIA_CONFIG, "revision": None},
            "bookcorpus": {"path": str(tiny["books"]), "revision": None, "lines_per_document": 8, **books}}


def test_wikipedia_and_bookcorpus_in_hub_layout_through_the_real_loader(tiny, tmp_path):
    from heavytail.data import corpus

    cfg = small_job(tmp_path, validation_fraction=0.2, max_documents=None, **hub_sources(tiny))
    corpus.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "corpus")])
    ds = corpus.load_corpus(tmp_path / "corpus")
    rows = list(ds["train"]) + list(ds["validation"])
    wiki = {r["id"]: r for r in rows if r["id"].startswith("wiki-")}
    assert set(wiki) == {f"wiki-{a['id']}" for a in tiny["articles"]}  # both shards, every article kept
    first = tiny["articles"][0]
    assert wiki[f"wiki-{first['id']}"]["text"] == first["text"]  # heading and References dropped again
    n_lines = len(fx.book_lines(tiny["articles"][:6]))
    books = sorted((r for r in rows if r["id"].startswith("bookcorpus-")), key=lambda r: int(r["id"][11:]))
    assert [r["id"] for r in books] == [f"bookcorpus-{k}" for k in range(0, n_lines, 8)]
    stats = json.loads((tmp_path / "corpus" / "stats.json").read_text())
    source = stats["source"]
    assert source["wikipedia"]["revision"] == tiny["wiki_commit"] and source["wikipedia"]["local"]
    assert source["bookcorpus"]["revision"] is None and source["bookcorpus"]["path"] == str(tiny["books"])
    run = json.loads((tmp_path / "corpus" / "run.json").read_text())
    assert run["stats"]["source"]["wikipedia"]["revision"] == tiny["wiki_commit"]


def test_max_documents_caps_the_total_and_keeps_the_sources_proportions(tiny, tmp_path):
    from heavytail.data import corpus
    from heavytail.data.hf_text import mix_counts

    assert mix_counts({"wikipedia": 300, "bookcorpus": 100}, 40) == {"wikipedia": 30, "bookcorpus": 10}
    assert mix_counts({"wikipedia": 7, "bookcorpus": 2}, 4) == {"wikipedia": 3, "bookcorpus": 1}
    assert mix_counts({"wikipedia": 7, "bookcorpus": 2}, None) == {"wikipedia": 7, "bookcorpus": 2}
    n_blocks = -(-len(fx.book_lines(tiny["articles"][:6])) // 8)
    cap = (12 + n_blocks) // 2
    cfg = small_job(tmp_path, validation_fraction=0.3, max_documents=cap, split_seed=5, **hub_sources(tiny))
    corpus.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "corpus")])
    source = json.loads((tmp_path / "corpus" / "stats.json").read_text())["source"]
    drawn = {name: source[name]["drawn"] for name in ("wikipedia", "bookcorpus")}
    assert sum(drawn.values()) == cap  # the cap is on the total, not on each source
    assert drawn == mix_counts({"wikipedia": 12, "bookcorpus": n_blocks}, cap)
    ds = corpus.load_corpus(tmp_path / "corpus")
    ids = list(ds["train"]["id"]) + list(ds["validation"]["id"])
    wiki_ids = sorted(int(i[5:]) for i in ids if i.startswith("wiki-"))
    # a seeded sample of the whole source, not its first rows
    assert wiki_ids != sorted(int(a["id"]) for a in tiny["articles"])[:len(wiki_ids)]
    book_ids = [i for i in ids if i.startswith("bookcorpus-")]
    assert len(book_ids) == drawn["bookcorpus"] and all(int(i[11:]) % 8 == 0 for i in book_ids)
    # held-out documents come from both sources
    assert {i.split("-")[0] for i in ds["validation"]["id"]} == {"wiki", "bookcorpus"}


def fake_hub(files_by_revision: dict, commits: dict):
    """A stand-in for huggingface_hub.HfApi: dataset_info/model_info -> (sha, siblings) per revision."""
    calls = []

    def info(path, revision=None):
        calls.append((path, revision))
        files = files_by_revision[revision]
        return SimpleNamespace(sha=commits[revision], siblings=[SimpleNamespace(rfilename=f) for f in files])

    return SimpleNamespace(dataset_info=info, model_info=info, calls=calls)


def test_unpinned_hub_sources_resolve_to_a_commit(monkeypatch):
    from heavytail.data import hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    api = fake_hub({None: ["README.md", "20231101.en/train-00000-of-00041.parquet"]}, {None: COMMIT})
    resolved = hub.resolve("wikimedia/wikipedia", None, "data.text.wikipedia", api=api)
    assert resolved["revision"] == COMMIT and resolved["requested_revision"] is None and not resolved["local"]
    # BookCorpus's default branch holds only its loading script: read the parquet export, at its commit
    export = "b" * 40
    api = fake_hub({None: ["bookcorpus.py", "README.md"], hub.PARQUET_EXPORT: ["plain_text/train/0000.parquet"]},
                   {None: COMMIT, hub.PARQUET_EXPORT: export})
    resolved = hub.resolve("bookcorpus/bookcorpus", None, "data.text.bookcorpus", api=api)
    assert (resolved["revision"], resolved["branch"]) == (export, hub.PARQUET_EXPORT)
    assert api.calls == [("bookcorpus/bookcorpus", None), ("bookcorpus/bookcorpus", hub.PARQUET_EXPORT)]
    with pytest.raises(ConfigError, match=r"data.text.bookcorpus.revision: .* loading script .* refs/convert"):
        hub.resolve("bookcorpus/bookcorpus", COMMIT, "data.text.bookcorpus",
                    api=fake_hub({COMMIT: ["bookcorpus.py"]}, {COMMIT: COMMIT}))
    # the Hub converts only the first 5 GB of a big dataset, silently named partial-train: refuse it
    api = fake_hub({hub.PARQUET_EXPORT: ["plain_text/partial-train/0000.parquet"]}, {hub.PARQUET_EXPORT: export})
    with pytest.raises(ConfigError, match="partial"):
        hub.resolve("bookcorpus/bookcorpus", hub.PARQUET_EXPORT, "data.text.bookcorpus", api=api)
    from huggingface_hub import HfApi

    with pytest.raises(ConfigError, match=r"^data.text.wikipedia: cannot reach the Hub to resolve"):
        hub.resolve("wikimedia/wikipedia", None, "data.text.wikipedia", api=HfApi(endpoint="http://127.0.0.1:9"))


def test_every_input_problem_is_listed_at_once_offline(tmp_path):
    from heavytail.data.hf_text import text_problems
    from heavytail.data.qa import squad_problems
    from heavytail.data.tokenizer import tokenizer_problems

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    cfg = small_job(tmp_path)  # the small experiment as shipped: every Hub revision null
    problems = (text_problems(cfg["data"]["text"]) + squad_problems(cfg["data"]["qa"]["squad"])
                + tokenizer_problems(cfg["data"]["tokenizer"]))
    keys = [p.split(" ")[0] for p in problems]
    assert keys == ["data.text.wikipedia.revision", "data.text.bookcorpus.revision", "data.qa.squad.revision",
                    "data.tokenizer.revision"]
    assert all("HF_HUB_OFFLINE=1" in p and "pin" in p and "\n" not in p for p in problems)
    pinned = small_job(tmp_path, wikipedia={"path": "wikimedia/wikipedia", "revision": COMMIT},
                       bookcorpus={"path": str(tmp_path / "missing"), "revision": None, "lines_per_document": 8})
    assert text_problems(pinned["data"]["text"]) == [f"data.text.bookcorpus.path: folder {tmp_path / 'missing'} does not "
                                       "exist (point it at a local copy in the Hub's layout, or at a Hub "
                                       "dataset id)"]
    assert squad_problems({"train_json": str(tmp_path / "t.json"), "dev_json": None})[1].startswith(
        "data.qa.squad.dev_json: it is null")
    from heavytail.data import corpus

    with pytest.raises(ConfigError, match="data.text.wikipedia.revision .*; data.text.bookcorpus.revision"):
        corpus.main(["--config", json.dumps(cfg), "--out", str(tmp_path / "corpus")])
    assert not (tmp_path / "corpus").exists()


@pytest.mark.parametrize("tokenizer_json", [False, True], ids=["vocab-txt-only", "with-tokenizer-json"])
def test_bert_tokenizer_folder_in_the_bert_base_uncased_layout(tiny, tmp_path, tokenizer_json):
    from transformers import BertTokenizerFast

    from heavytail.data import tokenizer

    folder = fx.write_bert_tokenizer(tmp_path / "bert-base-uncased", fx.wordpiece_words(tiny["articles"]),
                                     tokenizer_json=tokenizer_json)
    cfg = small_job(tmp_path)
    cfg["data"]["tokenizer"].update(kind="pretrained", pretrained=str(folder), revision=None)
    out = tmp_path / "tokenizer"
    tokenizer.main(["--config", json.dumps(cfg), "--out", str(out)])
    loaded = BertTokenizerFast.from_pretrained(str(out))
    vocab = (folder / "vocab.txt").read_text().splitlines()
    assert loaded.get_vocab() == {t: i for i, t in enumerate(vocab)}  # the file's ids, not a rebuilt vocabulary
    assert [loaded.pad_token_id, loaded.unk_token_id, loaded.cls_token_id, loaded.sep_token_id,
            loaded.mask_token_id] == [0, 100, 101, 102, 103]
    text = tiny["articles"][0]["text"].split("\n")[0]
    tokens = loaded.tokenize(text)
    assert "[UNK]" not in tokens and tokens[0] == text.split()[0].lower()
    stats = json.loads((out / "tokenizer_stats.json").read_text())
    assert stats["source"]["path"] == str(folder) and stats["source"]["local"]


def test_squad_parquet_and_official_json_give_the_same_qa(tiny, tmp_path):
    from heavytail.data import qa

    train, dev = tiny["qa_articles"][:4], tiny["qa_articles"][4:]
    assert train and dev
    train_json, dev_json = fx.write_squad_json(tmp_path / "squad_json", train, dev)
    folder = fx.write_squad_parquet(tmp_path / "squad", train, dev)
    outputs = {}
    for name, squad in (("json", {"train_json": str(train_json), "dev_json": str(dev_json)}),
                        ("parquet", {"path": str(folder), "name": "plain_text", "revision": None,
                                     "train_json": None, "dev_json": None})):
        cfg = small_job(tmp_path)
        cfg["data"]["qa"] = {"source": "squad_v1", "squad": squad}
        qa.main(["--config", json.dumps(cfg), "--out", str(tmp_path / name)])
        outputs[name] = {split: json.loads((tmp_path / name / f"{split}.json").read_text())
                         for split in ("train", "dev")}
    assert outputs["parquet"] == outputs["json"] == {"train": {"version": "1.1", "data": train},
                                                     "dev": {"version": "1.1", "data": dev}}
    source = json.loads((tmp_path / "parquet" / "stats.json").read_text())["source"]
    assert source["path"] == str(folder) and source["local"] and source["name"] == "plain_text"
    ds = qa.load_squad_json(tmp_path / "parquet" / "dev.json")
    assert int(np.sum([len(a["text"]) for a in ds["answers"]])) >= len(ds)


def test_data_problems_gathers_every_stage(tmp_path):
    from heavytail.preflight import input_problems

    cfg = small_job(tmp_path)
    cfg["paths"]["imagenet_dir"] = str(tmp_path / "no_imagenet")
    problems = input_problems(cfg, ("text", "tokenizer", "qa", "images"))["user"]
    assert [p.split(" ")[0].rstrip(":") for p in problems] == [
        "data.text.wikipedia.revision", "data.text.bookcorpus.revision", "data.tokenizer.revision",
        "data.qa.squad.revision", "paths.imagenet_dir"]
    # a BERT-only DAG needs no ImageNet
    assert input_problems(cfg, ("text", "tokenizer", "qa"))["user"] == problems[:-1]
