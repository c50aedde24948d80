"""SQuAD fine-tuning: BERT's windows and labels, n-best postprocessing, the v1.1 loader, an engine run, Table 3."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_job

from heavytail.data.qa import load_squad_json
from heavytail.data.squad import (
    FeatureSpec,
    doc_windows,
    featurize,
    first_of_kind_baseline,
    first_year_baseline,
    is_max_context,
    postprocess_predictions,
    references,
)
from heavytail.io import read_json, read_jsonl, write_json
from heavytail.metrics import squad_v1

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the a of in was and to what year city king river built museum opened first war ended people lived "
         "town bridge old new north south empire founded school church").split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DIGITS = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tok")
    vocab = SPECIALS + sorted(set(WORDS)) + DIGITS + [".", ","]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(folder))
    return BertTokenizerFast.from_pretrained(str(folder))


def year_paragraph(rng: random.Random, sentences: int) -> tuple[str, list[tuple[str, str, int]]]:
    """A context of `sentences` sentences, each with one year; (question, year, char start) per sentence."""
    parts, questions, offset = [], [], 0
    for _ in range(sentences):
        year = str(rng.randint(1100, 2020))
        words = rng.sample(WORDS[8:], 4)
        sentence = f"The {words[0]} {words[1]} was {words[2]} in {year} {words[3]}."
        questions.append((f"The {words[0]} {words[1]} was {words[2]} in what year {words[3]}?", year,
                          offset + sentence.index(year)))
        parts.append(sentence)
        offset += len(sentence) + 1
    return " ".join(parts), questions


def squad_rows(n_paragraphs: int, sentences: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    articles = []
    for p in range(n_paragraphs):
        context, questions = year_paragraph(rng, sentences)
        qas = [{"id": f"s{seed}-p{p}-q{i}", "question": q, "answers": [{"text": a, "answer_start": s}]}
               for i, (q, a, s) in enumerate(questions)]
        articles.append({"title": f"article {p}", "paragraphs": [{"context": context, "qas": qas}]})
    return articles


def write_squad(path: Path, articles: list[dict]) -> Path:
    write_json(path, {"version": "1.1", "data": articles})
    return path


def test_doc_windows_and_max_context_follow_bert():
    # BERT's own example: "the man went to the store and bought a gallon of milk", spans A, B, C
    windows = [(0, 5), (3, 5), (6, 5)]
    assert is_max_context(windows, 2, 7) and not is_max_context(windows, 1, 7)  # "bought": span C
    assert doc_windows(12, 5, 3) == [(0, 5), (3, 5), (6, 5), (9, 3)]
    assert doc_windows(4, 5, 3) == [(0, 4)]


def test_windows_round_trip_answers_on_a_long_context(tokenizer, tmp_path):
    dataset = load_squad_json(write_squad(tmp_path / "train.json", squad_rows(2, 12, seed=1)))
    spec = FeatureSpec(max_seq_length=48, doc_stride=16, max_query_length=16)
    features = featurize(dataset, tokenizer, spec)
    gold = {row["id"]: row["answers"]["text"][0] for row in dataset}
    windows_per_example = pd.Series(features["example_id"]).value_counts()
    assert windows_per_example.min() >= 4  # the context needs several windows
    labelled = 0
    for row in features:
        assert len(row["input_ids"]) == spec.max_seq_length
        s, e = row["start_positions"], row["end_positions"]
        if s == 0:
            assert e == 0  # no answer in this window: CLS
            continue
        labelled += 1
        context = next(r["context"] for r in dataset if r["id"] == row["example_id"])
        assert context[row["offset_mapping"][s][0]:row["offset_mapping"][e][1]] == gold[row["example_id"]]
        assert row["token_type_ids"][s] == 1 and row["attention_mask"][e] == 1
    # every question's answer is whole in at least one window; other windows are labelled CLS
    assert labelled >= len(dataset) and labelled < len(features)
    # the cached map gives the same windows
    cached = featurize(dataset, tokenizer, spec, cache_dir=tmp_path / "cache")
    again = featurize(dataset, tokenizer, spec, cache_dir=tmp_path / "cache")
    assert cached["input_ids"] == again["input_ids"] == features["input_ids"]
    assert len(list((tmp_path / "cache").glob("*.arrow"))) == 1


def test_postprocessing_picks_the_gold_span_from_constructed_logits(tokenizer, tmp_path):
    dataset = load_squad_json(write_squad(tmp_path / "dev.json", squad_rows(1, 10, seed=2)))
    spec = FeatureSpec(max_seq_length=40, doc_stride=12, max_query_length=16)
    features = featurize(dataset, tokenizer, spec)
    n, length = len(features), spec.max_seq_length
    rng = np.random.default_rng(0)
    start, end = rng.normal(0, 0.1, (n, length)), rng.normal(0, 0.1, (n, length))
    for f, row in enumerate(features):
        ctx = [i for i, (a, _) in enumerate(row["offset_mapping"]) if a >= 0]
        start[f, 1] = end[f, 1] = 100.0  # a question token: never part of an answer
        if row["start_positions"] > 0:  # the gold span (80), in every window that holds it whole
            start[f, row["start_positions"]] = end[f, row["end_positions"]] = 40.0
        else:  # invalid spans that outscore it: reversed, and 5 tokens (over max_answer_length)
            start[f, ctx[2]] = end[f, ctx[0]] = end[f, ctx[2] + 4] = 45.0
    predictions = postprocess_predictions(dataset, features, start, end, n_best_size=5, max_answer_length=4)
    assert predictions == {row["id"]: row["answers"]["text"][0] for row in dataset}
    assert squad_v1(predictions, references(dataset)) == {"exact_match": 100.0, "f1": 100.0}


def test_loader_reads_the_official_v1_1_layout_with_several_answers(tmp_path):
    context = "Architecturally, the school has a Catholic character. It was founded in 1842 by Father Sorin."
    doc = {"version": "1.1", "data": [{"title": "University_of_Notre_Dame", "paragraphs": [{
        "context": context,
        "qas": [{"id": "5733be284776f41900661182", "question": "When was the school founded?",
                 "answers": [{"answer_start": 72, "text": "1842"}, {"answer_start": 72, "text": "1842"},
                             {"answer_start": 69, "text": "in 1842"}]},
                {"id": "5733be284776f4190066117f", "question": "Who founded it?",
                 "answers": [{"answer_start": 80, "text": "Father Sorin"}]}]}]}]}
    path = tmp_path / "dev-v1.1.json"
    path.write_text(json.dumps(doc))
    dataset = load_squad_json(path)
    assert dataset.column_names == ["id", "title", "context", "question", "answers"]
    refs = references(dataset)
    assert refs == {"5733be284776f41900661182": ["1842", "1842", "in 1842"],
                    "5733be284776f4190066117f": ["Father Sorin"]}
    assert first_year_baseline(dataset) == {"5733be284776f41900661182": "1842", "5733be284776f4190066117f": "1842"}
    assert squad_v1(first_year_baseline(dataset), refs) == {"exact_match": 50.0, "f1": 50.0}
    # "when" asks for a year; "who" is no template's question, so that baseline answers nothing
    assert first_of_kind_baseline(dataset) == {"5733be284776f41900661182": "1842", "5733be284776f4190066117f": ""}


def write_pretraining_run(root: Path, vocab_size: int, kind: str = "absolute"):
    """A pretraining run folder as heavytail.train.pretrain leaves it: checkpoint.pt, resolved_config.json, hf_model/."""
    from heavytail.models.bert import build_bert
    from heavytail.train.checkpoint import save_checkpoint

    arch = {"num_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "dropout": 0.0,
            "position_embedding": kind}
    torch.manual_seed(0)
    model = build_bert(arch, vocab_size, 64, nsp=True)
    run = root / "pretrain" / "bert_L1" / "adam" / "seed0"
    save_checkpoint(run / "checkpoint.pt", {"step": 1, "model": model.state_dict(), "config": {}})
    write_json(run / "resolved_config.json", {"model": "bert_L1", "models": {"bert_L1": arch},
                                              "position_embedding": kind})
    model.save_pretrained(str(run / "hf_model"))
    return run, model


@pytest.mark.parametrize("kind", ["absolute", "rotary"])
def test_qa_model_from_a_pretraining_run_and_from_its_hf_export(kind, tmp_path):
    from heavytail.train.squad_task import load_qa_model

    run, pretrained = write_pretraining_run(tmp_path, 60, kind)
    expected = {"absolute": "BertForQuestionAnswering", "rotary": "RoFormerForQuestionAnswering"}[kind]
    ids = torch.randint(5, 60, (2, 40), generator=torch.Generator().manual_seed(0))
    types = (torch.arange(40) >= 12).long().expand(2, -1)
    mask = torch.ones_like(ids)
    mask[1, -6:] = 0
    pretrained.eval()
    states = pretrained.base_model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    for source in (run, run / "checkpoint.pt", run / "hf_model"):
        model = load_qa_model(str(source)).eval()
        assert type(model).__name__ == expected and model.config.max_position_embeddings == 512
        if kind == "rotary":  # fine-tuning runs the SDPA attention too
            assert type(model.roformer.encoder.layer[0].attention.self).__name__ == "RoFormerSdpaSelfAttention"
        qa_states = model.base_model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(qa_states, states, rtol=0, atol=0)  # the encoder is the pretrained one
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=torch.tensor([13, 20]),
                    end_positions=torch.tensor([14, 22]))
        assert out.start_logits.shape == (2, 40) and torch.isfinite(out.loss)


@pytest.mark.parametrize("kind", ["absolute", "rotary"])
def test_the_random_encoder_control_keeps_the_architecture_and_none_of_the_weights(kind, tmp_path):
    from heavytail.train.squad_task import load_qa_model

    run, _ = write_pretraining_run(tmp_path, 60, kind)
    for source in (run, run / "hf_model"):
        pretrained, control = load_qa_model(str(source)), load_qa_model(str(source), pretrained=False)
        assert type(control) is type(pretrained) and control.config.to_dict() == pretrained.config.to_dict()
        trained, fresh = pretrained.state_dict(), control.state_dict()
        assert trained.keys() == fresh.keys()
        words = next(k for k in trained if k.endswith("word_embeddings.weight"))
        assert trained[words].shape == fresh[words].shape and not torch.equal(trained[words], fresh[words])


def test_qa_model_rejects_a_variant_run_and_an_unknown_position_kind(tmp_path):
    from heavytail.errors import ConfigError
    from heavytail.train.squad_task import load_qa_model

    run, _ = write_pretraining_run(tmp_path, 60)
    job = read_json(run / "resolved_config.json")
    write_json(run / "resolved_config.json", {**job, "variant": "resnet_like"})
    with pytest.raises(ConfigError, match="'resnet_like' variant"):
        load_qa_model(str(run))
    write_json(run / "resolved_config.json", {**job, "position_embedding": "learned"})
    with pytest.raises(ConfigError, match=r"position_embedding must be one of absolute, rotary"):
        load_qa_model(str(run))


@pytest.mark.parametrize("kind", ["absolute", "rotary"])
def test_finetune_runs_every_seed_through_the_engine(kind, tokenizer, tmp_path):
    from heavytail.train import finetune_squad

    tokenizer.save_pretrained(str(tmp_path / "tokenizer"))
    qa = tmp_path / "qa"
    write_squad(qa / "train.json", squad_rows(4, 4, seed=3))
    write_squad(qa / "dev.json", squad_rows(2, 3, seed=4))
    write_json(qa / "stats.json", {"description": "template questions (test)"})
    run, _ = write_pretraining_run(tmp_path, len(tokenizer.get_vocab()), kind)
    cfg = tiny_job("squad", {"epochs": 2, "max_seq_length": 48, "doc_stride": 16, "max_query_length": 16,
                             "train": {"batch_size": 8, "log_every": 2}},
                   model="bert_L1", optimizer="adam", seeds=[0, 1], init_from=str(run),
                   tokenizer=str(tmp_path / "tokenizer"), qa_dir=str(qa))
    cfg["optimizers"] = {"adam": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01}}
    cfg["grad_clip_norm"] = {"adam": 1.0}
    out = tmp_path / "squad"
    assert finetune_squad.main(["--config", json.dumps(cfg), "--out", str(out)]) == 0
    dev = load_squad_json(qa / "dev.json")
    for seed in (0, 1):
        seed_dir = out / f"seed{seed}"
        scores, predictions = read_json(seed_dir / "scores.json"), read_json(seed_dir / "predictions.json")
        assert set(predictions) == set(dev["id"]) and scores["status"] == "ok" and scores["seed"] == seed
        assert {k: scores[k] for k in ("exact_match", "f1")} == squad_v1(predictions, references(dev))
        assert scores["baselines"]["first_year"]["exact_match"] > 0
        assert set(scores["baselines"]) == {"first_year", "first_of_asked_type"}
        rows = read_jsonl(seed_dir / "metrics.jsonl")
        assert rows[-2]["split"] == "validation" and rows[-2]["exact_match"] == scores["exact_match"]
        assert read_json(seed_dir / "resolved_config.json")["seed"] == seed
    steps = read_jsonl(out / "seed0" / "metrics.jsonl")[-1]["step"]
    assert steps == int(np.ceil(2 * scores["train_windows"] / 8))
    # seeds differ (head init and data order); a finished run rescored from its checkpoint gives the same answers
    assert read_json(out / "seed0" / "predictions.json") != read_json(out / "seed1" / "predictions.json") or \
        read_jsonl(out / "seed0" / "metrics.jsonl")[0] != read_jsonl(out / "seed1" / "metrics.jsonl")[0]
    before = read_json(out / "seed0" / "predictions.json")
    (out / "seed0" / "predictions.json").unlink()
    assert finetune_squad.main(["--config", json.dumps({**cfg, "seeds": [0]}), "--out", str(out)]) == 0
    assert read_json(out / "seed0" / "predictions.json") == before
    # the random-encoder control: the same job from an untrained encoder, scored as such; not the run above
    control = tmp_path / "control"
    control_cfg = {**cfg, "seeds": [0], "random_encoder": True}
    assert finetune_squad.main(["--config", json.dumps(control_cfg), "--out", str(control)]) == 0
    scores = read_json(control / "seed0" / "scores.json")
    assert scores["random_encoder"] and not read_json(out / "seed0" / "scores.json")["random_encoder"]
    assert read_jsonl(control / "seed0" / "metrics.jsonl")[0] != read_jsonl(out / "seed0" / "metrics.jsonl")[0]


def test_finetune_rejects_an_unknown_optimizer_label(capsys):
    from heavytail.train import finetune_squad

    cfg = tiny_job("squad", model="m", optimizer="sgd", init_from="x", tokenizer="t", qa_dir="q")
    cfg["optimizers"] = {"adam": {"name": "adam", "lr": 1e-3}}
    assert finetune_squad.main(["--config", json.dumps(cfg), "--out", "unused"]) == 2
    assert capsys.readouterr().err.strip() == "heavytail: squad.optimizers has no entry 'sgd' (entries: adam)"


def test_table3_means_stds_paper_row_and_data_label(tmp_path):
    from heavytail.report.figures.squad import table3

    files = []
    for optimizer, ems in (("adam", [50.0, 60.0]), ("acclip", [70.0, 70.0])):
        for seed, em in enumerate(ems):
            path = tmp_path / optimizer / f"seed{seed}" / "scores.json"
            write_json(path, {"model": "bert_L2", "optimizer": optimizer, "seed": seed, "status": "ok",
                              "exact_match": em, "f1": em + 5, "data_description": "generated QA",
                              "baselines": {"first_year": {"exact_match": 40.0, "f1": 41.0}}})
            files.append(path)
    write_json(files[-1], {**read_json(files[-1]), "status": "diverged", "exact_match": None, "f1": None})
    frame = table3(files, REPO / "reports" / "paper.yaml", tmp_path / "table3.csv")
    rows = {(r.method, r.model): r for r in pd.read_csv(tmp_path / "table3.csv").itertuples()}
    adam = rows[("adam", "bert_L2")]
    assert (adam.exact_match_mean, adam.exact_match_std, adam.runs) == (55.0, pytest.approx(7.0710678), 2)
    assert adam.exact_match == "55.00 ± 7.07" and adam.data == "generated QA"
    acclip = rows[("acclip", "bert_L2")]
    assert (acclip.runs, acclip.diverged, acclip.f1) == (1, 1, "75.00 ± 0.00")
    assert rows[("baseline: first year", "bert_L2")].exact_match == "40.00"
    paper = frame[frame["method"].str.contains("Devlin")]
    # the random-encoder control: the same optimizer, its own row
    control = tmp_path / "control" / "scores.json"
    write_json(control, {**read_json(files[0]), "exact_match": 20.0, "f1": 25.0, "random_encoder": True})
    with_control = table3([*files, control], None, tmp_path / "table3_control.csv").set_index("method")
    assert with_control.loc["adam", "exact_match_mean"] == 55.0
    assert with_control.loc["adam, random encoder (control)", ["runs", "exact_match_mean"]].tolist() == [1, 20.0]
    assert paper[["exact_match_mean", "f1_mean"]].values.tolist() == [[80.8, 88.5], [84.1, 90.9]]
    assert set(paper["data"]) == {"SQuAD v1.1 dev"}


QA_ARCH = {"num_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "dropout": 0.0}


def dev_predictions(dev_json: str, tokenizer_dir: str, ctx) -> dict:
    """SquadTask.predict of one fixed random QA model on `ctx`; the windows this process ran through the model."""
    from transformers import BertForQuestionAnswering, BertTokenizerFast

    from heavytail.models.bert import bert_config
    from heavytail.train.squad_task import SquadTask

    dataset = load_squad_json(dev_json)
    features = featurize(dataset, BertTokenizerFast.from_pretrained(tokenizer_dir), FeatureSpec(40, 12, 16))
    task = SquadTask(features, dataset, features, init_from="unused", eval_batch_size=3)
    torch.manual_seed(0)
    model = BertForQuestionAnswering(bert_config(QA_ARCH, 64, 40)).eval()
    seen = []
    model.register_forward_hook(lambda module, args, kwargs, out: seen.append(len(kwargs["input_ids"])),
                                with_kwargs=True)
    with torch.no_grad():
        predictions = task.predict(model, ctx)
    return {"predictions": predictions, "windows": sum(seen), "of": len(features)}


def predict_as_rank(rank: int, init_file: str, dev_json: str, tokenizer_dir: str, out_dir: str) -> None:
    import torch.distributed as dist

    from heavytail.train.distributed import DistContext

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        write_json(Path(out_dir) / f"rank{rank}.json",
                   dev_predictions(dev_json, tokenizer_dir, DistContext(rank=rank, world_size=2)))
    finally:
        dist.destroy_process_group()


def test_dev_predictions_are_sharded_across_ranks_and_gathered_in_order(tokenizer, tmp_path):
    """#16: the final predictions ran on rank 0 alone (on the CPU) while the other ranks waited in the next
    seed's DDP setup until NCCL's watchdog killed the job. Each rank now runs its share of the dev windows, and
    every rank gets the predictions one process would make."""
    import torch.multiprocessing as mp

    tokenizer.save_pretrained(str(tmp_path / "tok"))
    dev = write_squad(tmp_path / "dev.json", squad_rows(2, 7, seed=5))
    single = dev_predictions(str(dev), str(tmp_path / "tok"), None)
    mp.spawn(predict_as_rank, args=(str(tmp_path / "init"), str(dev), str(tmp_path / "tok"), str(tmp_path)),
             nprocs=2)
    ranks = [read_json(tmp_path / f"rank{rank}.json") for rank in (0, 1)]
    windows = single["windows"]
    assert windows == single["of"] > 4
    assert [r["windows"] for r in ranks] == [(windows + 1) // 2, windows // 2]
    assert all(r["predictions"] == single["predictions"] for r in ranks)


def test_the_control_is_planned_at_tiny_scale_only_as_its_own_run_label():
    from heavytail.config import load_config
    from heavytail.plan import squad as plan

    tiny, paper = load_config(REPO / "config.yaml"), load_config(REPO / "config.yaml", {"scale": "paper"})
    assert plan.run_labels(tiny) == ["adam", "acclip", "acclip_normalized", "adam_random_encoder"]
    assert plan.run_labels(paper) == list(paper["squad"]["optimizers"])  # the paper has no control
    job = plan.squad_job(tiny, "tiny", "bert_L2", "adam_random_encoder")
    assert (job["optimizer"], job["random_encoder"]) == ("adam", True)
    assert job["init_from"] == plan.squad_job(tiny, "tiny", "bert_L2", "adam")["init_from"]
    assert "random_encoder" not in plan.squad_job(tiny, "tiny", "bert_L2", "adam")
    assert any("/adam_random_encoder/seed2/" in f for f in plan.run_files(tiny, "scores.json"))
