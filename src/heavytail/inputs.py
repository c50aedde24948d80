"""Checks on user-supplied input files, run at Snakefile parse time so bad input stops the DAG before any job.

Each check raises ConfigError with one line naming the file or key and the fix. Keep them cheap: they run on
every `snakemake` invocation, dry runs and no-op reruns included.
"""

from __future__ import annotations

import bz2
import importlib.util
import sys
from pathlib import Path

from heavytail.errors import ConfigError

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


IMAGENET_LAYOUT = ("<imagenet_dir>/train/<wnid>/*.JPEG and <imagenet_dir>/val/<wnid>/*.JPEG "
                   "(val sorted into class folders, e.g. with the valprep.sh script)")


def check_image_folder(root: Path, key: str, splits: tuple[str, ...] = ("train", "val")) -> None:
    """An ImageFolder root needs one folder per split, each with at least one class folder."""
    if not root.is_dir():
        raise ConfigError(f"{key}: image folder {root} does not exist; expected layout {IMAGENET_LAYOUT}")
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir() or not any(p.is_dir() for p in split_dir.iterdir()):
            raise ConfigError(f"{key}: {split_dir} is missing or has no class folders; "
                              f"expected layout {IMAGENET_LAYOUT}")


def check_inputs(resolved: dict, dryrun: bool = False) -> None:
    """Every input check for the selected scale. In a dry run, checks of data placed by the user only warn."""
    data = resolved["data"]
    if data["text"]["source"] == "gensim_wiki":
        check_bz2_file(wiki_dump_path(data), "data.text.wiki_dump")
    if data["images"]["source"] == "imagenet":
        try:
            check_image_folder(Path(resolved["paths"]["imagenet_dir"]), "paths.imagenet_dir")
        except ConfigError as exc:
            if not dryrun:
                raise
            sys.stderr.write(f"heavytail: warning (dry run): {exc}\n")
    elif data["images"]["source"] == "fashion_mnist":
        from heavytail.data.images import check_fashion_mnist_dir  # lazy: images imports this module

        check_fashion_mnist_dir(Path(data["images"]["fashion_mnist_dir"]))
    _check_hub_revisions(data, dryrun)


def _check_hub_revisions(data: dict, dryrun: bool) -> None:
    """Hub datasets must be pinned to a commit; in a dry run an unpinned one only warns."""
    from heavytail.data.hf_text import check_source
    from heavytail.data.qa import check_squad_hub

    checks = []
    if data["text"]["source"] == "hf_wikipedia_bookcorpus":
        checks += [lambda: check_source(data["text"]["wikipedia"], "data.text.wikipedia"),
                   lambda: check_source(data["text"]["bookcorpus"], "data.text.bookcorpus")]
    squad = data["qa"].get("squad", {})
    if data["qa"]["source"] == "squad_v1" and not (squad.get("train_json") or squad.get("dev_json")):
        checks.append(lambda: check_squad_hub(squad))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            if not dryrun:
                raise
            sys.stderr.write(f"heavytail: warning (dry run): {exc}\n")
