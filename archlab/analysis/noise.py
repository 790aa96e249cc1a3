"""Where a recipe's seed-to-seed spread comes from: images that flip one by one, or whole runs.

Given which images each of k seeds got right (a k x n 0/1 matrix over one evaluation set), the
top-1 of seed j is the mean of its row. If every image i were right with its own probability
p_i, independently of the other images (Jordan, "On the variance of neural network training",
2023), the variance of top-1 across seeds would be sum_i p_i (1 - p_i) / n^2: the *churn* of
single images. A run that as a whole lands on a worse point (a bad last step, stale BN
statistics) moves many images together and adds variance beyond that. Precise BN, weight
averaging and a low final learning rate remove the whole-run part; the churn part falls only as
the models agree on more images (longer training, more data), so it tells what spread a recipe
at this accuracy and this evaluation-set size can reach at all.

``p_i (1 - p_i)`` estimated from k seeds is biased low by (k-1)/k; the estimate below corrects it.
Under the churn-only model, (k-1) s^2 / churn^2 follows chi^2 with k-1 degrees of freedom (the
churn estimate itself averages n images, so its own error is negligible): the one-sided p says
whether the seeds spread more than churn alone explains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["NoiseSplit", "split_noise"]


@dataclass(frozen=True)
class NoiseSplit:
    """Seed spread of top-1 (percentage points) and the part independent image flips explain."""

    seeds: int
    images: int
    mean_top1: float  # %
    sd: float  # observed SD of top-1 across seeds
    sd_ci: tuple[float, float]  # its 95% chi-square interval
    churn_sd: float  # SD that independent per-image flips alone would give
    unstable: float  # % of images neither right in every seed nor wrong in every seed
    p_excess: float  # one-sided p that the seeds spread more than churn explains

    @property
    def whole_run_sd(self) -> float:
        """The SD left beyond churn (0 when churn explains all of it)."""
        return float(np.sqrt(max(self.sd**2 - self.churn_sd**2, 0.0)))


def split_noise(correct: np.ndarray) -> NoiseSplit:
    """Split the seed SD of top-1 over a (seeds x images) 0/1 matrix of correct predictions."""
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] < 1:
        raise ValueError(f"need a (seeds >= 2) x (images >= 1) matrix, got shape {c.shape}")
    if not np.isin(c, (0.0, 1.0)).all():
        raise ValueError("correct must hold only 0/1 (or booleans)")
    k, n = c.shape
    top1 = 100.0 * c.mean(axis=1)
    var = float(np.var(top1, ddof=1))
    p = c.mean(axis=0)
    # unbiased for sum p_i (1 - p_i): E[p_hat (1 - p_hat)] = p (1 - p) (k - 1) / k
    churn_var = 100.0**2 * float(np.sum(p * (1 - p))) * k / (k - 1) / n**2
    df = k - 1
    lo, hi = (np.sqrt(df * var / stats.chi2.ppf(q, df)) for q in (0.975, 0.025))
    p_excess = float(stats.chi2.sf(df * var / churn_var, df)) if churn_var > 0 else float("nan")
    return NoiseSplit(
        seeds=k,
        images=n,
        mean_top1=float(top1.mean()),
        sd=float(np.sqrt(var)),
        sd_ci=(float(lo), float(hi)),
        churn_sd=float(np.sqrt(churn_var)),
        unstable=100.0 * float(np.mean((p > 0) & (p < 1))),
        p_excess=p_excess,
    )
