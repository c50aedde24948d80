"""The experiment: config.yaml, the scale files, overrides; one-line errors for bad input before any job."""

from __future__ import annotations

import bz2
import copy

import pytest
import yaml
from conftest import REPO, run_snakemake

from heavytail.config import (
    apply_scale,
    deep_merge,
    load_config,
    load_job_config,
    load_schema,
    read_yaml,
    resolve_job_config,
    validate_config,
)
from heavytail.constraints import check_experiment
from heavytail.data.images import check_image_folder
from heavytail.data.wikitext import check_bz2_file, gensim_wiki_dump
from heavytail.errors import ConfigError

BASE = read_yaml(REPO / "config.yaml")


def test_every_scale_resolves_and_tiny_is_the_default():
    assert load_config(REPO / "config.yaml")["scale"] == "tiny"
    for scale in ("tiny", "small", "paper"):
        experiment = load_config(REPO / "config.yaml", {"scale": scale})
        assert experiment["scale"] == scale
        assert check_experiment(experiment) == []


def test_paper_is_config_yaml_itself_and_tiny_changes_it():
    paper = load_config(REPO / "config.yaml", {"scale": "paper"})
    assert paper["pretrain"]["models"].keys() == BASE["pretrain"]["models"].keys()
    tiny = load_config(REPO / "config.yaml")
    assert tiny["pretrain"]["train"]["steps"] < paper["pretrain"]["train"]["steps"] == 1_000_000
    # a scale's deep-merged block keeps the paper's other values ...
    assert tiny["pretrain"]["mask_probability"] == paper["pretrain"]["mask_probability"]
    # ... but maps keyed by label are replaced whole: no paper model leaks into tiny
    assert set(tiny["pretrain"]["models"]) == {"bert_L1", "bert_L2", "bert_L4"}


def test_label_maps_are_replaced_whole_and_other_maps_merged():
    schema = load_schema()
    base = {"pretrain": {"models": {"big": {"num_layers": 24}}, "train": {"steps": 10, "batch_size": 4}}}
    overlay = {"pretrain": {"models": {"small": {"num_layers": 2}}, "train": {"steps": 5}}}
    merged = apply_scale(base, overlay, schema)
    assert merged["pretrain"]["models"] == {"small": {"num_layers": 2}}
    assert merged["pretrain"]["train"] == {"steps": 5, "batch_size": 4}
    assert base["pretrain"]["models"] == {"big": {"num_layers": 24}}  # inputs untouched


def test_command_line_overrides_merge_key_by_key_on_top_of_the_scale():
    experiment = load_config(REPO / "config.yaml", {"pretrain": {"optimizers": {"adam": {"lr": 5e-3}}}})
    adam = experiment["pretrain"]["optimizers"]["adam"]
    assert adam["lr"] == 5e-3 and adam["name"] == "adamw"  # merged, not replaced
    assert set(experiment["pretrain"]["optimizers"]) >= {"sgdm", "acclip_paper"}


