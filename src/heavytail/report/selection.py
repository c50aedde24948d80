"""Rows of an aggregated table by a claim's filters (fnmatch patterns, numbers, lists, {not: ...}), and grids."""

from __future__ import annotations

import fnmatch
import math

import pandas as pd


def _matches(value, pattern) -> bool:
    if isinstance(pattern, list):
        return any(_matches(value, p) for p in pattern)
    if isinstance(pattern, dict) and "not" in pattern:
        return not _matches(value, pattern["not"])
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(pattern, int | float) and not isinstance(pattern, bool):
        try:
            return float(value) == float(pattern)
        except (TypeError, ValueError):
            return False
    return fnmatch.fnmatch(str(value).lower(), str(pattern).lower())


def select(frame: pd.DataFrame, spec: dict | None) -> pd.DataFrame:
    """Rows whose columns match every filter of `spec`; a filter on a missing column matches nothing."""
    if frame.empty:
        return frame
    mask = pd.Series(True, index=frame.index)
    for column, pattern in (spec or {}).items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        values = frame[column]
        hit = values.isin([v for v in values.dropna().unique() if _matches(v, pattern)])
        mask &= hit | (values.isna() & _matches(None, pattern))  # a missing value matches only {not: ...}
    return frame[mask]


def snap(frame: pd.DataFrame, grid: dict | None) -> pd.DataFrame:
    """Columns rounded to a grid (checkpoints at 0.098 and 0.1 of training are the same checkpoint)."""
    if not grid or frame.empty:
        return frame
    out = frame.copy()
    for column, step in grid.items():
        if column in out.columns:
            out[column] = (pd.to_numeric(out[column], errors="coerce") / step).round() * step
            out[column] = out[column].round(6)
    return out
