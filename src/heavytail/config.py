"""Load, validate and resolve `config.yaml`: one schema, one-line errors, scale presets.

Imported by the Snakefile at parse time, so it must stay light: no torch, no transformers.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from heavytail.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
SCALES = ("tiny", "small", "paper")


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_config(config: dict, schema: dict | None = None, source: str = "config.yaml") -> dict:
    """Fill schema defaults into `config` (in place) and raise ConfigError with one line on the first problem."""
    import jsonschema

    schema = load_schema() if schema is None else schema
    validator_cls = _validator_filling_defaults(jsonschema.Draft7Validator)
    errors = sorted(validator_cls(schema).iter_errors(config), key=_error_rank)
    if errors:
        raise ConfigError(format_schema_error(errors[0], source))
    return config


def format_schema_error(error: Any, source: str = "config.yaml") -> str:
    """Turn a jsonschema error into `source: dotted.key must ... (got X)`."""
    error = _deepest(error)
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    got = json.dumps(error.instance) if not isinstance(error.instance, (dict, list)) else type(error.instance).__name__
    kind, arg = error.validator, error.validator_value
    if kind == "enum":
        need = "must be one of " + ", ".join(str(v) for v in arg)
    elif kind == "exclusiveMinimum":
        need = f"must be > {arg}"
    elif kind == "minimum":
        need = f"must be >= {arg}"
    elif kind == "maximum":
        need = f"must be <= {arg}"
    elif kind == "exclusiveMaximum":
        need = f"must be < {arg}"
    elif kind == "type":
        need = f"must be of type {arg if isinstance(arg, str) else ' or '.join(arg)}"
    elif kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{source}: unknown key {key + '.' if key != '<top level>' else ''}{extra[0]} (allowed keys: {allowed})"
    elif kind == "required":
        return f"{source}: {key} is missing a required key: {error.message.split(' ')[0]}"
    elif kind == "minItems":
        need = f"must have at least {arg} item(s)"
    else:
        need = error.message
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


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Recursively merge `override` into a copy of `base` (dicts merge, everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def preset(config: Mapping) -> dict:
    """The preset of the selected scale, with the scale name and the user paths attached."""
    scale = config["scale"]
    if scale not in config["presets"]:
        raise ConfigError(f"config.yaml: scale must be one of {', '.join(config['presets'])} (got {scale!r})")
    resolved = copy.deepcopy(config["presets"][scale])
    resolved["scale"] = scale
    resolved["paths"] = copy.deepcopy(config.get("paths", {}))
    return resolved


def put_python_on_path() -> None:
    """Make `python` in rule commands the interpreter running Snakemake.

    Rules call `python -m heavytail...`. Without --use-conda that must be this environment's Python (e.g.
    .venv/bin/snakemake run without activating .venv); with conda, the env's own bin dir comes first anyway.
    """
    import sys

    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


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
        return yaml.safe_load(fh) if path.suffix in (".yaml", ".yml") else json.load(fh)


def load_config(path: str | os.PathLike = REPO_ROOT / "config.yaml", overrides: Mapping | None = None) -> dict:
    """config.yaml merged with overrides, validated with defaults filled: what the Snakefile sees."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config, source=Path(path).name)
