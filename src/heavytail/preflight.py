"""Checks of the inputs a run reads, at Snakefile parse time: bad input stops the DAG before any job starts.

Each problem is one line naming the file or key and the fix; every problem is reported, not only the first.
The checks themselves live with the data they guard (heavytail.data.*); this module only picks which to run:
the inputs of the data kinds that the requested targets read. Keep them cheap: they run on every `snakemake`
invocation, dry runs and no-op reruns included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from heavytail.errors import ConfigError

# data placed or downloaded by the user: in a dry run a problem with it is only a warning
USER_DATA = ("imagenet", "hub")


def _problem(check: Callable[[], None]) -> str | None:
    try:
        check()
    except ConfigError as exc:
        return str(exc)
    return None


def input_checks(experiment: dict, data_kinds: Iterable[str]) -> list[tuple[str, Callable[[], None]]]:
    """(kind of input, check) for every input the data kinds (text, tokenizer, images, qa) read."""
    from heavytail.data.hf_text import check_source
    from heavytail.data.images import check_fashion_mnist_dir, check_image_folder
    from heavytail.data.qa import check_squad_hub
    from heavytail.data.wikitext import check_bz2_file, wiki_dump_path

    data, kinds = experiment["data"], set(data_kinds)
    checks: list[tuple[str, Callable[[], None]]] = []
    text, images, qa = data["text"], data["images"], data["qa"]
    if kinds & {"text", "tokenizer", "qa"}:
        if text["source"] == "gensim_wiki":
            checks.append(("package", lambda: check_bz2_file(wiki_dump_path(data), "data.text.wiki_dump")))
        else:
            checks.append(("hub", lambda: check_source(text["wikipedia"], "data.text.wikipedia")))
            checks.append(("hub", lambda: check_source(text["bookcorpus"], "data.text.bookcorpus")))
    if "images" in kinds:
        if images["source"] == "imagenet":
            root = Path(experiment["paths"]["imagenet_dir"])
            checks.append(("imagenet", lambda: check_image_folder(root, "paths.imagenet_dir")))
        else:
            checks.append(("package", lambda: check_fashion_mnist_dir(Path(images["fashion_mnist_dir"]))))
    squad = qa.get("squad") or {}
    if "qa" in kinds and qa["source"] == "squad_v1" and not (squad.get("train_json") or squad.get("dev_json")):
        checks.append(("hub", lambda: check_squad_hub(squad)))
    return checks


def preflight(experiment: dict, data_kinds: Iterable[str], dryrun: bool = False) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the inputs of `data_kinds`. In a dry run, user-placed data only warns."""
    problems, warnings = [], []
    for kind, check in input_checks(experiment, data_kinds):
        message = _problem(check)
        if message:
            (warnings if dryrun and kind in USER_DATA else problems).append(message)
    return problems, warnings
