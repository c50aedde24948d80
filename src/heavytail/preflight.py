"""Checks of the inputs a run reads, at Snakefile parse time: bad input stops the DAG before any job starts.

Each problem is one line naming the file or key and the fix, and every problem is reported together, before any
download. The checks live with the data they guard (heavytail.data.*); this module only picks which to run: the
inputs of the data kinds that the requested targets read (ImageNet only when a vision job is asked for). Keep
them cheap: they run on every `snakemake` invocation, dry runs and no-op reruns included.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from heavytail.errors import ConfigError


def _raised(check) -> list[str]:
    try:
        check()
    except ConfigError as exc:
        return [str(exc)]
    return []


def input_problems(experiment: dict, data_kinds: Iterable[str]) -> dict[str, list[str]]:
    """{kind of input: problems} of every input the data kinds (text, tokenizer, images, qa) read. Kinds:
    `package` (shipped with an installed package), `user` (placed or downloaded by the user)."""
    from heavytail.data.hf_text import text_problems
    from heavytail.data.imagenet import imagenet_layout_problems
    from heavytail.data.images import check_fashion_mnist_dir
    from heavytail.data.qa import squad_problems
    from heavytail.data.tokenizer import tokenizer_problems
    from heavytail.data.wikitext import check_bz2_file, wiki_dump_path

    data, paths, kinds = experiment["data"], experiment["paths"], set(data_kinds)
    found: dict[str, list[str]] = {"package": [], "user": []}
    text, images, qa = data["text"], data["images"], data["qa"]
    if kinds & {"text", "tokenizer", "qa"}:
        if text["source"] == "gensim_wiki":
            found["package"] += _raised(lambda: check_bz2_file(wiki_dump_path(data), "data.text.wiki_dump"))
        found["user"] += text_problems(text)
    if kinds & {"tokenizer", "qa"} or "text" in kinds:
        found["user"] += tokenizer_problems(data["tokenizer"])
    if "qa" in kinds and qa["source"] == "squad_v1":
        found["user"] += squad_problems(qa["squad"])
    if "images" in kinds:
        if images["source"] == "imagenet":
            found["user"] += imagenet_layout_problems(Path(paths["imagenet_dir"]), paths.get("imagenet_val_labels"))
        else:
            found["package"] += _raised(lambda: check_fashion_mnist_dir(Path(images["fashion_mnist_dir"])))
    return found


def preflight(experiment: dict, data_kinds: Iterable[str], dryrun: bool = False) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the inputs of `data_kinds`. In a dry run, user-placed data only warns."""
    found = input_problems(experiment, data_kinds)
    if dryrun:
        return found["package"], found["user"]
    return found["package"] + found["user"], []
