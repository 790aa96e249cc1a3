"""Anytime-valid paired t-tests: the safe t-test's e-process and its confidence sequence.

A group-sequential design (``archlab.analysis.sequential``) spends its alpha over looks planned
before the data: extending the plan once rows are seen to be open is a redesign its 5% does not
cover (one extension 5..24 -> 5..32: 5.95%; progression's history: 8.77%, by simulation). An
anytime-valid test holds its alpha at *every* seed count, whatever rule chose when to look, stop
or go on, so a study may add seeds for as long as it likes.

The test is the Bayes factor of a paired t-test with the right-Haar prior 1/sigma on the SD and
a normal prior N(0, g) on the standardized effect delta = mu / sigma. For fixed g it has a closed
form in the t statistic (Rouder et al. 2009, eq. 1 before the mixing over g):

    E_n = (1 + n g)^(-1/2) * ((1 + t^2 / v) / (1 + t^2 / (v (1 + n g))))^((v + 1) / 2),  v = n - 1.

With the right-Haar prior this Bayes factor is the likelihood ratio of the data's scale-invariant
part, so under mu = mu0 the sequence E_2, E_3, ... is a nonnegative martingale with mean 1, for
any sigma (Hendriksen, de Heide and Grunwald 2021; Perez-Ortiz, Lardy, de Heide and Grunwald
2024). By Ville's inequality P(some E_n >= 1/alpha) <= alpha: p_n = 1 / max_{k<=n} E_k is a
p-value valid at any stopping time, and {mu0 : E_k(mu0) < 1/alpha for all k <= n} is a
(1 - alpha) confidence sequence, an interval because E grows with |t|.

All three tests of a verdict come from that one sequence: the direction is decided when 0 leaves
it; equivalence when both +-margin have (the sequence inside the margins, a TOST read off a 95%
sequence: each side's error is at most alpha); "smaller than claimed" when the paper's number has
left it from above. g = 0.5 (prior SD 0.71 of delta) is the "medium" scale of the JZS default
(Rouder et al. 2009); a paired difference at our scale has SD ~0.5 pt, so it puts most weight on
effects of 0.1-0.7 pt. With n seeds the largest E is (1 + n g)^((n - 1) / 2): 5 seeds can reach
p = 0.04, 6 seeds 0.013; a row needs a few more seeds than under planned looks, and in return
its plan may grow.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ANYTIME_NAME",
    "METHODS",
    "PRIOR_G",
    "SeedLook",
    "confidence_sequence",
    "e_value",
    "p_below",
    "p_values",
    "seed_looks",
    "t_threshold",
]

#: how a study's verdicts may treat their looks: over planned looks (group-sequential,
#: ``archlab.analysis.sequential``) or at every seed count with no plan (this module)
METHODS = ("planned", "anytime")
#: prior variance of the standardized effect (normal prior; JZS "medium" scale sqrt(2)/2, squared)
PRIOR_G = 0.5
#: how reports name the procedure
ANYTIME_NAME = (
    "95% confidence sequences of the safe paired t-test: the Bayes factor with a 1/sigma prior "
    "on the SD and N(0, 0.5) on the standardized effect, a test martingale (Perez-Ortiz et al. "
    "2024)"
)


@dataclass(frozen=True)
class SeedLook:
    """A row's paired differences after n seeds: their mean and their own SD (n - 1 df)."""

    n: int
    mean: float
    sd: float


def seed_looks(diffs: Sequence[float]) -> list[SeedLook]:
    """A look after every seed of ``diffs`` (in seed order): running mean and own SD."""
    d = [float(x) for x in diffs]
    return [
        SeedLook(k, statistics.fmean(d[:k]), statistics.stdev(d[:k]) if k >= 2 else math.nan)
        for k in range(1, len(d) + 1)
    ]


def _log_e(t2: float, n: int, g: float) -> float:
    """log E_n at squared t statistic ``t2`` (``inf`` allowed: identical differences)."""
    v, c = n - 1, 1.0 + n * g
    if math.isinf(t2):
        return 0.5 * v * math.log(c)  # the limit t -> inf: (1 + n g)^(v / 2)
    return -0.5 * math.log(c) + 0.5 * (v + 1) * (math.log1p(t2 / v) - math.log1p(t2 / (v * c)))


def e_value(look: SeedLook, null: float = 0.0, g: float = PRIOR_G) -> float:
    """E_n of mean == ``null`` (1 with fewer than 2 seeds or no finite mean)."""
    if look.n < 2 or not math.isfinite(look.mean) or not math.isfinite(look.sd):
        return 1.0
    diff = look.mean - null
    if look.sd == 0:
        t2 = math.inf if diff != 0 else 0.0
    else:
        t2 = (diff / (look.sd / math.sqrt(look.n))) ** 2
    return math.exp(_log_e(t2, look.n, g))


def t_threshold(n: int, alpha: float, g: float = PRIOR_G) -> float:
    """|t| at which E_n reaches 1/alpha (``inf`` when n seeds cannot reach it)."""
    if n < 2:
        return math.inf
    v, c = n - 1, 1.0 + n * g
    # E = 1/alpha  <=>  (v + t^2) / (v + t^2 / c) = k, with k below
    k = (math.sqrt(c) / alpha) ** (2.0 / (v + 1))
    if k >= c:
        return math.inf
    return math.sqrt(v * (k - 1.0) / (1.0 - k / c))


def confidence_sequence(
    looks: Sequence[SeedLook], alpha: float = 0.05, g: float = PRIOR_G
) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence after these looks: the running intersection."""
    lo, hi = -math.inf, math.inf
    for lk in looks:
        if lk.n < 2 or not (math.isfinite(lk.mean) and math.isfinite(lk.sd)):
            continue
        half = t_threshold(lk.n, alpha, g) * lk.sd / math.sqrt(lk.n)
        if math.isfinite(half):
            lo, hi = max(lo, lk.mean - half), min(hi, lk.mean + half)
    if lo > hi:  # disjoint intervals: mu0 has left the sequence; keep the last look's point
        lo = hi = looks[-1].mean
    return lo, hi


def _p_excluded(looks: Sequence[SeedLook], null: float, side: int, g: float) -> float:
    """Smallest alpha at which ``null`` has left the sequence on ``side`` of it (+1 above)."""
    best = 1.0
    for lk in looks:
        # the null lies above the interval only where the mean lies below it (and vice versa)
        if side * (null - lk.mean) > 0:
            best = min(best, 1.0 / e_value(lk, null, g))
    return best


def p_below(looks: Sequence[SeedLook], bound: float, g: float = PRIOR_G) -> float:
    """Anytime-valid p that the mean lies below ``bound`` (it has left the sequence from above)."""
    return _p_excluded(looks, bound, 1, g)


def p_values(
    looks: Sequence[SeedLook], margin: float, paper: float | None, g: float = PRIOR_G
) -> tuple[float, float, float]:
    """Anytime-valid (direction, equivalence, smaller-than-claimed) p-values of a row's looks.

    direction: 0 has left the sequence; equivalence: both -margin (from below) and +margin
    (from above) have; smaller: the paper's number has, from above (1 without a number).
    """
    direction = min((1.0 / e_value(lk, 0.0, g) for lk in looks), default=1.0)
    equivalent = max(_p_excluded(looks, margin, 1, g), _p_excluded(looks, -margin, -1, g))
    smaller = _p_excluded(looks, paper, 1, g) if paper is not None and paper > 0 else 1.0
    return min(direction, 1.0), equivalent, smaller
