"""Fitted relations with their 95% bands, the numbers behind the principle figures.

A seed-intercept OLS (``principles.seed_ols``) predicts one seed at a time; the figures draw
the average seed, every seed dummy at 1/k, so the band is statsmodels' confidence interval of
that mean line (``get_prediction``), not a prediction interval for one run. ``curve_band`` is
the other kind: a learning curve's mean over seeds with its Student-t interval per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from archlab.analysis.stats import mean_ci

__all__ = ["SEED_PREFIX", "curve_band", "mean_seed_band", "quadratic_band", "squeeze_band"]

#: Seed dummies of a seed-intercept OLS are named "seed=<seed>"; every other column is a term.
SEED_PREFIX = "seed="


def mean_seed_band(
    fit: Any, terms: Mapping[str, Sequence[float] | np.ndarray], level: float = 0.95
) -> pd.DataFrame:
    """The fit's mean over seeds where the named terms take the given values (others 0).

    Columns ``fit``, ``lo`` and ``hi`` (the ``level`` confidence band), one row per value.
    """
    names = list(fit.model.exog_names)
    seeds = [c for c in names if c.startswith(SEED_PREFIX)]
    unknown = set(terms) - set(names)
    if unknown or not seeds:
        raise ValueError(f"terms {sorted(unknown)} not in the fit, or it has no seed intercepts")
    n = len(np.asarray(next(iter(terms.values()))))
    exog = pd.DataFrame(
        {
            c: np.full(n, 1.0 / len(seeds))
            if c in seeds
            else np.asarray(terms.get(c, np.zeros(n)), dtype=float)
            for c in names
        }
    )
    frame = fit.get_prediction(exog).summary_frame(alpha=1.0 - level)
    return pd.DataFrame(
        {
            "fit": frame["mean"].to_numpy(),
            "lo": frame["mean_ci_lower"].to_numpy(),
            "hi": frame["mean_ci_upper"].to_numpy(),
        }
    )


def squeeze_band(
    fit: Any, places: Sequence[str], ratios: Sequence[float], n: int = 50
) -> pd.DataFrame:
    """Principle 1's fitted line per squeeze place, from no squeeze (r = 1) to the smallest r.

    The fit's terms are halvings of the channels kept, one per place. Columns ``place``,
    ``ratio`` (channels kept), ``fit``, ``lo``, ``hi``.
    """
    halvings = np.linspace(0.0, float(-np.log2(min(ratios))), n)
    parts = []
    for place in places:
        band = mean_seed_band(fit, {place: halvings})
        parts.append(band.assign(place=place, ratio=2.0**-halvings))
    return pd.concat(parts, ignore_index=True)[["place", "ratio", "fit", "lo", "hi"]]


def quadratic_band(fit: Any, low: float, high: float, n: int = 80) -> pd.DataFrame:
    """Principle 4's quadratic in log2(depth) from depth ``low`` to ``high``.

    The fit's terms are ``l`` = log2(depth) and ``l2`` = its square. Columns ``depth``, ``fit``,
    ``lo``, ``hi``.
    """
    ld = np.linspace(np.log2(low), np.log2(high), n)
    return mean_seed_band(fit, {"l": ld, "l2": ld**2}).assign(depth=2.0**ld)[
        ["depth", "fit", "lo", "hi"]
    ]


def curve_band(
    curves: pd.DataFrame, runs: pd.DataFrame, by: str, curve: str, level: float = 0.95
) -> pd.DataFrame:
    """Per ``by`` value and epoch: the mean of ``curve`` over the runs and its t interval.

    ``runs`` maps run_key to ``by``. Columns ``by``, ``epoch``, ``n``, ``mean``, ``lo``, ``hi``;
    empty when no run has the curve.
    """
    cols = [by, "epoch", "n", "mean", "lo", "hi"]
    if curves.empty or not {"run_key", "epoch", curve} <= set(curves.columns):
        return pd.DataFrame(columns=cols)
    merged = curves[["run_key", "epoch", curve]].merge(runs[["run_key", by]], on="run_key")
    rows = []
    for (value, epoch), g in merged.dropna(subset=[curve]).groupby([by, "epoch"], sort=True):
        mean, lo, hi = mean_ci(g[curve], level)
        rows.append((value, float(epoch), len(g), mean, lo, hi))
    return pd.DataFrame(rows, columns=cols)
