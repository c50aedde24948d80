"""The runs behind each claim, with the files a reader checks first: the job's log, resolved_config.json, run.json.

A job's log is found from the workflow's own (output, log) path templates (the render rule passes them as
`job_logs`), so the links follow the rules wherever they put their logs; without them a claim lists its runs
and their configs only.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from heavytail.report.selection import select
from heavytail.report.verdicts import with_reading

WILDCARD = re.compile(r"\{(\w+)(?:,[^{}]*)?\}")
RUN_FILES = ("resolved_config.json", "run.json")


@lru_cache(maxsize=512)
def _regex(template: str) -> re.Pattern:
    parts, last = [], 0
    for match in WILDCARD.finditer(template):
        parts += [re.escape(template[last:match.start()]), f"(?P<{match.group(1)}>[^/]+)"]
        last = match.end()
    return re.compile("".join(parts) + re.escape(template[last:]))


def log_of(result: str, job_logs: list[list[str]]) -> str | None:
    """The log of the job that wrote `result` (a file, or a run folder holding a rule's output)."""
    for output, log in job_logs:
        for candidate in (result, f"{result}/{os.path.basename(output)}"):
            match = _regex(output).fullmatch(candidate)
            if match:
                values = match.groupdict()
                names = [m.group(1) for m in WILDCARD.finditer(log)]
                # a log naming a wildcard its output does not is no log of this result
                return WILDCARD.sub("{\\1}", log).format_map(values) if set(names) <= set(values) else None
    return None


def _groups(comp: dict, labels: list[str], name: str | None) -> list[dict | None]:
    """The row selections a claim reads: its groups a and b (per reading), its checks, or everything."""
    comps = [with_reading(comp, name, label) for label in labels] if name and labels else [comp]
    specs = [spec for c in comps for spec in (c.get("a"), c.get("b")) if spec]
    specs += [check.get("where") or {} for check in comp.get("checks", [])]
    return specs or [None]


def used_rows(claim: dict, tables: dict[str, pd.DataFrame], readings: dict | None = None) -> pd.DataFrame:
    """The rows of the claim's table that its groups read."""
    comp = claim["comparison"]
    frame = select(tables.get(comp["table"], pd.DataFrame()), comp.get("filter"))
    if frame.empty:
        return frame
    name = claim.get("readings")
    labels = list((readings or {}).get(name, {})) if name else []
    picked = [select(frame, spec) if spec is not None else frame for spec in _groups(comp, labels, name)]
    return pd.concat(picked).drop_duplicates() if picked else frame.iloc[0:0]


def _result_paths(rows: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Each row's result: its run folder (runs, curves) or the file it was read from (noise, theory)."""
    if "path" in rows.columns:
        paths = rows["path"].dropna().astype(str)
    elif {"stage", "model", "optimizer", "seed"} <= set(rows.columns) and "path" in runs.columns:
        keys = ["stage", "model", "optimizer", "seed"]
        joined = rows[keys].drop_duplicates().astype(str).merge(runs[[*keys, "path"]].astype(str), on=keys)
        paths = joined["path"]
    else:
        return []
    return list(dict.fromkeys(paths))


def runs_used(claim: dict, tables: dict[str, pd.DataFrame], results_root: str, job_logs: list[list[str]],
              readings: dict | None = None) -> list[dict]:
    """One entry per result a claim read: its name and the log / config / record files that exist."""
    rows = used_rows(claim, tables, readings)
    out = []
    for path in _result_paths(rows, tables.get("runs", pd.DataFrame())):
        folder = path if not Path(path).suffix else str(Path(path).parent)
        links = {}
        log = log_of(path, job_logs)
        if log and Path(log).is_file():
            links["log"] = log
        for name in RUN_FILES:
            if (Path(folder) / name).is_file():
                links[name] = str(Path(folder) / name)
        out.append({"name": os.path.relpath(path, results_root) if path.startswith(results_root) else path,
                    "path": path, "links": links})
    return out
