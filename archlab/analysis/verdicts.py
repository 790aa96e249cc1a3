"""Verdicts that weigh the effect: direction, equivalence and size tests over looks, Holm-adjusted.

Each claim row is a set of paired differences, seed by seed, oriented so that positive means the
paper's choice is better (lower NLL/ECE already flipped by the caller). Three hypotheses are
tested on every row:

- direction: the mean difference is 0 (two-sided paired t-test);
- equivalence: the difference lies outside ±margin (two one-sided tests, TOST; Schuirmann 1987);
- size: the difference is at least the paper's number (one-sided; only where the paper gives one).

Looks. A study run with ``--until-decided`` looks at the data after every round of seeds and
stops a row once it is decided, so the raw p-values would overstate the evidence. The alpha of
each test is spent over the planned looks with the Lan-DeMets *linear* spending function
(alpha * n_k / n_K by look k), through the exact group-sequential boundaries of
``archlab.analysis.sequential``: each look rejects at the nominal level its boundary gives, and a
row's *repeated p-value* is the smallest alpha at which some look so far would have rejected.
That keeps the false-positive rate at alpha for any stopping rule, while using that consecutive
looks share most of their seeds (the last of looks 5..10 tests at 0.020, not the 0.005 a union
bound over looks would allow). A fixed design is the special case of one look (the plain p-value).
A row that stopped before its study's plan of looks was extended keeps the looks of the plan it
stopped under (``RowEvidence.planned``): its decision was reached under that plan, and recomputing
it over the longer plan would spread its alpha over looks it never needed and re-open it.

A study may instead be judged *anytime-valid* (``method="anytime"``, the study file's
``sequential: anytime``): every seed count is a look, no plan is needed, and the p-values and the
95% interval come from the confidence sequence of ``archlab.analysis.anytime``, valid however the
seeds were chosen, so the plan may grow without cost.

Across the claim rows of a report each family (direction, equivalence, size) is adjusted with
Holm (1979) via ``statsmodels.stats.multitest.multipletests``. Verdicts, first that holds:

- ``disagrees``: direction decided, on the side opposite to the claim;
- ``agrees``: direction decided on the claimed side (``paper_in_ci`` says whether the paper's
  number lies inside the 95% interval);
- ``equivalent``: the 90% interval lies inside ±margin (TOST) — the decided form of "loses no
  expressiveness" or "ends close";
- ``smaller than claimed``: the effect is decidedly below the paper's number;
- ``inconclusive``: none of these holds yet; ``seeds_needed`` says what a fixed design would need.

Expectations ``no_worse``/``not_better``/``close`` (claims of no loss) count ``equivalent`` as
their positive answer; for ``close``, a decided difference beyond the margin ``disagrees``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from archlab.analysis.anytime import METHODS, SeedLook, confidence_sequence
from archlab.analysis.anytime import p_values as anytime_p_values
from archlab.analysis.sequential import planned_looks, repeated_p

ALPHA = 0.05
DEFAULT_MARGIN = 0.5  # points of top-1: an effect this small is "no difference" at this scale
POWER = 0.8
MAX_SEEDS_SHOWN = 10_000  # "seeds needed" beyond this is shown as more than it
VERDICTS = ("agrees", "disagrees", "equivalent", "smaller than claimed", "inconclusive")
DECIDED = frozenset(VERDICTS) - {"inconclusive"}
EXPECTATIONS = ("better", "worse", "no_worse", "not_better", "close")


@dataclass(frozen=True)
class Look:
    """The evidence of one row at one look: mean paired difference, its SE and t df."""

    n: int
    mean: float
    se: float
    df: float
    sd: float

    def _t(self, null: float) -> float:
        """t statistic; a zero SE (identical differences) is the limit, +-inf or 0."""
        if self.se == 0:
            return math.copysign(math.inf, self.mean - null) if self.mean != null else 0.0
        return (self.mean - null) / self.se

    def p_two_sided(self, null: float = 0.0) -> float:
        """Two-sided t-test p of mean == null."""
        if not self.valid:
            return 1.0
        return float(2 * stats.t.sf(abs(self._t(null)), self.df))

    def p_greater(self, null: float) -> float:
        """One-sided t-test p of H0: mean <= null (small when the mean is clearly above it)."""
        if not self.valid:
            return 1.0
        return float(stats.t.sf(self._t(null), self.df))

    def p_less(self, null: float) -> float:
        """One-sided t-test p of H0: mean >= null (small when the mean is clearly below it)."""
        if not self.valid:
            return 1.0
        return float(stats.t.cdf(self._t(null), self.df))

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Student-t interval of the mean difference (NaN with fewer than 2 seeds)."""
        if not self.valid:
            return (math.nan, math.nan)
        half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se
        return (self.mean - half, self.mean + half)

    @property
    def valid(self) -> bool:
        """At least two seeds and a finite, positive standard error."""
        return self.n >= 2 and self.df >= 1 and math.isfinite(self.se) and self.se >= 0


