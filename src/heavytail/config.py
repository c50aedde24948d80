"""The experiment of a scale: config.yaml (the paper's), its scale file, command-line overrides; one schema.

    experiment = load_experiment(base, overrides)    # what every rule and job of a run reads
    job = resolve_job_config(raw, "pretrain", JOB_KEYS)   # what an entry point does with its --config

Imported by the Snakefile at parse time, so it must stay light: no torch, no transformers.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from heavytail.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "workflow" / "schemas"
SCALES_DIR = REPO_ROOT / "workflow" / "scales"
SCALES = ("tiny", "small", "paper")
BASE_SCALE = "paper"  # config.yaml is the paper's experiment; the other scales are differences from it
# libyaml's loader where PyYAML has it: the Snakefile parses every file on every snakemake call
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# what job_config adds around a stage's section: not part of the stage's schema
ENVELOPE = ("scale", "paths", "data", "stage")


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=YAML_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc


def load_schema(directory: str | os.PathLike = SCHEMA_DIR) -> dict:
    """config.schema.yaml with the definitions of every other *.schema.yaml beside it merged in."""
    return copy.deepcopy(_schema(str(directory)))


@functools.lru_cache(maxsize=4)
def _schema(directory: str) -> dict:
    schema = read_yaml(Path(directory) / "config.schema.yaml")
    for part in sorted(Path(directory).glob("*.schema.yaml")):
        if part.name != "config.schema.yaml":
            schema["definitions"].update(read_yaml(part)["definitions"])
    return schema


# --- layers --------------------------------------------------------------------------------------------------

def scale_file(scale: str) -> Path | None:
    """The file holding what `scale` changes in config.yaml; None for the paper scale, which is config.yaml."""
    return None if scale == BASE_SCALE else SCALES_DIR / f"{scale}.yaml"


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Recursively merge `override` into a copy of `base` (dicts merge, everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_scale(base: Mapping, overlay: Mapping, schema: dict) -> dict:
    """`overlay` merged into `base`, except that maps keyed by label (`x-replace-whole` in the schema) are
    replaced whole: a label that exists only in the paper's experiment never leaks into a smaller scale."""
    return _merge_by_schema(base, overlay, schema, schema)


def _merge_by_schema(base: Mapping, overlay: Mapping, node: dict | None, root: dict) -> dict:
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        sub = _child_schema(node, key, root)
        replace = sub is not None and sub.get("x-replace-whole")
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and not replace:
            merged[key] = _merge_by_schema(merged[key], value, sub, root)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _resolve(node: dict | None, root: dict) -> dict | None:
    while isinstance(node, dict) and "$ref" in node:
        node = root["definitions"][node["$ref"].split("/")[-1]]
    return node


def _child_schema(node: dict | None, key: str, root: dict) -> dict | None:
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return None
    if key in node.get("properties", {}):
        return _resolve(node["properties"][key], root)
    extra = node.get("additionalProperties")
    return _resolve(extra, root) if isinstance(extra, dict) else None


def unknown_keys(obj: Any, node: dict | None, root: dict, prefix: str = "") -> list[str]:
    """Dotted keys of `obj` that the schema does not allow (checked in a scale file before merging, so that
    the error names the file that holds the typo)."""
    node = _resolve(node, root)
    if not isinstance(obj, Mapping) or not isinstance(node, dict):
        return []
    found = []
    for key, value in obj.items():
        sub = _child_schema(node, key, root)
        if sub is None and node.get("additionalProperties") is False:
            found.append(f"{prefix}{key}")
        else:
            found += unknown_keys(value, sub, root, f"{prefix}{key}.")
    return found


def load_experiment(base: Mapping, overrides: Mapping | None = None, base_source: str = "config.yaml") -> dict:
    """The validated experiment of the selected scale: `base` (config.yaml), then the scale file, then
    `overrides` (--configfile / --config, merged key by key). Raises ConfigError naming the file and key."""
    overrides = dict(overrides or {})
    scale = overrides.pop("scale", base.get("scale", "tiny"))
    if scale not in SCALES:
        raise ConfigError(f"{base_source}: scale must be one of {', '.join(SCALES)} (got {json.dumps(scale)})")
    schema = load_schema()
    experiment = {k: v for k, v in base.items() if k != "scale"}
    layers = [(base_source, experiment)]
    path = scale_file(scale)
    if path is not None:
        overlay = read_yaml(path)
        source = str(path.relative_to(REPO_ROOT))
        for key in unknown_keys(overlay, schema, schema):
            raise ConfigError(f"{source}: unknown key {key} (see workflow/schemas/ for the keys of each section)")
        experiment = apply_scale(experiment, overlay, schema)
        layers.append((source, overlay))
    if overrides:
        experiment = deep_merge(experiment, overrides)
        layers.append(("--config/--configfile", overrides))
    experiment["scale"] = scale
    validate_config(experiment, schema, source=" + ".join(name for name, _ in layers), layers=layers)
    return experiment


def load_config(path: str | os.PathLike = REPO_ROOT / "config.yaml", overrides: Mapping | None = None) -> dict:
    """The experiment that `snakemake` with this config.yaml and these overrides would run."""
    return load_experiment(read_yaml(path), overrides, base_source=Path(path).name)


def experiment_of(scale: str, base: Mapping, overrides: Mapping | None = None) -> dict:
    """The experiment of another scale than the selected one (the budget prices small and paper)."""
    return load_experiment(base, {**(overrides or {}), "scale": scale})


# --- validation ----------------------------------------------------------------------------------------------

