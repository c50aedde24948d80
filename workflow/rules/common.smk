# Helpers shared by every stage: config validation, scale lookup, job configs, resources, target lists.
# No rule lives here; stage files call these helpers so that rules hold no lambdas.

import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from heavytail.config import preset, put_python_on_path, validate_config  # noqa: E402
from heavytail.errors import ConfigError  # noqa: E402
from heavytail.inputs import check_inputs  # noqa: E402



def parse_invocation():
    """(dry run?, targets) of this snakemake call, read with Snakemake's own argument parser.

    The Snakefile is parsed before Snakemake knows its executor or targets, so workflow.dryrun is not set yet.
    """
    from snakemake.cli import get_argument_parser

    try:
        args, _ = get_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:  # not a snakemake command line (e.g. the API): check everything
        return False, []
    inspect_only = args.dryrun or args.lint is not None or args.list_rules or args.summary or args.detailed_summary
    return bool(inspect_only), list(args.targets or [])


# Targets that read no user-placed data: they run even where ImageNet is not in place yet.
TARGETS_WITHOUT_USER_DATA = {"budget", "estimate_budget", "table1", "run_theory", "plot_table1", "bench"}

put_python_on_path()

try:
    validate_config(config, source="config.yaml")
    PRESET = preset(config)
    _inspect_only, _targets = parse_invocation()
    _user_data_needed = not (_targets and set(_targets) <= TARGETS_WITHOUT_USER_DATA)
    check_inputs(PRESET, dryrun=_inspect_only or not _user_data_needed)
except ConfigError as exc:
    # one line, no traceback: the message names the key or file and the fix
    sys.stderr.write(f"heavytail: {exc}\n")
    sys.exit(1)

SCALE = PRESET["scale"]
ARTIFACTS = {}  # paper artifact name -> concrete output file, filled by the stage files



def register_artifact(name, path):
    """A paper artifact (figure or table) that a stage file builds; `reproduce_all` and the report collect them."""
    ARTIFACTS[name] = path


def get_final_output():
    """Every registered artifact of this scale, then the HTML report."""
    return [ARTIFACTS[name] for name in sorted(ARTIFACTS)] + [f"reports/{SCALE}/index.html"]


# The data sections (of the preset's `data`) each stage's jobs read; the data rules are stages of their own
# (corpus, tokenizer, images, qa). A job's config holds only these, so that e.g. a change to the QA generator
# reruns QA and SQuAD, not the corpus, BERT pretraining or the vision runs.
DATA_SECTIONS = {
    "corpus": ("text",),
    "tokenizer": ("text", "tokenizer"),
    "images": ("images",),
    "qa": ("text", "qa"),
    "pretrain": ("text", "tokenizer"),
    "squad": ("text", "tokenizer", "qa"),
    "vision": ("images",),
    "noise": ("text", "tokenizer", "images"),
    "theory": (),
    "bench": ("text", "tokenizer", "images"),
    "report": ("text", "tokenizer", "images", "qa"),
}


def job_config(stage, **extra):
    """The resolved config of one job, shell-quoted: the stage's preset section (if it has one) plus scale,
    paths, the data sections it reads (DATA_SECTIONS[stage]) and extras.

    Passing it inline (rather than via a file written at parse time) makes Snakemake re-run a job whose
    config changed, and the entry point writes it beside its outputs.
    """
    resolved = dict(PRESET.get(stage, {}))
    data = {key: PRESET["data"][key] for key in DATA_SECTIONS[stage]}
    resolved.update(scale=SCALE, paths=PRESET["paths"], data=data, stage=stage)
    resolved.update(extra)
    return shlex.quote(json.dumps(resolved, sort_keys=True))


def resources_for(family):
    """Cluster resources of a rule family at this scale (cpus, mem_mb, runtime in minutes, gpus)."""
    spec = PRESET["resources"][family]
    runtime = spec["runtime"]
    if partition_time_limit():
        # longer jobs run in segments: SIGTERM before the limit, checkpoint, resubmitted by the profile's retries
        runtime = min(runtime, partition_time_limit())
    res = {"mem_mb": spec["mem_mb"], "runtime": runtime, "cpus_per_task": spec["cpus"]}
    if spec.get("gpus", 0):
        # the slurm plugin turns `gpu` into `--gpus=N`; one node, since torchrun --standalone sees local GPUs only
        res["gpu"] = spec["gpus"]
        res["nodes"] = 1
    return res


def launcher_for(family):
    """The command prefix that starts a `-m` entry point: torchrun with one process per GPU when gpus > 1."""
    gpus = PRESET["resources"][family].get("gpus", 0)
    if gpus > 1:
        return f"torchrun --standalone --nproc_per_node {gpus} -m"
    return "python -m"


def partition_time_limit():
    """HEAVYTAIL_SLURM_TIME_LIMIT in minutes (README, "Running on a cluster"), or None when unset."""
    raw = os.environ.get("HEAVYTAIL_SLURM_TIME_LIMIT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        sys.stderr.write(f"heavytail: HEAVYTAIL_SLURM_TIME_LIMIT must be whole minutes > 0 (got {raw!r})\n")
        sys.exit(1)
    return int(raw)


def threads_for(family):
    return PRESET["resources"][family]["cpus"]


def corpus_input_files():
    """The offline dump is a tracked input, so replacing it re-runs corpus preparation."""
    if PRESET["data"]["text"]["source"] == "gensim_wiki":
        from heavytail.inputs import wiki_dump_path

        return [str(wiki_dump_path(PRESET["data"]))]
    return []


def data_summary_inputs():
    """The prepared data sets, whose statistics the report states at the top."""
    return {
        "corpus": f"results/{SCALE}/data/corpus",
        "tokenizer": f"results/{SCALE}/data/tokenizer",
        "images": f"results/{SCALE}/data/images/manifest.json",
        "qa": f"results/{SCALE}/data/qa",
    }


wildcard_constraints:
    scale=SCALE,
