"""Peak memory of `prepare_mlm_data` at 1x and 10x corpus size, measured in one run; write JSON.

    python -m heavytail.bench.packing --out results/bench/packing.json [--articles 1500] [--factor 10] [--no-nsp]

Workload: a synthetic corpus of `articles` x `factor` articles (about 250 words each, in sentences and paragraphs,
drawn from 3000 pseudo-words) and a word-level BERT tokenizer over those words, packed at length 128 (with NSP by
default, as the paper recipe does). Each size is packed in a fresh child process, which samples its own
/proc/self/status every 10 ms. Reported per size: the peak anonymous RSS (heap: what packing allocates), the
anonymous RSS after the imports (the floor), and VmHWM, the peak total RSS, which also counts pages of the
memory-mapped corpus the kernel keeps cached and can drop at any time. Goal: peak anonymous RSS at 10x is at most
1.1 x that at 1x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GOALS = {"peak_anon_ratio": 1.10}
WORDS_PER_ARTICLE, WORDS_PER_SENTENCE, SENTENCES_PER_PARAGRAPH, VOCAB_WORDS = 250, 12, 5, 3000
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def pseudo_words(n: int) -> list[str]:
    """n distinct lowercase pseudo-words (base-26 spellings), each one token of the benchmark tokenizer."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(letters[(i // 26**k) % 26] for k in range(3)) + "o" for i in range(n)]


def write_synthetic_corpus(out: Path, articles: int, seed: int = 0) -> None:
    """A corpus DatasetDict {train, validation} (1 % held out) of synthetic prose articles."""
    import datasets

    words = np.array(pseudo_words(VOCAB_WORDS))
    rng = np.random.default_rng(seed)

    def rows(first: int, count: int):
        for i in range(first, first + count):
            ids = rng.integers(0, VOCAB_WORDS, WORDS_PER_ARTICLE)
            sentences = [" ".join(words[ids[k:k + WORDS_PER_SENTENCE]]) + "."
                         for k in range(0, WORDS_PER_ARTICLE, WORDS_PER_SENTENCE)]
            paragraphs = [" ".join(sentences[k:k + SENTENCES_PER_PARAGRAPH])
                          for k in range(0, len(sentences), SENTENCES_PER_PARAGRAPH)]
            yield {"id": str(i), "title": f"Article {i}", "text": "\n".join(paragraphs)}

    held_out = max(1, articles // 100)
    features = datasets.Features({name: datasets.Value("string") for name in ("id", "title", "text")})
    splits = {"train": (0, articles - held_out), "validation": (articles - held_out, held_out)}
    corpus = datasets.DatasetDict({name: datasets.Dataset.from_generator(rows, gen_kwargs={"first": a, "count": n},
                                                                         features=features, keep_in_memory=False,
                                                                         cache_dir=str(out.parent / ".gen"))
                                   for name, (a, n) in splits.items()})
    corpus.save_to_disk(str(out))


def write_word_tokenizer(out: Path) -> None:
    """A BertTokenizerFast whose vocabulary is the specials, the pseudo-words and '.' (one token per word)."""
    from transformers import BertTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIAL, ".", *pseudo_words(VOCAB_WORDS)])}
    BertTokenizerFast(vocab=vocab, do_lower_case=True).save_pretrained(str(out))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_child(corpus: str, tokenizer: str, out: str, nsp: bool) -> dict:
    """Pack in this process while a thread samples its anonymous RSS; the peaks in MiB."""
    import datasets  # noqa: F401  (imports first: the floor is what a packing job holds before it starts)
    import transformers  # noqa: F401

    from heavytail.data.mlm import prepare_mlm_data

    floor = _status_kib("RssAnon")
    peak = [floor]
    done = threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], _status_kib("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    meta = prepare_mlm_data(corpus, tokenizer, out, 128, nsp=nsp, seed=0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _status_kib("RssAnon"))
    return {"peak_anon_mib": peak[0] / 1024, "floor_anon_mib": floor / 1024, "vm_hwm_mib": _status_kib("VmHWM") / 1024,
            "seconds": seconds, "train_tokens": meta["splits"]["train"]["tokens"], "dtypes": meta.get("dtypes")}


def measure(articles: int, work: Path, nsp: bool, threads: int) -> dict:
    """Build a corpus of `articles` articles and pack it in a child process; its measurements."""
    corpus, tokenizer, out = work / f"corpus{articles}", work / "tokenizer", work / f"packed{articles}"
    write_synthetic_corpus(corpus, articles)
    if not tokenizer.is_dir():
        write_word_tokenizer(tokenizer)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "RAYON_NUM_THREADS": str(threads),
           "HF_DATASETS_CACHE": str(work / ".cache"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "heavytail.bench.packing", "--child", str(corpus), str(tokenizer), str(out)]
    proc = subprocess.run(cmd + ([] if nsp else ["--no-nsp"]), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"heavytail.bench.packing: packing {articles} articles failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["articles"] = articles
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="job config, recorded beside the result (the pipeline's bench rules)")
    parser.add_argument("--out", help="JSON file to write")
    parser.add_argument("--articles", type=int, default=1500, help="articles of the 1x corpus (about 250 words each)")
    parser.add_argument("--factor", type=int, default=10, help="size of the large corpus, in multiples of the small")
    parser.add_argument("--no-nsp", dest="nsp", action="store_false", help="pack without NSP pairs")
    parser.add_argument("--threads", type=int, default=1, help="tokenizer and BLAS threads of the packing process")
    parser.add_argument("--child", nargs=3, metavar=("CORPUS", "TOKENIZER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_child(*args.child, nsp=args.nsp)), flush=True)
        return
    if not args.out:
        parser.error("--out is required")
    # these import torch: the child processes never need it
    from heavytail.bench.common import write_result
    from heavytail.config import load_job_config

    with tempfile.TemporaryDirectory(prefix="bench-packing.") as tmp:
        small, large = (measure(args.articles * k, Path(tmp), args.nsp, args.threads) for k in (1, args.factor))
    ratio = large["peak_anon_mib"] / small["peak_anon_mib"]
    growth = {name: (r["peak_anon_mib"] - r["floor_anon_mib"]) for name, r in (("1x", small), ("large", large))}
    result = {"sizes": {"1x": small, f"{args.factor}x": large}, "peak_anon_ratio": ratio,
              "vm_hwm_ratio": large["vm_hwm_mib"] / small["vm_hwm_mib"],
              "growth_above_floor_mib": {"1x": growth["1x"], f"{args.factor}x": growth["large"]},
              "goals": GOALS, "meets_goal": {"peak_anon_ratio": ratio <= GOALS["peak_anon_ratio"]},
              "workload": {"articles_1x": args.articles, "factor": args.factor, "nsp": args.nsp,
                           "max_seq_length": 128, "words_per_article": WORDS_PER_ARTICLE}}
    for name, r in result["sizes"].items():
        print(f"packing {name:>4s}: {r['train_tokens']:>10d} train tokens in {r['seconds']:6.1f} s, peak anon RSS "
              f"{r['peak_anon_mib']:7.1f} MiB (floor {r['floor_anon_mib']:.1f}), VmHWM {r['vm_hwm_mib']:7.1f} MiB",
              flush=True)
    print(f"peak anon RSS {args.factor}x / 1x = {ratio:.3f} (goal <= {GOALS['peak_anon_ratio']}); "
          f"VmHWM ratio {result['vm_hwm_ratio']:.3f}", flush=True)
    write_result(args.out, result, load_job_config(args.config) if args.config else {})


if __name__ == "__main__":
    main()