def validate_config(config: dict, schema: dict | None = None, source: str = "config.yaml",
                    layers: Iterable[tuple[str, Mapping]] = ()) -> dict:
    """Fill schema defaults into `config` (in place) and raise ConfigError with one line on the first problem.
    With `layers` (name, mapping), the message names the layer that set the offending key."""
    import jsonschema

    schema = load_schema() if schema is None else schema
    validator_cls = _validator_filling_defaults(jsonschema.Draft7Validator)
    errors = sorted(validator_cls(schema).iter_errors(config), key=_error_rank)
    if errors:
        deepest = _deepest(errors[0])
        origin = _layer_of(list(deepest.absolute_path), list(layers)) or source
        raise ConfigError(format_schema_error(errors[0], origin))
    return config


def _layer_of(path: list, layers: list[tuple[str, Mapping]]) -> str | None:
    # the last layer that sets the key (or its nearest parent) is the one to edit
    for name, mapping in reversed(layers):
        node, depth = mapping, 0
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                break
            node, depth = node[part], depth + 1
        if depth == len(path) and path:
            return name
    return None


def format_schema_error(error: Any, source: str = "config.yaml") -> str:
    """Turn a jsonschema error into `source: dotted.key must ... (got X)`."""
    error = _deepest(error)
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    got = json.dumps(error.instance) if not isinstance(error.instance, (dict, list)) else type(error.instance).__name__
    kind, arg = error.validator, error.validator_value
    needs = {"enum": lambda: "must be one of " + ", ".join(str(v) for v in arg),
             "exclusiveMinimum": lambda: f"must be > {arg}", "minimum": lambda: f"must be >= {arg}",
             "maximum": lambda: f"must be <= {arg}", "exclusiveMaximum": lambda: f"must be < {arg}",
             "type": lambda: f"must be of type {arg if isinstance(arg, str) else ' or '.join(arg)}",
             "minItems": lambda: f"must have at least {arg} item(s)",
             "minProperties": lambda: f"must have at least {arg} entr{'y' if arg == 1 else 'ies'}"}
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{source}: unknown key {key + '.' if key != '<top level>' else ''}{extra[0]} (allowed keys: {allowed})"
    if kind == "required":
        missing = error.message.split("'")[1]
        return f"{source}: {key} is missing the key {missing} (every experiment value is stated; see workflow/schemas/)"
    need = needs[kind]() if kind in needs else error.message
    return f"{source}: {key} {need} (got {got})"


def _deepest(error: Any) -> Any:
    # anyOf/oneOf wrap the informative error in their context: report the most specific one
    while error.context:
        error = sorted(error.context, key=_error_rank)[0]
    return error


def _error_rank(error: Any) -> tuple:
    return (-len(error.absolute_path), error.validator != "enum", str(error.absolute_path))


def _validator_filling_defaults(base: Any) -> Any:
    import jsonschema

    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


# --- job configs ---------------------------------------------------------------------------------------------

def load_job_config(arg: str) -> dict:
    """Entry points take `--config` as a JSON/YAML file path or as an inline JSON object."""
    text = arg.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config: inline JSON does not parse ({exc.msg} at char {exc.pos})") from exc
    path = Path(arg)
    if not path.is_file():
        raise ConfigError(f"--config: file {arg} does not exist (pass a resolved job config JSON or YAML)")
    with open(path) as fh:
        return yaml.load(fh, Loader=YAML_LOADER) if path.suffix in (".yaml", ".yml") else json.load(fh)


def resolve_job_config(job: Mapping, stage: str, job_keys: Iterable[str] = (), omitted: Iterable[str] = (),
                       required: Iterable[str] = ()) -> dict:
    """A job config as an entry point uses it: its stage section validated against the schema (the same
    mechanics defaults a pipeline run gets), its data sections and paths likewise; `job_keys` are the entry
    point's own keys (`required` of them must be there), `omitted` the section keys this job is built
    without (e.g. the noise figures' settings in a measurement job)."""
    missing = [key for key in required if key not in job]
    if missing:
        raise ConfigError(f"job config ({stage}) is missing {', '.join(missing)} (see the entry point's --help)")
    schema = load_schema()
    job_keys, omitted = set(job_keys), set(omitted)
    definitions = schema["definitions"]
    resolved = {k: copy.deepcopy(v) for k, v in job.items() if k not in ENVELOPE or k == "stage"}
    if stage in definitions:
        section_schema = copy.deepcopy(definitions[stage])
        section_schema["required"] = [k for k in section_schema.get("required", []) if k not in omitted]
        section = {k: v for k, v in resolved.items() if k not in job_keys and k != "stage"}
        validate_config(section, {**section_schema, "definitions": definitions}, source=f"job config ({stage})")
        resolved.update(section)
        if job_keys & set(section):  # a job key of the same name as a section key would be overwritten
            raise ConfigError(f"job config ({stage}): {sorted(job_keys & set(section))} are section keys")
    paths = copy.deepcopy(dict(job.get("paths") or {}))
    validate_config(paths, {**schema["properties"]["paths"], "definitions": definitions}, source="job config (paths)")
    data = copy.deepcopy(dict(job.get("data") or {}))
    data_props = definitions["data"]["properties"]
    for name, section in data.items():
        if name not in data_props:
            raise ConfigError(f"job config: unknown data section {name} (allowed: {', '.join(data_props)})")
        validate_config(section, {**data_props[name], "definitions": definitions}, source="job config (data)")
    resolved.update(scale=job.get("scale"), paths=paths, data=data, stage=job.get("stage", stage))
    return resolved


def put_python_on_path() -> None:
    """Make `python` in rule commands the interpreter running Snakemake.

    Rules call `python -m heavytail...`. Without --use-conda that must be this environment's Python (e.g.
    .venv/bin/snakemake run without activating .venv); with conda, the env's own bin dir comes first anyway.
    """
    import sys

    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
