"""The `heavytail` console script: one subcommand per `python -m heavytail.<...>` entry point."""

from __future__ import annotations

import importlib.util
import runpy
import sys

ENTRY_POINTS = {
    "corpus": ("heavytail.data.corpus", "extract the text corpus into train/validation splits"),
    "tokenizer": ("heavytail.data.tokenizer", "train (or fetch) the WordPiece tokenizer"),
    "images": ("heavytail.data.images", "lay out the image data as an ImageFolder"),
    "qa": ("heavytail.data.qa", "build the SQuAD-format QA data"),
    "pretrain": ("heavytail.train.pretrain", "pretrain BERT (MLM) with one optimizer"),
    "tune": ("heavytail.train.tune", "learning-rate grid for one optimizer"),
    "finetune-squad": ("heavytail.train.finetune_squad", "fine-tune BERT on SQuAD-format QA"),
    "classify": ("heavytail.train.classify", "train an image classifier"),
    "noise": ("heavytail.noise.measure", "measure gradient noise of a checkpoint"),
    "theory": ("heavytail.theory.run", "synthetic checks of the theory (Table 1)"),
    "aggregate": ("heavytail.report.aggregate", "collect results into tables"),
    "report": ("heavytail.report.render", "render the HTML report"),
    "bench-optim": ("heavytail.bench.optim", "benchmark ACClip against torch AdamW"),
    "bench-noise": ("heavytail.bench.noise", "benchmark the noise sampler"),
    "bench-pretrain": ("heavytail.bench.pretrain", "benchmark the pretraining step"),
}


def usage() -> str:
    lines = ["usage: heavytail <command> [args...]   (each command also runs as python -m <module>)", ""]
    for name, (module, help_text) in ENTRY_POINTS.items():
        available = "" if importlib.util.find_spec(module) else "   [not implemented yet]"
        lines.append(f"  {name:<15} {help_text} ({module}){available}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in ENTRY_POINTS:
        print(f"heavytail: unknown command {command!r} (known: {', '.join(ENTRY_POINTS)})", file=sys.stderr)
        return 2
    module = ENTRY_POINTS[command][0]
    if importlib.util.find_spec(module) is None:
        print(f"heavytail: {command} is not implemented yet ({module})", file=sys.stderr)
        return 2
    sys.argv = [f"heavytail {command}", *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