def test_schema_documents_every_property_and_hides_no_experiment_value():
    schema = load_schema()
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "$ref" not in sub and "description" not in sub:
                    missing.append(f"{path}.{name}")
                walk(sub, f"{path}.{name}")
            for name, sub in node.get("definitions", {}).items():
                walk(sub, f"definitions.{name}")

    walk(schema, "")
    assert not missing, f"schema keys without description: {missing}"
    # experiment values have no defaults: a key config.yaml must state is required, e.g.
    pretrain = schema["definitions"]["pretrain"]
    assert "default" not in pretrain["properties"]["max_seq_length"]
    assert "max_seq_length" in pretrain["required"]


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"scale": "huge"}, 'scale must be one of tiny, small, paper (got "huge")'),
        ({"data": {"text": {"source": "reddit"}}},
         "--config/--configfile: data.text.source must be one of gensim_wiki, hf_wikipedia_bookcorpus"),
        ({"data": {"text": {"split_seed": 1.5}}}, "data.text.split_seed must be of type integer (got 1.5)"),
        ({"data": {"tokenzier": {}}}, "unknown key data.tokenzier"),
        ({"pretrain": {"optimizers": {"adam": {"name": "adamx"}}}},
         "pretrain.optimizers.adam.name must be one of sgd, sgdm, adam, adamw"),
        ({"pretrain": {"optimizers": {"acclip": {"lr": -1e-4}}}},
         "pretrain.optimizers.acclip.lr must be > 0 (got -0.0001)"),
    ],
    ids=["scale", "enum", "type", "unknown-key", "optimizer-name", "negative-lr"],
)
def test_validation_errors_are_one_line_name_the_key_and_the_file(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(REPO / "config.yaml", override)
    assert "\n" not in str(info.value)
    assert expected in str(info.value)


def test_a_typo_in_a_scale_file_names_that_file(tmp_path, monkeypatch):
    import heavytail.config as config

    scales = tmp_path / "scales"
    scales.mkdir()
    (scales / "tiny.yaml").write_text(yaml.safe_dump({"pretrain": {"trian": {"steps": 3}}}))
    monkeypatch.setattr(config, "SCALES_DIR", scales)
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    with pytest.raises(ConfigError, match=r"^scales/tiny.yaml: unknown key pretrain.trian"):
        config.load_config(REPO / "config.yaml")


def test_job_config_inline_and_file(tmp_path):
    assert load_job_config('{"a": 1}') == {"a": 1}
    (tmp_path / "c.json").write_text('{"b": 2}')
    assert load_job_config(str(tmp_path / "c.json")) == {"b": 2}
    with pytest.raises(ConfigError, match="does not exist"):
        load_job_config(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="inline JSON does not parse"):
        load_job_config("{nope")


def test_a_job_config_written_by_hand_resolves_like_the_pipelines():
    """The same job, from the plan (what Snakemake passes) and written by hand without the mechanics the
    schema defaults: the entry point resolves both to the same config."""
    from heavytail.plan.pretrain import pretrain_job
    from heavytail.train.pretrain import JOB_KEYS

    experiment = load_config(REPO / "config.yaml")
    pipeline = pretrain_job(experiment, "tiny", "bert_L2", "adam", 0)
    by_hand = copy.deepcopy(pipeline)
    for key in ("micro_batch_size", "precision", "device"):  # the mechanics tiny leaves at their defaults
        by_hand["train"].pop(key)
    by_hand.pop("eval_batch_size")
    del by_hand["data"]["text"]["wiki_dump"]
    pipeline_resolved = resolve_job_config(pipeline, "pretrain", JOB_KEYS)
    assert resolve_job_config(by_hand, "pretrain", JOB_KEYS) == pipeline_resolved
    assert pipeline_resolved == {**pipeline, "stage": "pretrain"}  # the pipeline's config is already complete
    with pytest.raises(ConfigError, match=r"job config \(pretrain\): pretrain is missing|is missing the key steps"):
        broken = copy.deepcopy(by_hand)
        del broken["train"]["steps"]
        resolve_job_config(broken, "pretrain", JOB_KEYS)


def test_truncated_and_corrupt_bz2_are_rejected(tmp_path):
    good = tmp_path / "dump.xml.bz2"
    words = [f"word{(i * 7919) % 1000}" for i in range(20_000)]
    good.write_bytes(bz2.compress(("<mediawiki>" + " ".join(words) + "</mediawiki>").encode()))
    check_bz2_file(good, "data.text.wiki_dump")
    truncated = tmp_path / "truncated.xml.bz2"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ConfigError, match="truncated"):
        check_bz2_file(truncated, "data.text.wiki_dump")
    corrupt = tmp_path / "corrupt.xml.bz2"
    data = bytearray(good.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = b"\x00" * 64
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="corrupt|truncated"):
        check_bz2_file(corrupt, "data.text.wiki_dump")


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"paths.imagenet_dir: image folder .* does not exist; expected layout"):
        check_image_folder(tmp_path / "imagenet", "paths.imagenet_dir")
    (tmp_path / "imagenet" / "train" / "n01440764").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"val is missing or has no class folders"):
        check_image_folder(tmp_path / "imagenet", "paths.imagenet_dir")
    (tmp_path / "imagenet" / "val" / "n01440764").mkdir(parents=True)
    check_image_folder(tmp_path / "imagenet", "paths.imagenet_dir")


