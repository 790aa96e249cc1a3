"""Statistics for multi-seed ablations: t intervals, paired bootstrap deltas, Pareto fronts, EDFs.

Pure functions over numpy arrays and pandas tables; scipy is not a dependency, so the Student-t
quantile is computed here from the regularized incomplete beta function.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Metrics where a smaller value is the better one (the verdict words flip for them).
LOWER_IS_BETTER = ("test_nll", "test_ece", "train_loss", "train_time_s")

#: Final metrics summarized when present, in report order.
DEFAULT_METRICS = ("test_top1", "test_top5", "val_top1", "test_nll", "test_ece")

#: Exact sign-flip enumeration up to this many sign vectors, Monte Carlo beyond.
MAX_EXACT_FLIPS = 100_000
# a percentile bootstrap over 3 seeds covers about 75%, not 95%: below this many values the
# "bootstrap" columns carry the t interval instead
MIN_BOOTSTRAP = 10


# --- Student t ----------------------------------------------------------------------------------


def t_cdf(t: float, df: float) -> float:
    """Student-t cumulative distribution function (scipy)."""
    return float(stats.t.cdf(t, df))


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile (inverse CDF, scipy)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    return float(stats.t.ppf(p, df))


# --- intervals ---------------------------------------------------------------------------------


def _finite(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def mean_ci(
    values: Sequence[float] | np.ndarray | pd.Series, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval (NaN bounds for fewer than two finite values)."""
    x = _finite(values)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if x.size < 2:
        return (mean, math.nan, math.nan)
    half = t_quantile(0.5 + level / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return (mean, mean - half, mean + half)


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of a variant against its baseline over shared seeds (diff = a - b)."""

    n: int
    mean_diff: float
    ci_lo: float  # percentile bootstrap of the mean difference (the t interval below 10 pairs)
    ci_hi: float
    t_lo: float  # paired Student-t interval; with few seeds the bootstrap one is too narrow
    t_hi: float
    p_value: float  # two-sided sign-flip permutation test of the mean difference
    verdict: str  # "better" | "worse" | "inconclusive" (of a relative to b)


def sign_flip_p(diffs: Sequence[float] | np.ndarray, *, n_mc: int = 10000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of the mean paired difference."""
    d = _finite(diffs)
    n = d.size
    if n == 0:
        return math.nan
    observed = abs(d.sum())
    # Tolerance so ties with the observed statistic (e.g. the identity flip) count as extreme.
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    if 2**n <= MAX_EXACT_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float(np.mean(np.abs(signs @ d) >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_mc, n))
    extreme = int(np.sum(np.abs(signs @ d) >= observed - tol))
    return (extreme + 1) / (n_mc + 1)  # +1: the observed labelling is one of the permutations


def verdict_from_ci(lo: float, hi: float, *, higher_is_better: bool = True) -> str:
    """ "better" when the interval lies above zero, "worse" below it, else "inconclusive"."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if lo > 0:
        return "better" if higher_is_better else "worse"
    if hi < 0:
        return "worse" if higher_is_better else "better"
    return "inconclusive"


def paired_diff(
    a: Sequence[float] | np.ndarray | pd.Series,
    b: Sequence[float] | np.ndarray | pd.Series,
    *,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    higher_is_better: bool = True,
) -> PairedResult:
    """Paired bootstrap and t intervals, sign-flip p-value and verdict for a - b.

    The verdict needs both intervals on the same side of zero: the percentile bootstrap never
    reaches past the smallest observed difference, so with 3 seeds it alone would call "better"
    whenever all three differences are positive (1 chance in 8 under no effect).
    """
    av, bv = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if av.shape != bv.shape:
        raise ValueError(f"paired_diff needs equal lengths, got {av.size} and {bv.size}")
    d = av - bv
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return PairedResult(
            n, mean, math.nan, math.nan, math.nan, math.nan, math.nan, "inconclusive"
        )
    mean, t_lo, t_hi = mean_ci(d, level)
    lo, hi = t_lo, t_hi
    if n >= MIN_BOOTSTRAP:
        rng = np.random.default_rng(seed)
        boot = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
        alpha = 1.0 - level
        lo, hi = (float(v) for v in np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0]))
    v_boot = verdict_from_ci(lo, hi, higher_is_better=higher_is_better)
    v_t = verdict_from_ci(t_lo, t_hi, higher_is_better=higher_is_better)
    verdict = v_boot if v_boot == v_t else "inconclusive"
    p = sign_flip_p(d, n_mc=n_boot, seed=seed)
    return PairedResult(n, mean, lo, hi, t_lo, t_hi, p, verdict)


@dataclass(frozen=True)
class SlopeResult:
    """Least-squares slope of y on x with two intervals over clusters (seeds)."""

    slope: float
    ci_lo: float  # cluster bootstrap: whole seeds resampled
    ci_hi: float
    t_lo: float  # Student-t over per-seed slopes; honest with few seeds
    t_hi: float
    r: float  # Pearson correlation over all points
    n_points: int
    n_clusters: int

    @property
    def lo(self) -> float:
        """Lower bound of the union of both intervals (what verdicts use)."""
        return min(self.ci_lo, self.t_lo)

    @property
    def hi(self) -> float:
        """Upper bound of the union of both intervals."""
        return max(self.ci_hi, self.t_hi)


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    dx = x - x.mean()
    return float(dx @ (y - y.mean()) / (dx @ dx))


def bootstrap_slope(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    clusters: Sequence[object] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> SlopeResult:
    """Slope of y on x; intervals resample whole seeds so paired runs move together."""
    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    cl = np.asarray(clusters, dtype=object)
    keep = np.isfinite(xv) & np.isfinite(yv)
    xv, yv, cl = xv[keep], yv[keep], cl[keep]
    ids = list(dict.fromkeys(cl.tolist()))
    nan = math.nan
    if xv.size < 3 or np.unique(xv).size < 2:
        return SlopeResult(nan, nan, nan, nan, nan, nan, int(xv.size), len(ids))
    slope = _ols_slope(xv, yv)
    r = float(np.corrcoef(xv, yv)[0, 1]) if np.std(yv) > 0 else nan
    members = [np.flatnonzero(cl == c) for c in ids]
    per_seed = [_ols_slope(xv[m], yv[m]) for m in members if np.unique(xv[m]).size >= 2]
    _, t_lo, t_hi = mean_ci(per_seed, level)
    lo, hi = t_lo, t_hi  # a bootstrap over few seeds undercovers: the t interval instead
    if len(ids) >= MIN_BOOTSTRAP:
        rng = np.random.default_rng(seed)
        slopes = []
        for pick in rng.integers(0, len(ids), size=(n_boot, len(ids))):
            idx = np.concatenate([members[i] for i in pick])
            if np.unique(xv[idx]).size >= 2:
                slopes.append(_ols_slope(xv[idx], yv[idx]))
        alpha = 1.0 - level
        lo, hi = (float(v) for v in np.quantile(slopes, [alpha / 2.0, 1.0 - alpha / 2.0]))
    return SlopeResult(slope, lo, hi, t_lo, t_hi, r, int(xv.size), len(ids))


# --- tables ------------------------------------------------------------------------------------


def _as_bool(s: pd.Series) -> pd.Series:
    """Booleans that survived a CSV round trip as text."""
    if s.dtype == bool:
        return s
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))


def prepare_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy with the optional columns filled in (group "", is_baseline False, status complete)."""
    df = runs.copy()
    if "group" not in df.columns:
        df["group"] = ""
    df["group"] = df["group"].fillna("").astype(str)
    df["is_baseline"] = _as_bool(df["is_baseline"]) if "is_baseline" in df.columns else False
    if "status" not in df.columns:
        df["status"] = "complete"
    df["variant"] = df["variant"].astype(str)
    return df


def summarize(
    runs: pd.DataFrame,
    by: Sequence[str] = ("variant",),
    metrics: Sequence[str] | None = None,
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per group: run counts by status and mean/std/CI of each metric over the complete runs."""
    df = prepare_runs(runs)
    by = list(by)
    metrics = [m for m in (metrics or DEFAULT_METRICS) if m in df.columns]
    rows = []
    for key, g in df.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(by, key, strict=True))
        status = g["status"].astype(str)
        row["is_baseline"] = bool(g["is_baseline"].any())
        row["n_runs"] = len(g)
        row["n_complete"] = int((status == "complete").sum())
        row["n_diverged"] = int((status == "diverged").sum())
        row["n_failed"] = int((status == "failed").sum())
        done = g[status == "complete"]
        for m in metrics:
            mean, lo, hi = mean_ci(done[m], level)
            vals = _finite(done[m])
            row[f"{m}_mean"] = mean
            row[f"{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
            row[f"{m}_ci_lo"] = lo
            row[f"{m}_ci_hi"] = hi
        for col in ("macs", "params"):
            if col in g.columns:
                known = g[col].dropna()
                row[col] = known.iloc[0] if len(known) else math.nan
        if "train_time_s" in g.columns:
            row["train_time_s_mean"] = float(g["train_time_s"].mean())  # NaN-skipping
        rows.append(row)
    return pd.DataFrame(rows)


def _baseline_of_group(df: pd.DataFrame, group: str, default: str) -> str:
    """The group's own baseline variant when it has exactly one, else the study's."""
    own = df[(df["group"] == group) & df["is_baseline"]]["variant"].unique()
    return str(own[0]) if len(own) == 1 else default


def global_baseline(runs: pd.DataFrame, baseline: str | None = None) -> str:
    """The study-wide baseline label: given, or the is_baseline variant (ungrouped first)."""
    df = prepare_runs(runs)
    if baseline is not None:
        if baseline not in set(df["variant"]):
            raise ValueError(f"baseline {baseline!r} is not a variant of the runs table")
        return baseline
    base = df[df["is_baseline"]]
    if base.empty:
        raise ValueError("no baseline: no run has is_baseline True and none was named")
    ungrouped = base[base["group"] == ""]["variant"].unique()
    return str(ungrouped[0] if len(ungrouped) else base["variant"].iloc[0])


COMPARISON_COLUMNS = [
    "variant",
    "group",
    "baseline",
    "metric",
    "n_pairs",
    "mean_diff",
    "ci_lo",
    "ci_hi",
    "t_lo",
    "t_hi",
    "p_value",
    "verdict",
    "macs_ratio",
]


def per_seed(df: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    """One value per seed of a variant's complete runs, by seed (reruns of a cell averaged)."""
    done = df[(df["variant"].astype(str) == variant) & (df["status"] == "complete")]
    # Reruns of the same cell are averaged so each seed counts once in the pairing.
    return done.groupby("seed")[metric].mean().dropna().sort_index()


def compare_to_baseline(
    runs: pd.DataFrame,
    metric: str = "test_top1",
    *,
    baseline: str | None = None,
    higher_is_better: bool | None = None,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Each variant against its group's baseline, paired on seeds complete in both."""
    df = prepare_runs(runs)
    if higher_is_better is None:
        higher_is_better = metric not in LOWER_IS_BETTER
    default = global_baseline(df, baseline)
    macs = df.groupby("variant")["macs"].first() if "macs" in df.columns else None
    rows = []
    for (group, variant), rows_ in df.groupby(["group", "variant"], sort=False):
        # a variant naming what it is compared with (a chain of steps) overrides its group's
        vs = str(rows_["vs"].iloc[0]) if "vs" in rows_.columns else ""
        base = vs if vs and vs != "nan" else _baseline_of_group(df, group, default)
        if variant == base:
            continue
        a, b = per_seed(df, variant, metric), per_seed(df, base, metric)
        seeds = a.index.intersection(b.index)
        res = paired_diff(
            a[seeds].to_numpy(),
            b[seeds].to_numpy(),
            n_boot=n_boot,
            seed=seed,
            level=level,
            higher_is_better=higher_is_better,
        )
        ratio = math.nan
        if macs is not None and macs.get(base, 0) and pd.notna(macs.get(variant)):
            ratio = float(macs[variant]) / float(macs[base])
        rows.append(
            {
                "variant": variant,
                "group": group,
                "baseline": base,
                "metric": metric,
                "n_pairs": res.n,
                "mean_diff": res.mean_diff,
                "ci_lo": res.ci_lo,
                "ci_hi": res.ci_hi,
                "t_lo": res.t_lo,
                "t_hi": res.t_hi,
                "p_value": res.p_value,
                "verdict": res.verdict,
                "macs_ratio": ratio,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def front_metric(summary: pd.DataFrame) -> str:
    """The accuracy a Pareto front chooses on: validation top-1 where the runs have it (a model
    choice never looks at the test set), else test top-1."""
    val = summary.get("val_top1_mean")
    return "val_top1" if val is not None and val.notna().any() else "test_top1"


def pareto_front(df: pd.DataFrame, x: str = "macs", y: str = "test_top1_mean") -> pd.Series:
    """True for rows no other row dominates (x no larger and y no smaller, one strictly)."""
    xv, yv = df[x].to_numpy(dtype=float), df[y].to_numpy(dtype=float)
    ok = np.isfinite(xv) & np.isfinite(yv)
    on_front = np.zeros(len(df), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = (xv[ok] <= xv[i]) & (yv[ok] >= yv[i]) & ((xv[ok] < xv[i]) | (yv[ok] > yv[i]))
        on_front[i] = not dominated.any()
    return pd.Series(on_front, index=df.index, name="pareto")


def edf(errors: Sequence[float] | np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Error empirical distribution function: sorted errors and the fraction of models <= each."""
    x = np.sort(_finite(errors))
    return x, np.arange(1, x.size + 1, dtype=float) / max(x.size, 1)
