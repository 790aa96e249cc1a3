"""Exact group-sequential boundaries for the Lan-DeMets linear alpha-spending function.

A study that looks at its data after every round of seeds must spend its alpha over the looks.
With the linear spending function alpha(t) = alpha * t (t = n_k / n_K, the information at look
k), look k may spend alpha * (t_k - t_{k-1}). The union bound (reject at look k when
p_k <= alpha * (t_k - t_{k-1})) keeps that promise but ignores how strongly the looks are
correlated: looks 9 and 10 of 10 share 90% of their seeds, so most studies that cross at look 10
would have crossed at look 9. The exact boundaries solve, look by look,
P(no crossing before look k, crossing at look k) = alpha * (t_k - t_{k-1}) under the null,
for the test statistics Z_k = W(t_k) / sqrt(t_k) of a Brownian motion W (Armitage, McPherson and
Rowe 1969; Lan and DeMets 1983), by numerical integration over the continuation region
(Jennison and Turnbull 2000, ch. 19). With six looks at 5, 6, ..., 10 seeds, alpha 0.05 two-sided,
the last look's nominal level is 0.020 instead of the union bound's 0.005.

Paired t-tests are used at each look through their p-values (the "significance level
approach", Jennison and Turnbull 2000, sec. 3.8). On its own that is a little liberal with few
seeds (5.5-5.6% instead of 5% for looks 5..12, by simulation): estimated SDs make successive looks
less alike than the Brownian motion assumes. So the smallest alpha at which some look so far
would have rejected (the normal-theory repeated p) is calibrated: a row's *repeated p-value* is
the share of PATHS simulated null studies of paired t-tests at the same looks (own SD, seeds - 1
df: the fewest any row has; a pooled SD has more, and is treated conservatively) whose
normal-theory repeated p is as small, a Monte Carlo p-value (1 + count) / (PATHS + 1). With a
single look it is the t-test's own p. Holm adjusts these across the rows of a report.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

__all__ = [
    "ALPHA_GRID",
    "EXTENSION_COST",
    "PATHS",
    "boundaries",
    "calibrated_levels",
    "nominal_levels",
    "planned_looks",
    "repeated_p",
    "repeated_p_many",
]

#: what extending a plan once begun costs in false positives (the procedure spends alpha over one
#: plan), as studies/pilots/extend_plan_sim.py measured it (results/pilots/extend-plan-sim.txt)
EXTENSION_COST = (
    "one extension 5..24 → 5..32: 5.95% in 20,000 simulated null studies, "
    "studies/pilots/extend_plan_sim.py"
)
#: the alphas at which a design's boundaries are tabulated for repeated p-values (log-spaced)
ALPHA_GRID = np.logspace(-9, 0, 181)
#: null studies simulated to calibrate repeated p-values for t-tests (the smallest is 1/(PATHS+1))
PATHS = 200_000
_SEED = 20151202  # the paper's arXiv date: any fixed seed, so every report gives the same p
_POINTS = 201  # Simpson points per look: boundaries agree with 10^6-path Monte Carlo to ~1e-4
_TAIL = 8.0  # SDs of W kept below a one-sided continuation region (mass beyond: ~1e-15)
_BISECT = 60  # halvings of the [-40, 40] interval of a boundary: exact to ~1e-16


def _simpson(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid points (A, G) spanning [lower, upper] per row, and their Simpson weights."""
    x = np.linspace(0.0, 1.0, _POINTS)
    span = (upper - lower)[:, None]
    w = np.ones(_POINTS)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return lower[:, None] + span * x, span * w / (3.0 * (_POINTS - 1))


def _region(c: np.ndarray, t: float, sides: int) -> tuple[np.ndarray, np.ndarray]:
    """Where W(t) continues past a look with boundary c (on the Z scale)."""
    upper = np.minimum(c, 40.0) * np.sqrt(t)
    if sides == 2:
        return -upper, upper
    return np.minimum(-_TAIL * np.sqrt(t), upper - 1.0), upper


def _tabulate(info: tuple[float, ...], alphas: np.ndarray, sides: int) -> np.ndarray:
    """Boundaries (len(alphas), len(info)) on the Z scale, one row per total alpha."""
    t0 = info[0]
    c = np.empty((alphas.size, len(info)))
    c[:, 0] = -ndtri(alphas * t0 / sides)
    u, w = _simpson(*_region(c[:, 0], t0, sides))
    mass = w * np.exp(-0.5 * u**2 / t0) / np.sqrt(2 * np.pi * t0)  # density x weight
    for k in range(1, len(info)):
        t, sd = info[k], np.sqrt(info[k] - info[k - 1])
        spend = alphas * (info[k] - info[k - 1])
        lo = np.full(alphas.size, 0.0 if sides == 2 else -40.0)
        hi = np.full(alphas.size, 40.0)
        for _ in range(_BISECT):  # the crossing probability falls as the boundary rises
            mid = (lo + hi) / 2
            b = mid[:, None] * np.sqrt(t)
            cross = ndtr((u - b) / sd)
            if sides == 2:
                cross = cross + ndtr((-b - u) / sd)
            above = (mass * cross).sum(axis=1) > spend
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        c[:, k] = hi
        v, wv = _simpson(*_region(hi, t, sides))
        kernel = np.exp(-0.5 * ((v[:, :, None] - u[:, None, :]) / sd) ** 2)
        density = np.einsum("avu,au->av", kernel, mass) / (sd * np.sqrt(2 * np.pi))
        u, mass = v, wv * density
    return c


@functools.lru_cache(maxsize=64)
def _table(info: tuple[float, ...], sides: int) -> np.ndarray:
    return _tabulate(info, ALPHA_GRID, sides)


