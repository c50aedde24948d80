"""Each claim of reports/paper.yaml -> reproduced / not reproduced / inconclusive, by a stated mechanical rule.

The rules (RULES below is what the report prints):
- seeds: one value per run. Diverged runs lose: their value becomes the worst finite value of the comparison
  plus the spread of the finite values, so they rank below every finished run. With >= 2 runs per group, a
  percentile bootstrap (2000 resamples, seeded) of the mean difference, oriented so that > 0 favours the claim;
  paired by seed when both groups ran the same seeds. The 95 % interval above 0 -> reproduced, below 0 -> not
  reproduced, else inconclusive. With 1 run in a group ("single seed"): the difference favours the claim by more
  than 1 % of |mean of b| -> reproduced, disfavours it by more -> not reproduced, else inconclusive.
- interval: one estimate with its own interval (lo, hi) per group; disjoint intervals decide, overlap is
  inconclusive.
- change: group a's intervals at its first and last step are disjoint (it changes) while group b's overlap (it
  stays) -> reproduced; the opposite -> not reproduced; else inconclusive.
- tolerance: |value - target| <= tolerance -> reproduced; the value's interval entirely outside target +- tolerance
  -> not reproduced; else inconclusive.
- bound: every value in [lower, upper] -> reproduced, else not reproduced (deterministic).
With `per`, a claim is judged per value of those columns and combined: require all (default) -> every part
reproduced is reproduced, any part not reproduced is not reproduced; require any -> any part reproduced is
reproduced, all parts not reproduced is not reproduced. No matching data -> "not run".
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
BOOTSTRAP_SAMPLES, LEVEL, SINGLE_SEED_MARGIN = 2000, 0.95, 0.01
RULES = {key: " ".join(text.split()) for key, text in (line.split(":", 1) for line in (
    "seeds: percentile bootstrap (2000 resamples) of the mean difference between the groups over seeds, paired "
    "by seed where both groups ran the same seeds; the 95 % interval excluding 0 in the claimed direction means "
    "reproduced, in the other direction not reproduced, otherwise inconclusive. Single seed: a difference of more "
    "than 1 % of the reference group's mean decides, otherwise inconclusive. Diverged runs lose to every "
    "finished run.",
    "interval: each group's estimate carries its own interval (tail index: bootstrap over noise samples); "
    "disjoint intervals in the claimed order mean reproduced, in the other order not reproduced, overlap "
    "inconclusive.",
    "change: a group changes when its intervals at the first and last checkpoint are disjoint; reproduced when "
    "the first group changes and the second does not, not reproduced for the opposite, otherwise inconclusive.",
    "tolerance: measured value within the stated tolerance of the theory means reproduced; its interval "
    "entirely outside the tolerance band means not reproduced; otherwise inconclusive.",
    "bound: every measured value inside the claimed bounds means reproduced, otherwise not reproduced.",
))}
DEFAULT_PAPER = Path(__file__).resolve().parents[3] / "reports" / "paper.yaml"


def load_paper(path: str | Path = DEFAULT_PAPER) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


# --- selecting rows -------------------------------------------------------------------------------------------
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
        mask &= frame[column].map(lambda v, p=pattern: _matches(v, p))
    return frame[mask]


# --- the rules -------------------------------------------------------------------------------------------------
def _sign(better: str) -> float:
    if better not in ("lower", "higher"):
        raise ValueError(f"reports/paper.yaml: comparison.better must be lower or higher (got {better!r})")
    return -1.0 if better == "lower" else 1.0


def penalise_diverged(a: pd.DataFrame, b: pd.DataFrame, metric: str, better: str) -> tuple[pd.Series, pd.Series]:
    """Values with diverged (or non-finite) runs replaced by a value worse than every finished run."""
    values = pd.concat([a[metric], b[metric]]).astype(float)
    finite = values[np.isfinite(values)]
    if finite.empty:
        worst = math.nan
    else:
        spread = float(finite.max() - finite.min()) or max(abs(float(finite.mean())), 1.0)
        worst = float(finite.max()) + spread if better == "lower" else float(finite.min()) - spread

    def fix(group: pd.DataFrame) -> pd.Series:
        out = group[metric].astype(float).copy()
        bad = ~np.isfinite(out)
        if "status" in group.columns:
            bad |= group["status"].astype(str).isin(["diverged", "error"])
        out[bad] = worst
        return out

    return fix(a), fix(b)


def bootstrap_interval(diffs_a: np.ndarray, diffs_b: np.ndarray | None, paired: bool,
                       n_boot: int = BOOTSTRAP_SAMPLES, level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b) (or of mean(a) when paired: `diffs_a` holds the differences)."""
    rng = np.random.default_rng(seed)
    a = np.asarray(diffs_a, dtype=float)
    if paired:
        stats = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(axis=1)
    else:
        b = np.asarray(diffs_b, dtype=float)
        stats = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(axis=1)
                 - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(axis=1))
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def compare_seeds(a: pd.DataFrame, b: pd.DataFrame, metric: str, better: str, replicate: str = "seed") -> dict:
    """The seeds rule for one metric: verdict, oriented difference (a better > 0), interval, counts, notes."""
    sign = _sign(better)
    if a.empty or b.empty or metric not in a.columns:
        return {"verdict": NOT_RUN, "n_a": len(a), "n_b": len(b), "note": "no runs in one of the groups"}
    notes = []
    diverged = [f"{r.get('optimizer', 'a')} seed {r.get(replicate)}" for _, r in pd.concat([a, b]).iterrows()
                if str(r.get("status", "ok")) in ("diverged", "error") or not _finite(r.get(metric))]
    if diverged:
        notes.append("counted as losing (diverged or no value): " + ", ".join(diverged))
    va, vb = penalise_diverged(a, b, metric, better)
    if len(va) and len(vb) and not np.isfinite(pd.concat([va, vb])).any():
        return {"verdict": INCONCLUSIVE, "n_a": len(a), "n_b": len(b), "note": "every run diverged"}
    diff = sign * (va.mean() - vb.mean())
    out = {"n_a": len(va), "n_b": len(vb), "mean_a": float(va.mean()), "mean_b": float(vb.mean()),
           "difference": float(diff)}
    if len(va) < 2 or len(vb) < 2:
        margin = SINGLE_SEED_MARGIN * abs(float(vb.mean()))
        verdict = REPRODUCED if diff > margin else NOT_REPRODUCED if diff < -margin else INCONCLUSIVE
        notes.insert(0, "single seed")
        return {**out, "verdict": verdict, "single_seed": True, "note": "; ".join(notes)}
    keys_a, keys_b = (list(a[replicate]) if replicate in a.columns else None,
                      list(b[replicate]) if replicate in b.columns else None)
    paired = keys_a is not None and keys_b is not None and sorted(keys_a) == sorted(keys_b) \
        and len(set(keys_a)) == len(keys_a)
    if paired:
        vb_by_key = dict(zip(keys_b, vb, strict=True))
        diffs = sign * (va.to_numpy() - np.array([vb_by_key[k] for k in keys_a]))
        lo, hi = bootstrap_interval(diffs, None, paired=True)
    else:
        lo, hi = bootstrap_interval(sign * va.to_numpy(), sign * vb.to_numpy(), paired=False)
    verdict = REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else INCONCLUSIVE
    return {**out, "verdict": verdict, "lo": lo, "hi": hi, "paired": paired, "single_seed": False,
            "note": "; ".join(notes)}


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _envelope(rows: pd.DataFrame, metric: str) -> tuple[float, float, float] | None:
    """(mean estimate, lowest lo, highest hi) of the rows: a conservative interval over repeated measurements."""
    if rows.empty or metric not in rows.columns:
        return None
    lo_col, hi_col = f"{metric}_lo", f"{metric}_hi"
    value = float(rows[metric].astype(float).mean())
    lo = float(rows[lo_col].astype(float).min()) if lo_col in rows.columns else value
    hi = float(rows[hi_col].astype(float).max()) if hi_col in rows.columns else value
    return value, (lo if math.isfinite(lo) else value), (hi if math.isfinite(hi) else value)


