"""The parts every principle analysis shares: result types, seed pairing, the seed-intercept OLS.

``archlab.analysis.principles`` builds the four analyses from these; the types are re-exported
there. Pairing is on seed: two configurations' runs of one seed share data order and start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.weightstats import ttost_paired

from archlab.analysis.anytime import SeedLook, confidence_sequence, seed_looks
from archlab.analysis.anytime import p_values as anytime_p_values
from archlab.analysis.bands import SEED_PREFIX
from archlab.analysis.stats import mean_ci, paired_diff, prepare_runs

__all__ = [
    "Estimate",
    "Paired",
    "PrincipleResult",
    "anytime_by_seed",
    "anytime_estimate",
    "by_seed",
    "common_seeds",
    "complete_runs",
    "estimate",
    "paired",
    "per_config",
    "seed_ols",
    "tost_by_seed",
]


@dataclass(frozen=True)
class Paired:
    """A paired difference a - b over seeds: mean, the union of bootstrap and t intervals, n."""

    mean: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class PrincipleResult:
    """What one principle analysis found.

    ``per`` has one row per configuration: the ``keys`` columns, ``n`` runs, median ``macs``
    and, per analysed column m, ``m_mean``, ``m_lo``, ``m_hi`` (95% t interval) and
    ``m_missing``. ``facts`` holds the numbers the verdict quotes; its keys are per principle
    (see each analysis).
    """

    principle: int
    evidence: str
    per: pd.DataFrame
    keys: tuple[str, ...]
    metric: str
    facts: Mapping[str, Any] = field(default_factory=dict)


# --- shared steps --------------------------------------------------------------------------------


def complete_runs(runs: pd.DataFrame, *cols: str) -> pd.DataFrame:
    """Complete runs with every named column present and known."""
    df = prepare_runs(runs)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"the runs table lacks column(s) {', '.join(missing)}")
    return df[df["status"] == "complete"].dropna(subset=list(cols)).copy()


def per_config(df: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per configuration: run count, median MACs, mean/CI and missing count of each metric."""
    rows = []
    for key, g in df.groupby(list(keys), sort=True, dropna=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["n"] = len(g)
        row["macs"] = float(g["macs"].median()) if "macs" in g else math.nan
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(g[m])
            row[f"{m}_missing"] = int(g[m].isna().sum())
        rows.append(row)
    stats = ("mean", "lo", "hi", "missing")
    cols = [*keys, "n", "macs", *(f"{m}_{s}" for m in metrics for s in stats)]
    return pd.DataFrame(rows, columns=cols)


def common_seeds(runs: pd.DataFrame) -> list[int]:
    """Seeds with a complete run in every variant, in order: the seeds a look can pair on."""
    done = runs[runs["status"] == "complete"]
    if done.empty or "variant" not in done.columns:
        return []
    per_variant = [set(g["seed"].astype(int)) for _, g in done.groupby("variant")]
    return sorted(set.intersection(*per_variant))


def by_seed(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed means of ``metric`` in ``a`` and ``b`` on the seeds both have, aligned."""
    sa, sb = a.groupby("seed")[metric].mean(), b.groupby("seed")[metric].mean()
    seeds = sa.index.intersection(sb.index)
    return sa[seeds].to_numpy(float), sb[seeds].to_numpy(float)


def paired(
    a: pd.DataFrame, b: pd.DataFrame, metric: str, level: float = 0.95, sequential: bool = False
) -> Paired:
    """Mean and the union of bootstrap and t intervals of a - b, paired on seed.

    ``sequential``: the anytime-valid 95% confidence sequence instead (``anytime_by_seed``).
    """
    if sequential:
        return anytime_by_seed(a, b, metric, 0.0)[0]
    r = paired_diff(*by_seed(a, b, metric), n_boot=4000, level=level)
    return Paired(r.mean_diff, min(r.ci_lo, r.t_lo), max(r.ci_hi, r.t_hi), r.n)


def anytime_by_seed(
    a: pd.DataFrame, b: pd.DataFrame, metric: str, margin: float
) -> tuple[Paired, float]:
    """a - b over seeds in seed order as an anytime-valid 95% confidence sequence, TOST p."""
    x, y = by_seed(a, b, metric)
    both = np.isfinite(x) & np.isfinite(y)
    d = (x - y)[both]  # by_seed aligns on the seeds' index, in seed order
    seq, looks = anytime_estimate(d)
    return Paired(seq.value, seq.lo, seq.hi, d.size), anytime_p_values(looks, margin, None)[1]


def tost_by_seed(a: pd.DataFrame, b: pd.DataFrame, metric: str, margin: float) -> float:
    """Two one-sided tests of a - b (paired on seeds where both have a value) inside +-margin."""
    x, y = by_seed(a, b, metric)
    both = np.isfinite(x) & np.isfinite(y)  # the seeds paired_diff keeps too
    if both.sum() < 2:
        return 1.0
    return float(ttost_paired(x[both], y[both], -margin, margin)[0])


@dataclass(frozen=True)
class Estimate:
    """A fitted quantity with its 95% interval and two-sided p-value."""

    value: float
    lo: float
    hi: float
    p: float


def seed_ols(df: pd.DataFrame, metric: str, terms: Mapping[str, np.ndarray]) -> Any:
    """OLS of ``metric`` on the named ``terms`` plus one intercept per seed (the seeds pair)."""
    seeds = pd.get_dummies(df["seed"].astype(str), prefix=SEED_PREFIX[:-1], prefix_sep="=")
    seeds = seeds.astype(float)
    x = pd.concat([seeds.reset_index(drop=True), pd.DataFrame(dict(terms))], axis=1)
    return sm.OLS(df[metric].to_numpy(float), x).fit()


def estimate(fit: Any, contrast: Mapping[str, float], alpha: float = 0.05) -> Estimate:
    """A linear combination of a fit's coefficients, with its t interval (1 - alpha)."""
    vec = np.array([contrast.get(name, 0.0) for name in fit.model.exog_names])
    t = fit.t_test(vec)
    lo, hi = np.asarray(t.conf_int(alpha=alpha)).ravel()
    return Estimate(
        float(np.ravel(t.effect)[0]), float(lo), float(hi), float(np.ravel(t.pvalue)[0])
    )


def anytime_estimate(values: np.ndarray) -> tuple[Estimate, list[SeedLook]]:
    """Per-seed values of a contrast (in seed order) as an anytime-valid 95% sequence.

    ``p`` is the anytime-valid p of 0; the looks are returned for further tests.
    """
    looks = seed_looks(values)
    if not looks:
        return Estimate(math.nan, math.nan, math.nan, 1.0), looks
    lo, hi = confidence_sequence(looks)
    return Estimate(looks[-1].mean, lo, hi, anytime_p_values(looks, 0.0, None)[0]), looks
