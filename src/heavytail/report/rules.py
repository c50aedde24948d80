"""The verdict rules: each compares measured groups and says reproduced, not reproduced or inconclusive.

Every directional decision is a one-sided test at LEVEL (95 %): the two-sided (2 LEVEL - 1) interval of the
oriented difference (> 0 favours the claim) lying above 0 reproduces, below 0 does not, across 0 is inconclusive.
Where the interval comes from, per rule:
  seeds   Student t on the seeds: paired by seed when both groups ran the same seeds, else Welch. A group with a
          single run borrows the seed spread pooled over the other groups of the claim that have >= 2 runs
          (same part first, then the whole claim); with no such group, the difference must be at least the
          paper's reported precision (one unit of the last printed digit), else inconclusive.
  interval, change, level, tolerance: the interval each estimate carries (tail index: bootstrap over noise
          samples; theory slopes: bootstrap over seeds); an estimate without one is compared as a point.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from heavytail.report.outcomes import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

LEVEL = 0.95  # one-sided confidence of every directional decision
BAD_STATUS = ("diverged", "error")


def sign_of(better: str) -> float:
    if better not in ("lower", "higher"):
        raise ValueError(f"reports/paper.yaml: comparison.better must be lower or higher (got {better!r})")
    return -1.0 if better == "lower" else 1.0


def finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _decide(lo: float, hi: float) -> str:
    return REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else INCONCLUSIVE


# --- seeds --------------------------------------------------------------------------------------------------------
def _bad(group: pd.DataFrame, metric: str) -> pd.Series:
    values = pd.to_numeric(group[metric], errors="coerce").astype(float)
    bad = ~np.isfinite(values)
    if "status" in group.columns:
        bad |= group["status"].astype(str).isin(BAD_STATUS)
    return bad


def penalise_diverged(a: pd.DataFrame, b: pd.DataFrame, metric: str, better: str) -> tuple[pd.Series, pd.Series]:
    """Values with diverged (or non-finite) runs replaced by a value worse than every finished run."""
    values = pd.concat([a[metric], b[metric]]).astype(float)
    ok = values[np.isfinite(values)]
    if ok.empty:
        worst = math.nan
    else:
        spread = float(ok.max() - ok.min()) or max(abs(float(ok.mean())), 1.0)
        worst = float(ok.max()) + spread if better == "lower" else float(ok.min()) - spread

    def fix(group: pd.DataFrame) -> pd.Series:
        out = pd.to_numeric(group[metric], errors="coerce").astype(float).copy()
        out[_bad(group, metric)] = worst
        return out

    return fix(a), fix(b)


def pooled_spread(frame: pd.DataFrame, metric: str, keys: list[str]) -> dict | None:
    """Seed standard deviation pooled over the groups (by `keys`) with >= 2 finished runs: {sd, df, groups}."""
    if frame.empty or metric not in frame.columns:
        return None
    ok = frame[~_bad(frame, metric)]
    keys = [k for k in keys if k in ok.columns]
    groups = ok.groupby(keys, dropna=False)[metric] if keys else [((), ok[metric])]
    sum_sq, df, used = 0.0, 0, 0
    for _, values in groups:
        values = values.astype(float)
        if len(values) >= 2:
            sum_sq += float(((values - values.mean()) ** 2).sum())
            df += len(values) - 1
            used += 1
    return {"sd": math.sqrt(sum_sq / df), "df": df, "groups": used} if df else None


def _t_half(se: float, df: float) -> float:
    return 0.0 if se == 0 else float(stats.t.ppf(LEVEL, df)) * se


def compare_seeds(a: pd.DataFrame, b: pd.DataFrame, metric: str, better: str, replicate: str = "seed",
                  spread: dict | None = None, precision: float | None = None,
                  precision_is: str = "the paper's reported precision") -> dict:
    """The seeds rule for one metric: verdict, oriented difference (a better > 0), interval, counts, notes."""
    sign = sign_of(better)
    if a.empty or b.empty or metric not in a.columns or metric not in b.columns:
        return {"verdict": NOT_RUN, "n_a": len(a), "n_b": len(b), "note": "no runs in one of the groups"}
    notes = []
    losing = [f"{r.get('optimizer', 'a')} {replicate} {r.get(replicate)}" for _, r in pd.concat([a, b]).iterrows()
              if str(r.get("status", "ok")) in BAD_STATUS or not finite(r.get(metric))]
    if losing:
        notes.append("counted as losing (diverged or no value): " + ", ".join(losing))
    va, vb = penalise_diverged(a, b, metric, better)
    if not np.isfinite(pd.concat([va, vb])).any():
        return {"verdict": INCONCLUSIVE, "n_a": len(a), "n_b": len(b), "note": "every run diverged"}
    na, nb = len(va), len(vb)
    diff = float(sign * (va.mean() - vb.mean()))
    out = {"n_a": na, "n_b": nb, "mean_a": float(va.mean()), "mean_b": float(vb.mean()), "difference": diff,
           "single_seed": na < 2 or nb < 2}
    keys_a = list(a[replicate]) if replicate in a.columns else None
    keys_b = list(b[replicate]) if replicate in b.columns else None
    paired = (na >= 2 and keys_a is not None and keys_b is not None and sorted(keys_a) == sorted(keys_b)
              and len(set(keys_a)) == na)
    if paired:
        by_key = dict(zip(keys_b, vb, strict=True))
        d = sign * (va.to_numpy() - np.array([by_key[k] for k in keys_a]))
        se, df = float(d.std(ddof=1) / math.sqrt(na)), na - 1
        notes.insert(0, f"paired t over {na} seeds")
    elif na >= 2 and nb >= 2:
        qa, qb = float(va.var(ddof=1)) / na, float(vb.var(ddof=1)) / nb
        se = math.sqrt(qa + qb)
        df = (qa + qb) ** 2 / (qa ** 2 / (na - 1) + qb ** 2 / (nb - 1)) if se > 0 else math.inf
        notes.insert(0, f"Welch t over {na} and {nb} seeds")
    elif spread:
        se, df = spread["sd"] * math.sqrt(1 / na + 1 / nb), spread["df"]
        notes.insert(0, f"single seed: seed spread {spread['sd']:.3g} borrowed from {spread['groups']} group(s) "
                        f"with >= 2 seeds (df {spread['df']})")
    elif precision:
        # printed values one unit of their last digit apart are ordered whatever the rounding (same for a grid)
        resolved = abs(diff) >= precision * (1 - 1e-9)
        verdict = INCONCLUSIVE if not resolved else REPRODUCED if diff > 0 else NOT_REPRODUCED
        notes.insert(0, f"single seed and no seed spread: decided at {precision_is} {precision:g}")
        return {**out, "verdict": verdict, "paired": False, "precision": float(precision), "note": "; ".join(notes)}
    else:
        notes.insert(0, f"single seed, no seed spread and no reported precision for {metric}")
        return {**out, "verdict": INCONCLUSIVE, "paired": False, "note": "; ".join(notes)}
    half = _t_half(se, df)
    lo, hi = diff - half, diff + half
    return {**out, "verdict": _decide(lo, hi), "lo": lo, "hi": hi, "paired": paired, "note": "; ".join(notes)}


def steps_to_level(a: pd.DataFrame, b: pd.DataFrame, better: str, run_keys: list[str]) -> tuple:
    """Per run: the first validation step at which the curve reaches the level both groups reach on average.

    The level is the worse of the two groups' mean best value, so that the slower group reaches it on average;
    a run that never reaches it gets no value (it counts as losing). Returns (a runs, b runs, level, resolution),
    resolution being the widest gap between consecutive evaluations (the rule's precision for single seeds).
    """
    keys = [k for k in run_keys if k in a.columns and k in b.columns]

    def best(group: pd.DataFrame) -> pd.Series:
        runs = group.groupby(keys, dropna=False)["value"]
        return runs.min() if better == "lower" else runs.max()

    if a.empty or b.empty:
        return a.iloc[0:0], b.iloc[0:0], math.nan, None
    best_a, best_b = best(a), best(b)
    level = max(best_a.mean(), best_b.mean()) if better == "lower" else min(best_a.mean(), best_b.mean())

    def reach(group: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for key, run in group.sort_values("step").groupby(keys, dropna=False):
            hit = run[run["value"] <= level] if better == "lower" else run[run["value"] >= level]
            rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
                         "steps_to_level": float(hit["step"].iloc[0]) if len(hit) else math.nan,
                         "status": "ok" if len(hit) else "never reached"})
        return pd.DataFrame(rows)

    gaps = [float(np.diff(np.sort(run["step"].unique())).max()) for _, run in pd.concat([a, b]).groupby(keys)
            if run["step"].nunique() > 1]
    return reach(a), reach(b), float(level), (max(gaps) if gaps else None)


# --- one estimate with its own interval per group -----------------------------------------------------------------
def envelope(rows: pd.DataFrame, metric: str, interval: tuple[str, str] | None = None) -> tuple | None:
    """(mean estimate, lowest lo, highest hi) of the rows; without interval columns lo = hi = the estimate."""
    if rows.empty or metric not in rows.columns:
        return None
    values = pd.to_numeric(rows[metric], errors="coerce").astype(float)
    if not np.isfinite(values).any():
        return None
    value = float(values[np.isfinite(values)].mean())
    lo_col, hi_col = interval or (f"{metric}_lo", f"{metric}_hi")
    lo = float(pd.to_numeric(rows[lo_col], errors="coerce").min()) if lo_col in rows.columns else math.nan
    hi = float(pd.to_numeric(rows[hi_col], errors="coerce").max()) if hi_col in rows.columns else math.nan
    return value, (lo if math.isfinite(lo) else value), (hi if math.isfinite(hi) else value)


def compare_intervals(a: pd.DataFrame, b: pd.DataFrame, metric: str, better: str,
                      interval: tuple[str, str] | None = None) -> dict:
    """The interval rule: a's interval entirely on the claimed side of b's."""
    ea, eb = envelope(a, metric, interval), envelope(b, metric, interval)
    if ea is None or eb is None:
        return {"verdict": NOT_RUN, "n_a": len(a), "n_b": len(b), "note": "no measurement in one of the groups"}
    (va, lo_a, hi_a), (vb, lo_b, hi_b) = ea, eb
    a_better = hi_a < lo_b if better == "lower" else lo_a > hi_b
    b_better = lo_a > hi_b if better == "lower" else hi_a < lo_b
    verdict = REPRODUCED if a_better else NOT_REPRODUCED if b_better else INCONCLUSIVE
    return {"verdict": verdict, "n_a": len(a), "n_b": len(b), "mean_a": va, "mean_b": vb,
            "difference": sign_of(better) * (va - vb), "interval_a": [lo_a, hi_a], "interval_b": [lo_b, hi_b],
            "note": ""}


def change_of(rows: pd.DataFrame, metric: str, step: str = "step") -> int | None:
    """+1 / -1: the last checkpoint's interval lies above / below the first's; 0: they overlap; None: < 2 steps."""
    if rows.empty or step not in rows.columns or rows[step].nunique() < 2:
        return None
    steps = sorted(rows[step].unique())
    first, last = envelope(rows[rows[step] == steps[0]], metric), envelope(rows[rows[step] == steps[-1]], metric)
    if first is None or last is None:
        return None
    return 1 if last[1] > first[2] else -1 if last[2] < first[1] else 0


def change_interval(rows: pd.DataFrame, metric: str, step: str = "step") -> list[float] | None:
    """[last - first, lowest, highest] difference the first and last checkpoints' intervals allow."""
    if rows.empty or step not in rows.columns or rows[step].nunique() < 2:
        return None
    steps = sorted(rows[step].unique())
    first, last = envelope(rows[rows[step] == steps[0]], metric), envelope(rows[rows[step] == steps[-1]], metric)
    if first is None or last is None:
        return None
    return [last[0] - first[0], last[1] - first[2], last[2] - first[1]]


def compare_change(a: pd.DataFrame, b: pd.DataFrame, metric: str, direction: str | None = None) -> dict:
    """The change rule: a changes between its first and last checkpoint (in `direction`), b stays."""
    ca, cb = change_of(a, metric), change_of(b, metric)
    if ca is None or cb is None:
        return {"verdict": NOT_RUN, "n_a": len(a), "n_b": len(b), "note": "needs >= 2 checkpoints in each group"}
    want = {"increase": 1, "decrease": -1, None: None}[direction]
    a_right = ca == want if want else ca != 0
    a_wrong = ca == -want if want else False
    if a_wrong or cb != 0:
        verdict = NOT_REPRODUCED
    else:
        verdict = REPRODUCED if a_right else INCONCLUSIVE
    words = {1: "increases", -1: "decreases", 0: "stays"}
    return {"verdict": verdict, "n_a": len(a), "n_b": len(b), "direction": direction,
            "change_a": change_interval(a, metric), "change_b": change_interval(b, metric),
            "note": f"a {words[ca]}{f' (claimed: {direction}s)' if direction else ''}, b {words[cb]}"}


def level_of(rows: pd.DataFrame, level: float | str | None) -> float | None:
    """A level: a number, or the name of a column the rows carry (e.g. the Gaussian reference of their own
    estimator, `gaussian_tail_index_lo`), read as its mean."""
    if isinstance(level, str):
        return float(pd.to_numeric(rows[level], errors="coerce").mean()) if level in rows.columns else math.nan
    return level


def compare_level(rows: pd.DataFrame, metric: str, above: float | str | None = None,
                  below: float | str | None = None, interval: tuple[str, str] | None = None) -> dict:
    """The level rule: the estimate's interval entirely above `above` (or below `below`)."""
    named = below if below is not None else above
    above, below = level_of(rows, above), level_of(rows, below)
    est = envelope(rows, metric, interval)
    if est is None or not finite(below if below is not None else above):
        return {"verdict": NOT_RUN, "n_a": len(rows), "note": "no measurement"}
    value, lo, hi = est
    if below is not None:
        verdict, claimed = (REPRODUCED if hi < below else NOT_REPRODUCED if lo >= below else INCONCLUSIVE,
                            f"claimed below {below:g}")
    else:
        verdict, claimed = (REPRODUCED if lo > above else NOT_REPRODUCED if hi <= above else INCONCLUSIVE,
                            f"claimed above {above:g}")
    point = lo == hi == value
    if isinstance(named, str):
        claimed += f" ({named})"
    return {"verdict": verdict, "n_a": len(rows), "mean_a": value, "lo": lo, "hi": hi,
            "level": float(below if below is not None else above), "side": "below" if below is not None else "above",
            "note": claimed + ("; no interval: compared as a point" if point else "")}


def compare_tolerance(rows: pd.DataFrame, metric: str, target, tolerance: float,
                      interval: tuple[str, str] | None = None, one_sided: str | None = None) -> dict:
    """The tolerance rule: the value within `tolerance` of the target (one_sided upper: at most target + tolerance)."""
    est = envelope(rows, metric, interval)
    if isinstance(target, str):
        goal = float(pd.to_numeric(rows[target], errors="coerce").mean()) if target in rows.columns else math.nan
    else:
        goal = float(target)
    if est is None or not finite(goal):
        return {"verdict": NOT_RUN, "n_a": len(rows), "note": f"no finite {metric} or target"}
    value, lo, hi = est
    top = goal + tolerance
    if one_sided == "upper":
        verdict = REPRODUCED if value <= top else NOT_REPRODUCED if lo > top else INCONCLUSIVE
        band = f"target at most {top:.4g} (bound {goal:.4g} + {tolerance:g})"
    else:
        inside = abs(value - goal) <= tolerance
        verdict = REPRODUCED if inside else NOT_REPRODUCED if hi < goal - tolerance or lo > top else INCONCLUSIVE
        band = f"target {goal:.4g} +- {tolerance:g}"
    return {"verdict": verdict, "n_a": len(rows), "mean_a": value, "mean_b": goal, "difference": value - goal,
            "lo": lo, "hi": hi, "tolerance": tolerance, "one_sided": one_sided, "note": band}


def compare_bound(rows: pd.DataFrame, metrics: list[str], lower: float, upper: float) -> dict:
    """The bound rule: every value of every metric inside [lower, upper] (deterministic)."""
    if rows.empty or not all(m in rows.columns for m in metrics):
        return {"verdict": NOT_RUN, "n_a": len(rows), "note": "no measurement"}
    values = rows[metrics].astype(float).to_numpy().ravel()
    inside = bool(np.all((values >= lower) & (values <= upper)))
    return {"verdict": REPRODUCED if inside else NOT_REPRODUCED, "n_a": len(rows), "lo": float(values.min()),
            "hi": float(values.max()), "lower": float(lower), "upper": float(upper),
            "note": f"measured {values.min():.4g} to {values.max():.4g}; claimed range [{lower:g}, {upper:g}]"}