def _info(looks: Sequence[int]) -> tuple[float, ...]:
    ns = planned_looks(looks)
    return tuple(n / ns[-1] for n in ns)


def _check_sides(sides: int) -> None:
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides!r}")


def boundaries(looks: Sequence[int], alpha: float, sides: int = 2) -> np.ndarray:
    """Z-scale critical values per planned look (seed counts) for a total ``alpha``."""
    _check_sides(sides)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    return _tabulate(_info(looks), np.array([float(alpha)]), sides)[0]


def nominal_levels(looks: Sequence[int], alpha: float, sides: int = 2) -> np.ndarray:
    """The p-value at or below which each planned look rejects (``sides``-sided p-values)."""
    return sides * ndtr(-boundaries(looks, alpha, sides))


def _normal_repeated(p: np.ndarray, info: tuple[float, ...], sides: int) -> np.ndarray:
    """Normal-theory repeated p per row of ``p`` (rows: studies, columns: looks so far)."""
    table = _table(info, sides)
    logs = np.log10(ALPHA_GRID[::-1])
    best = np.ones(p.shape[0])
    for j in range(min(p.shape[1], len(info))):
        pj = np.clip(p[:, j], 1e-300, 1.0)
        spent = info[j] - (info[j - 1] if j else 0.0)
        if j == 0:  # the first look's boundary is exact in closed form
            best = np.minimum(best, pj / spent)
            continue
        col = table[:, j]  # falls as alpha grows
        z = -ndtri(pj / sides)
        # beyond the table (alpha < 1e-9) the union bound is valid and only a little larger
        a = np.where(z >= col[0], pj / spent, 10 ** np.interp(z, col[::-1], logs))
        best = np.minimum(best, np.where(z <= col[-1], 1.0, a))
    return np.minimum(best, 1.0)


@functools.lru_cache(maxsize=64)
def _null(looks: tuple[int, ...], sides: int) -> np.ndarray:
    """Sorted normal-theory repeated p of null studies of paired t-tests at these looks."""
    rng = np.random.default_rng(_SEED)
    info = _info(looks)
    total, squares = np.zeros(PATHS), np.zeros(PATHS)
    p = np.ones((PATHS, len(looks)))
    n = 0
    for j, look in enumerate(looks):
        for _ in range(look - n):
            d = rng.standard_normal(PATHS)
            total += d
            squares += d * d
        n = look
        if n >= 2:  # one seed has no SD: its p is 1, as Look gives it
            sd = np.sqrt(np.maximum(squares - total**2 / n, 0.0) / (n - 1))
            t = total / n / (sd / np.sqrt(n))
            p[:, j] = 2 * stats.t.sf(np.abs(t), n - 1) if sides == 2 else stats.t.sf(t, n - 1)
    return np.sort(_normal_repeated(p, info, sides))


def planned_looks(looks: Sequence[int]) -> tuple[int, ...]:
    """The distinct planned looks (seed counts) in order; ValueError unless all are >= 1."""
    ns = tuple(sorted({int(n) for n in looks}))
    if not ns or ns[0] < 1:
        raise ValueError(f"looks must be seed counts >= 1, got {list(looks)}")
    return ns


def repeated_p_many(p: np.ndarray, looks: Sequence[int], sides: int = 2) -> np.ndarray:
    """``repeated_p`` of many studies at once: ``p`` has one row per study, one column per look."""
    _check_sides(sides)
    ns = planned_looks(looks)
    p = np.atleast_2d(np.asarray(p, dtype=float))[:, : len(ns)]
    if p.shape[1] == 0:
        return np.ones(p.shape[0])
    if len(ns) == 1:
        return np.clip(p[:, 0], 0.0, 1.0)  # one look: the t-test's own, exact p
    normal = _normal_repeated(p, _info(ns), sides)
    null = _null(ns, sides)
    # Monte Carlo p: the share of null studies whose normal-theory repeated p is as small
    return np.minimum(1.0, (np.searchsorted(null, normal, side="right") + 1) / (null.size + 1))


def calibrated_levels(looks: Sequence[int], alpha: float = 0.05, sides: int = 2) -> np.ndarray:
    """Per planned look, the p-value at or below which it rejects under the calibrated design.

    ``repeated_p`` <= alpha exactly when some look's p lies at or below its level here: the
    nominal levels of the total alpha whose normal-theory repeated p the calibration maps to
    ``alpha``. For a test that is not one paired t-test (a principle's composite of intervals),
    running it at look k at this level spends alpha as the claim rows do.
    """
    _check_sides(sides)
    ns = planned_looks(looks)
    if len(ns) == 1:
        return np.array([float(alpha)])
    null = _null(ns, sides)
    # calibrated p = (#null <= q + 1) / (PATHS + 1) <= alpha for q up to the m-th null value
    m = int(math.floor(alpha * (PATHS + 1))) - 1
    if m < 1:
        raise ValueError(f"alpha {alpha!r} is below what {PATHS} simulated studies resolve")
    return nominal_levels(ns, float(null[m - 1]), sides)


def repeated_p(p_by_look: Sequence[float], looks: Sequence[int], sides: int = 2) -> float:
    """Smallest alpha at which one of the looks taken so far rejects, calibrated for t-tests.

    ``p_by_look[j]`` is the ``sides``-sided paired t-test p-value at planned look j; fewer
    p-values than planned looks means the row stopped (or the study has not got further) there.
    With one planned look it is that p-value; with more, the normal-theory repeated p is turned
    into a probability under the null of paired t-tests (df = seeds - 1) at the same looks.
    """
    return float(repeated_p_many(np.asarray([list(p_by_look)], dtype=float), looks, sides)[0])