def compare_intervals(a: pd.DataFrame, b: pd.DataFrame, metric: str, better: str) -> dict:
    """The interval rule: a's interval entirely on the claimed side of b's."""
    ea, eb = _envelope(a, metric), _envelope(b, metric)
    if ea is None or eb is None:
        return {"verdict": NOT_RUN, "n_a": len(a), "n_b": len(b), "note": "no measurement in one of the groups"}
    (va, lo_a, hi_a), (vb, lo_b, hi_b) = ea, eb
    a_better = hi_a < lo_b if better == "lower" else lo_a > hi_b
    b_better = lo_a > hi_b if better == "lower" else hi_a < lo_b
    verdict = REPRODUCED if a_better else NOT_REPRODUCED if b_better else INCONCLUSIVE
    return {"verdict": verdict, "n_a": len(a), "n_b": len(b), "mean_a": va, "mean_b": vb,
            "difference": _sign(better) * (va - vb), "interval_a": [lo_a, hi_a], "interval_b": [lo_b, hi_b],
            "note": ""}


def _changes(rows: pd.DataFrame, metric: str, step: str = "step") -> bool | None:
    if rows.empty or step not in rows.columns or rows[step].nunique() < 2:
        return None
    steps = sorted(rows[step].unique())
    first, last = _envelope(rows[rows[step] == steps[0]], metric), _envelope(rows[rows[step] == steps[-1]], metric)
    return first[2] < last[1] or last[2] < first[1]