def paired_look(
    diffs: Sequence[float] | np.ndarray,
    pooled_sd: float | None = None,
    pooled_df: float | None = None,
) -> Look:
    """A Look from per-seed differences; a pooled residual SD (and its df) replaces theirs."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    if pooled_sd is not None and pooled_df is not None and n >= 1:
        # the pooled residual SD is per run; a paired difference of two runs has sqrt(2) of it
        se = math.sqrt(2.0) * pooled_sd / math.sqrt(n)
        return Look(n, mean, se, float(pooled_df), sd)
    se = sd / math.sqrt(n) if n >= 2 else math.nan
    return Look(n, mean, se, float(n - 1), sd)


@dataclass
class RowEvidence:
    """One claim row: its evidence at each look taken, and what the paper expects."""

    expected: str  # one of EXPECTATIONS, oriented so that positive = the paper's choice better
    looks: list[Look]
    margin: float = DEFAULT_MARGIN
    paper: float | None = None  # the paper's effect in points, claim-oriented (e.g. +1.0)
    # the looks this row is judged over when they are not the report's: a row that stopped
    # before its study's plan was extended keeps the plan it stopped under
    planned: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Verdict:
    """The decided answer of one row with its adjusted p-values and what it would take."""

    verdict: str
    mean: float
    ci_lo: float
    ci_hi: float
    n: int
    sd: float
    p_direction: float  # Holm- and look-adjusted
    p_equivalent: float
    p_smaller: float
    paper_in_ci: bool | None
    look: int  # the look (1-based) at which the verdict was first reached; 0 = not decided
    seeds_needed: (
        int | None
    )  # fixed design at the observed SD, power 0.8, alpha / rows; None if decided


def _orient(expected: str) -> tuple[str, int]:
    """(expectation with positive = claimed side, sign to multiply differences with)."""
    if expected not in EXPECTATIONS:
        raise ValueError(f"unknown expectation {expected!r}; valid: {', '.join(EXPECTATIONS)}")
    return {"worse": ("better", -1), "not_better": ("no_worse", -1)}.get(expected, (expected, 1))


def _raw_p(look: Look, margin: float, paper: float | None) -> tuple[float, float, float]:
    direction = look.p_two_sided()
    equivalent = max(look.p_greater(-margin), look.p_less(margin))  # TOST
    smaller = look.p_less(paper) if paper is not None and paper > 0 else 1.0
    return direction, equivalent, smaller


def _seed_looks(row: RowEvidence) -> list[SeedLook]:
    return [SeedLook(lk.n, lk.mean, lk.sd) for lk in row.looks]


def _repeated(
    row: RowEvidence, planned: Sequence[int], method: str = "planned"
) -> tuple[float, float, float]:
    if method == "anytime":
        return anytime_p_values(_seed_looks(row), row.margin, row.paper)
    raw = [_raw_p(lk, row.margin, row.paper) for lk in row.looks]
    # direction is two-sided; TOST (the larger of two one-sided p) and size are one-sided
    return tuple(  # type: ignore[return-value]
        repeated_p([r[i] for r in raw], planned, sides) for i, sides in enumerate((2, 1, 1))
    )


def _holm(ps: Sequence[float], alpha: float) -> np.ndarray:
    if len(ps) <= 1:  # Holm over one row is that row's p (and multipletests runs gc.collect)
        return np.minimum(np.asarray(ps, dtype=float), 1.0)
    return multipletests(np.asarray(ps, dtype=float), alpha=alpha, method="holm")[1]


def _word(
    row: RowEvidence,
    adjusted: tuple[float, float, float],
    alpha: float,
    interval: tuple[float, float],
) -> str:
    """The first verdict that holds, in the order the module docstring gives per expectation."""
    p_dir, p_eq, p_small = (p < alpha for p in adjusted)
    # the side of the interval the decision was read from (an anytime-valid sequence is a
    # running intersection: it need not be centred on the last mean); else the last mean's
    lo, hi = interval
    centre = (lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else math.nan
    if not math.isfinite(centre):
        centre = row.looks[-1].mean if row.looks else math.nan
    positive = centre > 0
    if row.expected == "better":
        if p_dir:
            return "agrees" if positive else "disagrees"
        if p_eq:
            return "equivalent"
        return "smaller than claimed" if p_small else "inconclusive"
    if p_eq:  # no_worse and close: equivalence is the claim's own positive answer
        return "equivalent"
    if row.expected == "no_worse" and p_dir:
        return "agrees" if positive else "disagrees"
    if row.expected == "close" and p_dir and (lo > row.margin or hi < -row.margin):
        return "disagrees"
    return "inconclusive"


def seeds_needed(
    sd: float, effect: float, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Seeds a fixed paired design needs to detect ``effect`` at SD ``sd`` (two-sided t-test)."""
    if not (math.isfinite(sd) and sd > 0 and math.isfinite(effect) and effect != 0):
        return None
    n = TTestPower().solve_power(effect_size=abs(effect) / sd, alpha=alpha, power=power)
    n = float(np.atleast_1d(n)[0])
    return MAX_SEEDS_SHOWN if not math.isfinite(n) else min(MAX_SEEDS_SHOWN, math.ceil(n))


