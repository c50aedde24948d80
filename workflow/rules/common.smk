# The experiment, checked before any job, and the few glue functions Snakemake needs. The plan itself (runs,
# paths, panels, job configs) lives in heavytail.plan; resources live in the profiles (workflow/profiles/).

import inspect
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from heavytail.config import (
    load_experiment,
    put_python_on_path,
    read_yaml,
)  # noqa: E402
from heavytail.constraints import check_experiment  # noqa: E402
from heavytail.data.hub import use_project_hf_home  # noqa: E402
from heavytail.errors import ConfigError  # noqa: E402
from heavytail.plan import artifacts as plan_artifacts  # noqa: E402
from heavytail.plan import noise as plan_noise  # noqa: E402
from heavytail.plan import paths as PATHS  # noqa: E402
from heavytail.plan import pretrain as plan_pretrain  # noqa: E402
from heavytail.plan import squad as plan_squad  # noqa: E402
from heavytail.plan import vision as plan_vision  # noqa: E402
from heavytail.plan.jobs import job_config  # noqa: E402
from heavytail.plan.paths import named  # noqa: E402
from heavytail.preflight import preflight  # noqa: E402


def parse_invocation():
    """(dry run?, targets) of this snakemake call, read with Snakemake's own argument parser.

    The Snakefile is parsed before Snakemake knows its executor or targets, so workflow.dryrun is not set yet.
    """
    from snakemake.cli import get_argument_parser

    try:
        args, _ = get_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:  # not a snakemake command line (e.g. the API): check everything
        return False, []
    inspect_only = (
        args.dryrun
        or args.lint is not None
        or args.list_rules
        or args.summary
        or args.detailed_summary
    )
    return bool(inspect_only), list(args.targets or [])


def stop(problems):
    # one line per problem, no traceback: each names the key or file and the fix
    for problem in problems:
        sys.stderr.write(f"heavytail: {problem}\n")
    sys.exit(1)


def base_config_file():
    """config.yaml of the working directory (-d), else the pipeline's own."""
    local = Path("config.yaml")
    return local if local.is_file() else Path(workflow.basedir) / "config.yaml"


put_python_on_path()
try:
    EXPERIMENT = load_experiment(
        read_yaml(base_config_file()), workflow.config_settings.overwrite_config
    )
except ConfigError as exc:
    stop([str(exc)])
_inspect_only, _targets = parse_invocation()
_input_problems, _warnings = preflight(
    EXPERIMENT, plan_artifacts.data_kinds_for(_targets), dryrun=_inspect_only
)
for _warning in _warnings:
    sys.stderr.write(f"heavytail: warning (dry run): {_warning}\n")
_problems = check_experiment(EXPERIMENT) + _input_problems
if _problems:
    stop(_problems)

SCALE = EXPERIMENT["scale"]
# every job, on the submit host and on compute nodes alike (the job's Snakemake parses this file there too),
# reads and writes Hugging Face files in the project's cache, never in ~/.cache
use_project_hf_home(EXPERIMENT["paths"])
ARTIFACTS = plan_artifacts.artifacts(EXPERIMENT)


def quoted(job):
    """A job config as one shell word: inline, so that Snakemake reruns a job whose config changed."""
    return shlex.quote(json.dumps(job, sort_keys=True))


def stage_config(stage, **extra):
    return quoted(job_config(EXPERIMENT, stage, **extra))


def _wildcards_for(build, wildcards):
    # a plan function names the wildcards it reads; the others (e.g. {seed} of a squad job) are not its business
    wanted = inspect.signature(build).parameters
    return {name: value for name, value in wildcards.items() if name in wanted}


def from_wildcards(build):
    """An input or params function: `build(EXPERIMENT, **wildcards)`."""

    def function(wildcards):
        return build(EXPERIMENT, **_wildcards_for(build, wildcards))

    return function


def job_param(build):
    """A params function: the job config `build(EXPERIMENT, **wildcards)`, quoted."""

    def param(wildcards):
        return quoted(build(EXPERIMENT, **_wildcards_for(build, wildcards)))

    return param


# torchrun sends SIGKILL this long after forwarding a SIGTERM: longer than a checkpoint takes, shorter than the
# 120 s between the profile's warning signal and the time limit. SIGUSR1 is forwarded too (a manual requeue).
TORCHRUN = (
    "torchrun --standalone --nproc_per_node {gpus} --shutdown-timeout 110"
    " --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 -m"
)


def constant_param(value):
    """A params function returning `value` as it is (a string param's {wildcards} would be filled)."""

    def param(wildcards):
        return value

    return param


def launcher(wildcards, resources):
    """`torchrun` with one process per GPU when the profile gives the job more than one GPU."""
    gpus = int(resources.get("gpu", 0))
    return TORCHRUN.format(gpus=gpus) if gpus > 1 else "python -m"


def gpu_count(wildcards, resources):
    """The GPUs the profile gave the job (0 without): the entry point stops if it cannot see them."""
    return int(resources.get("gpu", 0))


def attempt_number(wildcards, attempt):
    """Snakemake's attempt number, as a resource: params and shell commands see no other way to it."""
    return attempt


def retried(command, record):
    """The shell of a training rule: `command` (its log appended to, one segment per attempt), refused at once
    when the previous attempt failed on its own (heavytail.train.retry), its exit code recorded in `record`.
    """
    options = f"--attempt {{resources.attempt}} --record {record}"
    # torchrun reports a worker's requeue (exit 75) as 1: the engine leaves {record}.requeue to tell them apart,
    # and `record` exits with the attempt's code as it counts it
    # the shell outlives a SIGTERM to the job step (it waits for the training's checkpoint, then records)
    return (
        "trap true TERM USR1; "
        f"python -m heavytail.train.retry check {options} >> {{log}} 2>&1 &&"
        f" HEAVYTAIL_REQUEUE_MARKER={record}.requeue {command} >> {{log}} 2>&1 || code=$?;"
        f" python -m heavytail.train.retry record {options} --exit ${{{{code:-0}}}}"
    )


def noise_output_root(wildcards, output):
    """The folder under which one measure_noise job writes its measurements."""
    return plan_noise.output_root(EXPERIMENT, list(output.summaries))


def corpus_input_files():
    """The offline dump is a tracked input, so replacing it re-runs corpus preparation."""
    if EXPERIMENT["data"]["text"]["source"] == "gensim_wiki":
        from heavytail.data.wikitext import wiki_dump_path

        return [str(wiki_dump_path(EXPERIMENT["data"]))]
    return []


wildcard_constraints:
    scale=SCALE,


def experiments_of(scales):
    """The experiments of other scales (the budget prices small and paper, the benchmark times every scale):
    config.yaml and their scale files; command-line overrides apply to the selected scale only.
    """
    base = read_yaml(base_config_file())
    return {
        s: EXPERIMENT if s == SCALE else load_experiment(base, {"scale": s})
        for s in scales
    }
