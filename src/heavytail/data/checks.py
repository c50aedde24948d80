"""Every data-input problem of a resolved config, as one-line strings, found without downloading anything.

A preflight prints them all at once; each names the config key (or file) and the fix. The tiny corpus's bz2
integrity check stays with the caller (it reads the whole file).
"""

from __future__ import annotations

from pathlib import Path

from heavytail.data.hf_text import text_problems
from heavytail.data.imagenet import imagenet_layout_problems
from heavytail.data.qa import squad_problems
from heavytail.data.tokenizer import tokenizer_problems


def data_problems(resolved: dict, images: bool = True) -> list[str]:
    """Problems of data.text, data.tokenizer, data.qa and (when `images`) data.images of `resolved`."""
    data, paths = resolved["data"], resolved.get("paths", {})
    problems = text_problems(data["text"]) + tokenizer_problems(data["tokenizer"])
    if data["qa"]["source"] == "squad_v1":
        problems += squad_problems(data["qa"]["squad"])
    if images and data["images"]["source"] == "imagenet":
        problems += imagenet_layout_problems(Path(paths["imagenet_dir"]), paths.get("imagenet_val_labels"))
    elif images and data["images"]["source"] == "fashion_mnist":
        from heavytail.data.images import check_fashion_mnist_dir
        from heavytail.errors import ConfigError

        try:
            check_fashion_mnist_dir(Path(data["images"]["fashion_mnist_dir"]))
        except ConfigError as exc:
            problems.append(str(exc))
    return problems
