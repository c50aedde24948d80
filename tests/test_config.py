"""Configuration: schema defaults, one-line errors for bad input before any job, resolved presets."""

from __future__ import annotations

import bz2
import copy

import pytest
from conftest import REPO, edit_config, run_snakemake

from heavytail.config import deep_merge, load_config, load_job_config, preset, validate_config
from heavytail.errors import ConfigError
from heavytail.inputs import check_bz2_file, check_image_folder


def test_config_yaml_is_valid_and_defaults_fill():
    config = load_config(REPO / "config.yaml")
    assert config["scale"] == "tiny"
    for scale in ("tiny", "small", "paper"):
        resolved = preset({**config, "scale": scale})
        assert resolved["scale"] == scale
        assert set(resolved["resources"]) >= {"data", "train", "noise", "theory", "bench", "report"}


def test_schema_documents_every_property():
    """Every key in the schema carries a description (the schema is the documentation)."""
    from heavytail.config import load_schema

    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "$ref" not in sub and "description" not in sub:
                    missing.append(f"{path}.{name}")
                walk(sub, f"{path}.{name}")
            for name, sub in node.get("definitions", {}).items():
                walk(sub, f"definitions.{name}")

    walk(load_schema(), "")
    assert not missing, f"schema keys without description: {missing}"


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"scale": "huge"}, "scale must be one of tiny, small, paper (got \"huge\")"),
        ({"presets": {"tiny": {"data": {"text": {"source": "reddit"}}}}},
         "presets.tiny.data.text.source must be one of gensim_wiki, hf_wikipedia_bookcorpus"),
        ({"presets": {"tiny": {"data": {"text": {"split_seed": 1.5}}}}},
         "presets.tiny.data.text.split_seed must be of type integer (got 1.5)"),
        ({"presets": {"tiny": {"data": {"tokenzier": {}}}}}, "unknown key presets.tiny.data.tokenzier"),
    ],
)
def test_validation_errors_are_one_line_and_name_the_key(override, expected):
    config = deep_merge(load_config(REPO / "config.yaml"), override)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message


def test_optimizer_setting_rejects_unknown_name_and_bad_lr():
    from heavytail.config import load_schema

    schema = copy.deepcopy(load_schema())
    setting = {"$ref": "#/definitions/optimizer_setting"}
    schema_for_setting = {**schema, "properties": {"opt": setting}, "required": [], "additionalProperties": False}
    with pytest.raises(ConfigError, match=r"opt.name must be one of sgd, sgdm, adam, adamw, gclip, cclip, acclip"):
        validate_config({"opt": {"name": "adamx", "lr": 1e-3}}, schema_for_setting)
    with pytest.raises(ConfigError, match=r"opt.lr must be > 0 \(got -0.0001\)"):
        validate_config({"opt": {"name": "acclip", "lr": -1e-4}}, schema_for_setting)
    with pytest.raises(ConfigError, match=r"opt.lr must be > 0 \(got 0\)"):
        validate_config({"opt": {"name": "acclip", "lr": 0}}, schema_for_setting)


def test_job_config_inline_and_file(tmp_path):
    assert load_job_config('{"a": 1}') == {"a": 1}
    (tmp_path / "c.json").write_text('{"b": 2}')
    assert load_job_config(str(tmp_path / "c.json")) == {"b": 2}
    with pytest.raises(ConfigError, match="does not exist"):
        load_job_config(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="inline JSON does not parse"):
        load_job_config("{nope")


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


# --- through the real Snakemake CLI: rejected at parse time, one line, nothing under results/ -------------

def _assert_rejected(workdir, result, expected):
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("heavytail:")]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not (workdir / "results").exists()


def test_cli_rejects_unknown_scale(workdir):
    result = run_snakemake(workdir, "--cores", "1", "reproduce_all", "--config", "scale=huge")
    _assert_rejected(workdir, result, "scale must be one of tiny, small, paper")


def test_cli_rejects_missing_imagenet_at_paper_scale(workdir):
    edit_config(workdir, lambda c: c["paths"].update(imagenet_dir=str(workdir / "no_imagenet")))
    result = run_snakemake(workdir, "--cores", "1", "reproduce_all", "--config", "scale=paper")
    _assert_rejected(workdir, result, "paths.imagenet_dir: image folder")
    assert "expected layout" in result.stderr


def test_cli_rejects_truncated_corpus(workdir):
    from heavytail.inputs import gensim_wiki_dump

    truncated = workdir / "truncated.xml.bz2"
    truncated.write_bytes(gensim_wiki_dump().read_bytes()[:300_000])
    edit_config(workdir, lambda c: c["presets"]["tiny"]["data"]["text"].update(wiki_dump=str(truncated)))
    result = run_snakemake(workdir, "--cores", "1", "reproduce_all")
    _assert_rejected(workdir, result, "data.text.wiki_dump: corpus file")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda p: p["pretrain"]["optimizers"]["adam"].update(name="adamx"),
         "presets.tiny.pretrain.optimizers.adam.name must be one of sgd, sgdm, adam, adamw, gclip, cclip, acclip"),
        (lambda p: p["pretrain"]["optimizers"]["acclip"].update(lr=-1e-4),
         "presets.tiny.pretrain.optimizers.acclip.lr must be > 0 (got -0.0001)"),
        (lambda p: p["vision"]["optimizers"]["sgdm"].update(lr=0),
         "presets.tiny.vision.optimizers.sgdm.lr must be > 0 (got 0)"),
        (lambda p: p["pretrain"].update(seeds=[0, 1.5]),
         "presets.tiny.pretrain.seeds.1 must be of type integer (got 1.5)"),
    ],
    ids=["unknown-optimizer", "negative-lr", "zero-lr", "non-integer-seed"],
)
def test_cli_rejects_bad_experiment_settings(workdir, edit, expected):
    edit_config(workdir, lambda c: edit(c["presets"]["tiny"]))
    result = run_snakemake(workdir, "--cores", "1", "reproduce_all")
    _assert_rejected(workdir, result, expected)