def test_validate_config_fills_mechanics_defaults_only():
    schema = load_schema()
    section = {"batch_size": 8, "schedule": {"decay": "linear"}, "steps": 3}
    train = schema["definitions"]["pretrain"]["properties"]["train"]
    validate_config(section, {**train, "definitions": schema["definitions"]})
    assert section["log_every"] == 100 and section["schedule"]["warmup_fraction"] == 0.0
    assert deep_merge({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


# --- through the real Snakemake CLI: rejected at parse time, one line each, nothing under results/ -----------

def _rejected(workdir, overrides, *targets):
    (workdir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    result = run_snakemake(workdir, "--cores", "1", *(targets or ("reproduce_all",)), "--configfile",
                           str(workdir / "overrides.yaml"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert not (workdir / "results").exists()
    return [line for line in result.stderr.splitlines() if line.startswith("heavytail:")]


def test_cli_rejects_unknown_scale(workdir):
    lines = _rejected(workdir, {"scale": "huge"})
    assert len(lines) == 1 and "scale must be one of tiny, small, paper" in lines[0]


def test_cli_rejects_missing_imagenet_at_paper_scale_only_for_vision_targets(workdir):
    lines = _rejected(workdir, {"scale": "paper", "paths": {"imagenet_dir": str(workdir / "no_imagenet")}}, "fig1b")
    assert any("paths.imagenet_dir: image folder" in line and "expected layout" in line for line in lines)


def test_bert_only_targets_at_paper_scale_never_ask_for_imagenet(workdir):
    """#16: every target checked ImageNet at small and paper scale, the README's data preparation included."""
    overrides = {"scale": "paper", "paths": {"imagenet_dir": str(workdir / "no_imagenet")}}
    (workdir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    planned = run_snakemake(workdir, "-n", "table2", "--configfile", str(workdir / "overrides.yaml"))
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "paths.imagenet_dir" not in planned.stderr and "pretrain_bert" in planned.stdout
    # run for real (offline here): what stops it is the unpinned Hub sources, never the missing ImageNet
    lines = _rejected(workdir, overrides, "table2")
    assert lines and not any("imagenet" in line for line in lines), lines


def test_cli_rejects_truncated_corpus(workdir):
    truncated = workdir / "truncated.xml.bz2"
    truncated.write_bytes(gensim_wiki_dump().read_bytes()[:300_000])
    lines = _rejected(workdir, {"data": {"text": {"wiki_dump": str(truncated)}}})
    assert len(lines) == 1 and "data.text.wiki_dump: corpus file" in lines[0]


# one case per kind of cross-reference and agreement (heavytail.constraints)
CONSTRAINTS = {
    "base-model": ({"pretrain": {"base_model": "bert_L9"}},
                   "pretrain.base_model names 'bert_L9', which is not a key of pretrain.models"),
    "table2-model": ({"pretrain": {"table2_models": ["bert_L1", "bert_L7"]}},
                     "pretrain.table2_models names 'bert_L7'"),
    "fig3-optimizer": ({"pretrain": {"fig3_optimizers": ["sgdm", "lion"]}},
                       "pretrain.fig3_optimizers names 'lion', which is not a key of pretrain.optimizers"),
    "tune-grid-label": ({"pretrain": {"tune": {"lr_grid": {"adamm": [1e-3]}}}},
                        "pretrain.tune.lr_grid names 'adamm'"),
    "tune-model": ({"pretrain": {"tune": {"model": "bert_L12"}}}, "pretrain.tune.model names 'bert_L12'"),
    "widths-and-heads": ({"pretrain": {"models": {"bert_L1": {"num_attention_heads": 5}}}},
                         "pretrain.models.bert_L1.hidden_size 64 must be divisible by num_attention_heads 5"),
    "batch-and-micro-batch": ({"pretrain": {"train": {"micro_batch_size": 5}}},
                              "pretrain.train.micro_batch_size 5 must divide pretrain.train.batch_size 32"),
    "warmup-and-steps": ({"pretrain": {"train": {"schedule": {"warmup_steps": 5000}}}},
                         "pretrain.train.schedule.warmup_steps 5000 exceeds the 2000 training steps"),
    "squad-model": ({"squad": {"models": ["bert_L3"]}}, "squad.models names 'bert_L3'"),
    "squad-init-optimizer": ({"squad": {"init": {"optimizer": "adamw"}}}, "squad.init.optimizer names 'adamw'"),
    "squad-stride": ({"squad": {"doc_stride": 120}}, "squad.doc_stride 120 exceeds the 101 context tokens"),
    "vision-optimizer": ({"vision": {"models": {"alexnet": {"optimizers": ["sgdm", "rmsprop"]}}}},
                         "vision.models.alexnet.optimizers names 'rmsprop', which is not a key of vision.optimizers"),
    "loader-and-source": ({"data": {"images": {"source": "imagenet"}}},
                          "vision.loader memory decodes every image into memory"),
    "noise-run": ({"noise": {"runs": {"bert": {"optimizer": "lamb"}}}},
                  "noise.runs.bert.optimizer names 'lamb', which is not a key of pretrain.optimizers"),
    "noise-fraction": ({"noise": {"runs": {"image": {"fractions": [0, 0.25]}}}},
                       "noise.runs.image.fractions [0.25] are not snapshot fractions of vision.models.resnet"),
}


@pytest.mark.parametrize("overrides, expected", list(CONSTRAINTS.values()), ids=list(CONSTRAINTS))
def test_cli_rejects_a_broken_reference_or_constraint(workdir, overrides, expected):
    lines = _rejected(workdir, overrides)
    assert any(expected in line for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_every_problem_is_reported_at_once(workdir):
    overrides = deep_merge(CONSTRAINTS["base-model"][0], CONSTRAINTS["squad-model"][0])
    lines = _rejected(workdir, overrides)
    assert any("pretrain.base_model" in line for line in lines) and any("squad.models" in line for line in lines)
