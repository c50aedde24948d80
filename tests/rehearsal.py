"""The rehearsal of the small and paper scales on CPU: their own sources, in the formats the Hub and ImageNet
deliver, built from the tiny data, and an overlay that changes sizes only (steps, widths, lengths, counts).

Everything else is the scale's own: the same loaders (`datasets.load_dataset` on a local folder in the Hub's
layout, `from_pretrained` on a tokenizer folder, the ILSVRC folder with a flat val/), NSP and BERT's two sequence
phases at paper scale, torchrun with two processes (gloo), the local profile, the retry guard and the resume.
The devices are the CPU's (`device: cpu`): the check that a job given GPUs sees them is what the GPU check and
real clusters exercise.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import hub_fixtures as fx

N_ARTICLES = 24


def commit(folder: Path) -> str:
    """Make `folder` a git clone-like repository with one commit (as a Hub repo is); returns the commit."""
    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost", "commit", "-qm", "snapshot")
    return git("rev-parse", "HEAD").strip()


def build_sources(root: Path) -> dict:
    """Every source a small or paper run downloads, as a local folder or file; returns their paths (and the
    commits of the Hub-layout folders, which the data stage must record as their revisions)."""
    articles = fx.tiny_articles(N_ARTICLES)
    squad = fx.squad_articles(articles)
    train, dev = squad[: len(squad) * 3 // 4], squad[len(squad) * 3 // 4:]
    json_train, json_dev = fx.write_squad_json(root / "squad_json", train, dev)
    imagenet = fx.write_imagenet(root / "imagenet", train_per_class=6, val_per_class=2)
    sources = {"wikipedia": fx.write_wikipedia(root / "wikipedia", articles),
               "bookcorpus": fx.write_bookcorpus_export(root / "bookcorpus", fx.book_lines(articles)),
               "tokenizer": fx.write_bert_tokenizer(root / "bert-base-uncased", fx.wordpiece_words(articles)),
               "squad_parquet": fx.write_squad_parquet(root / "squad", train, dev)}
    commits = {name: commit(Path(folder)) for name, folder in sources.items()}
    return {**{k: str(v) for k, v in sources.items()}, "commits": commits, "squad_train_json": str(json_train),
            "squad_dev_json": str(json_dev), "imagenet_dir": str(imagenet["imagenet_dir"])}


def toy_bert(layers: int) -> dict:
    return {"num_layers": layers, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32}


def overlay(scale: str, sources: dict) -> dict:
    """The --configfile of a rehearsal at `scale`: local sources, toy sizes, the CPU."""
    models = {"paper": {"bert_L6": 1, "bert_L12": 2, "bert_L24": 2}, "small": {"bert_L2": 1, "bert_L4": 2, "bert_L6": 2}}
    squad = ({"path": sources["squad_parquet"]} if scale == "paper"  # both of SQuAD's formats are rehearsed
             else {"train_json": sources["squad_train_json"], "dev_json": sources["squad_dev_json"]})
    return {
        "paths": {"imagenet_dir": sources["imagenet_dir"]},
        "data": {"text": {"wikipedia": {"path": sources["wikipedia"]}, "bookcorpus": {"path": sources["bookcorpus"]},
                          "validation_fraction": 0.2, "max_documents": None},
                 "tokenizer": {"pretrained": sources["tokenizer"]}, "qa": {"squad": squad}},
        "theory": {"bootstrap_samples": 20, "rates": {"seeds": 20, "steps": 200, "record_points": 8, "fit_min_step": 20},
                   "lower_bound": {"seeds": 40, "horizons": [64, 128, 256]}, "appendix_a": {"seeds": 200, "steps": 100},
                   "dimension_sweep": {"dims": [1, 2, 4], "seeds": 10, "steps": 100},
                   "nonconvex": {"seeds": 10, "horizons": [100, 300, 1000]}, "adam_grid": {"points": 5}},
        "pretrain": {
            "models": {name: toy_bert(layers) for name, layers in models[scale].items()},
            "max_seq_length": 32, "max_predictions_per_seq": 5, "validation_sequences": 16, "seeds": [0],
            "long_phase": {"max_seq_length": 64, "max_predictions_per_seq": 10, "fraction": 0.25},
            "fig3_optimizers": ["sgdm", "gclip", "adam", "acclip"],
            # steps enough that the rehearsal's stopped run is caught between its first checkpoint and its end
            "train": {"steps": 24, "batch_size": 4, "log_every": 4, "eval_every": 8, "checkpoint_every": 4,
                      "device": "cpu", "schedule": {"warmup_steps": 2}},
            "tune": {"steps": 4, "lr_grid": {"sgdm": [0.1], "gclip": [1.0], "adam": [1e-3], "acclip": [1.0],
                                             "acclip_normalized": [1e-3]}, "clip_threshold_grid": {"gclip": [1.0]}},
        },
        # ~18k windows of 64 tokens: 0.01 epoch is ~45 steps
        "squad": {"models": [next(iter(models[scale]))], "seeds": [0], "epochs": 0.01, "max_seq_length": 64,
                  "doc_stride": 16, "max_query_length": 16, "eval_batch_size": 16,
                  "train": {"batch_size": 4, "log_every": 2, "checkpoint_every": 2, "device": "cpu"}},
        "vision": {"device": "cpu", "num_workers": 0, "eval_batch_size": 6,
                   "models": {"resnet": {"epochs": 1, "batch_size": 4, "image_size": 32},
                              "alexnet": {"steps": 2, "batch_size": 4, "image_size": 64, "eval_every": 2}}},
        # a noise pass of the ResNet50 measured ~1 s on this CPU: few, small batches
        "noise": {"device": "cpu", "batch_sizes": [2, "train"], "n_mean": 2, "n_samples": 16, "n_boot": 10,
                  "per_coordinate": {"coordinates_per_group": 20, "max_samples": 200}},
        # the later explanations: two optimizers, two batch sizes (2 processes split each), two lrs, two steps
        "explanations": {"batch_size_sweep": {"optimizers": ["sgdm", "adam"], "batch_sizes": [4, 8], "steps": 2,
                                              "noise_samples": 16, "lr_grid": {"sgdm": [0.1, 0.3], "adam": [1e-3, 3e-3]}},
                         "class_imbalance": {"linear": {"steps": 2, "lr_grid": {"sgdm": [10.0, 30.0], "adam": [0.1, 0.3]}}}},
    }


# torchrun with two processes for every training rule (the local profile's knobs: two "GPUs", both for a training
# job; the jobs compute on the CPU, `device: cpu`)
TWO_PROCESS_TRAINING = {"HEAVYTAIL_LOCAL_GPUS": "2", "HEAVYTAIL_LOCAL_TRAIN_GPUS": "2"}