def decide(
    rows: Sequence[RowEvidence],
    looks_planned: Sequence[int],
    alpha: float = ALPHA,
    method: str = "planned",
) -> list[Verdict]:
    """The verdict of every row: look-adjusted (repeated p) and Holm-adjusted across rows.

    ``method`` "anytime" judges each row's looks (one per seed count) with the anytime-valid
    test instead, ``looks_planned`` and ``RowEvidence.planned`` aside; its interval is the 95%
    confidence sequence.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    planned = planned_looks(looks_planned)
    oriented = []
    for row in rows:
        expected, sign = _orient(row.expected)
        looks = [Look(lk.n, sign * lk.mean, lk.se, lk.df, lk.sd) for lk in row.looks]
        paper = None if row.paper is None else sign * row.paper
        own = planned_looks(row.planned) if row.planned else planned
        oriented.append(RowEvidence(expected, looks, row.margin, paper, own))
    # each look's p-values, so the look at which a row was first decided can be named
    per_look = [
        [_repeated_upto(r, k, method) for k in range(1, len(r.looks) + 1)] for r in oriented
    ]
    finals = [pl[-1] if pl else (1.0, 1.0, 1.0) for pl in per_look]
    adj = [_holm([f[i] for f in finals], alpha) for i in range(3)]
    out = []
    for j, row in enumerate(oriented):
        p_dir, p_eq, p_small = (float(adj[i][j]) for i in range(3))
        adjusted = (p_dir, p_eq, p_small)
        out.append(_verdict(row, per_look[j], adjusted, finals, j, alpha, len(rows), method))
    return out


def _repeated_upto(row: RowEvidence, k: int, method: str) -> tuple[float, float, float]:
    """The row's repeated p-values after its first ``k`` looks, over its own planned looks."""
    assert row.planned is not None  # decide() gives every oriented row its plan
    upto = RowEvidence(row.expected, row.looks[:k], row.margin, row.paper, row.planned)
    return _repeated(upto, row.planned, method)


def _verdict(
    row: RowEvidence,
    per_look: list[tuple[float, float, float]],
    adjusted: tuple[float, float, float],
    finals: list[tuple[float, float, float]],
    j: int,
    alpha: float,
    n_rows: int = 1,
    method: str = "planned",
) -> Verdict:
    last = row.looks[-1] if row.looks else Look(0, math.nan, math.nan, 0, math.nan)
    p_dir, p_eq, p_small = adjusted
    if method == "anytime":
        # the 95% confidence sequence the p-values were read from: shown, and what a "close"
        # claim's decided difference beyond the margin is read off (the t interval's 90% there)
        lo, hi = confidence_sequence(_seed_looks(row), alpha) if row.looks else (math.nan,) * 2
        interval = (lo, hi)
    else:
        lo, hi = last.ci(1 - alpha)
        interval = last.ci(1 - 2 * alpha)
    word = _word(row, adjusted, alpha, interval)
    paper_in = None if row.paper is None or not math.isfinite(lo) else bool(lo <= row.paper <= hi)
    look = _first_decided_look(per_look, finals, j, alpha) if word in DECIDED else 0
    target = row.paper if row.paper and row.expected == "better" else row.margin
    # what a fixed design would take at this SD, at the alpha Holm gives the first of the rows
    needed = None if word in DECIDED else seeds_needed(last.sd, target, alpha / max(1, n_rows))
    return Verdict(
        word, last.mean, lo, hi, last.n, last.sd, p_dir, p_eq, p_small, paper_in, look, needed
    )


def _first_decided_look(
    per_look: list[tuple[float, float, float]],
    finals: list[tuple[float, float, float]],
    j: int,
    alpha: float,
) -> int:
    """The first look at which this row's Holm-adjusted p (others at their final) fell below."""
    for k, ps in enumerate(per_look, start=1):
        for i in range(3):
            family = [f[i] for f in finals]
            family[j] = ps[i]
            if _holm(family, alpha)[j] < alpha:
                return k
    return len(per_look)