def compare_change(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> dict:
    """The change rule: a's first and last checkpoints disjoint, b's overlapping."""
    ca, cb = _changes(a, metric), _changes(b, metric)
    if ca is None or cb is None:
        return {"verdict": NOT_RUN, "n_a": len(a), "n_b": len(b), "note": "needs >= 2 checkpoints in each group"}
    verdict = REPRODUCED if ca and not cb else NOT_REPRODUCED if cb and not ca else INCONCLUSIVE
    return {"verdict": verdict, "n_a": len(a), "n_b": len(b),
            "note": f"a {'changes' if ca else 'stays'}, b {'changes' if cb else 'stays'}"}


def compare_tolerance(rows: pd.DataFrame, metric: str, target: str, tolerance: float,
                      interval: tuple[str, str] | None = None) -> dict:
    """The tolerance rule on the mean of the rows, with the widest interval of the rows."""
    if rows.empty or metric not in rows.columns or target not in rows.columns:
        return {"verdict": NOT_RUN, "n_a": len(rows), "note": "no measurement"}
    lo_col, hi_col = interval or (f"{metric}_lo", f"{metric}_hi")
    value = float(rows[metric].astype(float).mean())
    lo = float(rows[lo_col].astype(float).min()) if lo_col in rows.columns else math.nan
    hi = float(rows[hi_col].astype(float).max()) if hi_col in rows.columns else math.nan
    goal = float(rows[target].astype(float).mean())
    if not (_finite(value) and _finite(goal)):
        return {"verdict": NOT_RUN, "n_a": len(rows), "note": f"no finite {metric} or {target}"}
    has_interval = _finite(lo) and _finite(hi)
    if abs(value - goal) <= tolerance:
        verdict = REPRODUCED
    elif not has_interval or hi < goal - tolerance or lo > goal + tolerance:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return {"verdict": verdict, "n_a": len(rows), "mean_a": value, "mean_b": goal, "difference": value - goal,
            "lo": lo, "hi": hi, "note": f"target {goal:.4g} +- {tolerance:g}"}


def compare_bound(rows: pd.DataFrame, metrics: list[str], lower: float, upper: float) -> dict:
    """The bound rule: every value of every metric inside [lower, upper]."""
    if rows.empty or not all(m in rows.columns for m in metrics):
        return {"verdict": NOT_RUN, "n_a": len(rows), "note": "no measurement"}
    values = rows[metrics].astype(float).to_numpy().ravel()
    inside = bool(np.all((values >= lower) & (values <= upper)))
    return {"verdict": REPRODUCED if inside else NOT_REPRODUCED, "n_a": len(rows),
            "note": f"measured {', '.join(f'{m} {rows[m].astype(float).min():.4g}' for m in metrics)}; "
                    f"claimed range [{lower:g}, {upper:g}]"}


# --- claims ----------------------------------------------------------------------------------------------------
def combine(parts: list[dict], require: str = "all") -> str:
    verdicts = [p["verdict"] for p in parts if p["verdict"] != NOT_RUN]
    if not verdicts:
        return NOT_RUN
    if require == "any":
        return REPRODUCED if REPRODUCED in verdicts else NOT_REPRODUCED \
            if all(v == NOT_REPRODUCED for v in verdicts) else INCONCLUSIVE
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else REPRODUCED \
        if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


def _parts(frame: pd.DataFrame, per: list[str]) -> list[tuple[str, pd.DataFrame]]:
    per = [c for c in per if c in frame.columns and frame[c].notna().any()]
    if not per or frame.empty:
        return [("", frame)]
    return [(", ".join(f"{c}={v}" for c, v in zip(per, key if isinstance(key, tuple) else (key,), strict=True)), g)
            for key, g in frame.groupby(per, dropna=False, sort=True)]


def judge_claim(claim: dict, tables: dict[str, pd.DataFrame], scale: str) -> dict:
    """One claim's verdict at `scale`, with every part's evidence."""
    comp = claim["comparison"]
    kind = comp.get("kind", "seeds")
    frame = select(tables.get(comp["table"], pd.DataFrame()), comp.get("filter"))
    metrics = comp["metric"] if isinstance(comp["metric"], list) else [comp["metric"]]
    parts = []
    if kind == "bound":
        parts.append({"part": "", "metric": ", ".join(metrics),
                      **compare_bound(frame, metrics, comp["lower"], comp["upper"])})
    for label, group in ([] if kind == "bound" else _parts(frame, comp.get("per", []))):
        for metric in metrics:
            a, b = select(group, comp.get("a")), select(group, comp.get("b"))
            if kind == "seeds":
                result = compare_seeds(a, b, metric, comp.get("better", "lower"), comp.get("replicate", "seed"))
            elif kind == "interval":
                result = compare_intervals(a, b, metric, comp.get("better", "lower"))
            elif kind == "change":
                result = compare_change(a, b, metric)
            elif kind == "tolerance":
                result = compare_tolerance(group, metric, comp["target"], float(comp["tolerance"]),
                                           comp.get("interval"))
            else:
                raise ValueError(f"reports/paper.yaml: claim {claim['id']}: unknown comparison kind {kind!r}")
            parts.append({"part": label, "metric": metric, **result})
    verdict = combine(parts, comp.get("require", "all"))
    single = any(p.get("single_seed") for p in parts if p["verdict"] != NOT_RUN)
    return {"id": claim["id"], "sentence": claim["sentence"], "where": claim.get("where", ""),
            "figure": claim.get("figure", ""), "kind": kind, "scale": scale, "verdict": verdict,
            "single_seed": single, "rule": RULES[kind], "parts": parts,
            "label": f"{verdict}{' (single seed)' if single else ''} at {scale} scale"}


def judge_all(paper: dict, tables: dict[str, pd.DataFrame], scale: str) -> list[dict]:
    return [judge_claim(claim, tables, scale) for claim in paper.get("claims", [])]


def verdict_table(verdicts: list[dict]) -> pd.DataFrame:
    """One row per claim (for results/<scale>/tables/verdicts.csv)."""
    return pd.DataFrame([{k: v[k] for k in ("id", "scale", "verdict", "single_seed", "kind", "figure", "sentence")}
                         for v in verdicts])
