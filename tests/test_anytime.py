"""Tests for archlab.analysis.anytime: the closed form against its integral, and the error rates
of the anytime-valid tests under looks after every seed, however long a study goes on."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from archlab.analysis.anytime import (
    PRIOR_G,
    SeedLook,
    confidence_sequence,
    e_value,
    p_values,
    seed_looks,
    t_threshold,
)
from archlab.analysis.verdicts import VERDICTS, RowEvidence, decide, paired_look

ALPHA = 0.05
STUDIES = 2000  # null studies per simulation (Monte Carlo SE of a 5% rate: 0.5 pt)
SEEDS = 60  # a look after every seed, 2..60: far past any plan a study would make


def _looks(d: np.ndarray) -> list[SeedLook]:
    """A look after every seed: running mean and own SD."""
    n = np.arange(1, d.size + 1)
    mean = np.cumsum(d) / n
    sq = np.cumsum(d * d)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(sq - n * mean**2, 0.0) / (n - 1))
    return [SeedLook(int(k), float(m), float(s)) for k, m, s in zip(n, mean, sd, strict=True)]


def test_seed_looks_are_the_running_mean_and_sd():
    d = np.random.default_rng(3).normal(0.2, 0.5, 12)
    got, want = seed_looks(d), _looks(d)
    assert [lk.n for lk in got] == list(range(1, 13)) and math.isnan(got[0].sd)
    for a, b in zip(got[1:], want[1:], strict=True):
        assert (a.mean, a.sd) == pytest.approx((b.mean, b.sd), rel=1e-12)


def _studies(mu: float, sd: float, seed: int) -> list[list[SeedLook]]:
    rng = np.random.default_rng(seed)
    return [_looks(mu + sd * rng.standard_normal(SEEDS)) for _ in range(STUDIES)]


@pytest.mark.parametrize(("n", "t"), [(2, 0.5), (5, 2.0), (12, -3.1), (40, 1.2)])
def test_the_closed_form_is_the_mixture_of_noncentral_t_likelihood_ratios(n: int, t: float):
    # the right-Haar Bayes factor is the likelihood ratio of the t statistic: noncentral t with
    # noncentrality delta sqrt(n), mixed over delta ~ N(0, g)
    def integrand(delta: float) -> float:
        ratio = stats.nct.pdf(t, n - 1, delta * math.sqrt(n)) / stats.t.pdf(t, n - 1)
        return ratio * stats.norm.pdf(delta, scale=math.sqrt(PRIOR_G))

    mixed, _ = integrate.quad(integrand, -12, 12, limit=200)
    look = SeedLook(n, t / math.sqrt(n), 1.0)  # mean / (sd / sqrt(n)) = t
    assert e_value(look) == pytest.approx(mixed, rel=1e-5)


def test_the_threshold_is_where_e_reaches_one_over_alpha_and_few_seeds_cannot():
    for n in (6, 10, 30):
        t = t_threshold(n, ALPHA)
        assert e_value(SeedLook(n, t / math.sqrt(n), 1.0)) == pytest.approx(1 / ALPHA)
    assert t_threshold(5, ALPHA) == math.inf  # 5 seeds: E is at most (1 + 2.5)^2 = 12.25
    same = SeedLook(5, 0.3, 0.0)  # identical differences: the bounded limit, not infinity
    assert e_value(same) == pytest.approx((1 + 5 * PRIOR_G) ** 2)
    assert e_value(SeedLook(1, 0.3, math.nan)) == 1.0


@pytest.mark.parametrize("sd", [0.5, 3.0])
def test_looking_after_every_seed_keeps_false_positives_below_alpha(sd: float):
    studies = _studies(0.0, sd, seed=11)
    rejected = np.mean([p_values(s, 0.5, None)[0] < ALPHA for s in studies])
    assert rejected <= ALPHA
    # the planned-looks procedure it replaces would be far above alpha with the raw t-test here
    naive = np.mean([any(_p_t(lk) < ALPHA for lk in s[1:]) for s in studies[:300]])
    assert naive > 3 * ALPHA


def _p_t(lk: SeedLook) -> float:
    return float(2 * stats.t.sf(abs(lk.mean / (lk.sd / math.sqrt(lk.n))), lk.n - 1))


def test_equivalence_and_smaller_than_claimed_hold_alpha_at_their_boundaries():
    # true difference exactly at the margin: "equivalent" is a false positive
    at_margin = _studies(0.5, 0.5, seed=12)
    assert np.mean([p_values(s, 0.5, None)[1] < ALPHA for s in at_margin]) <= ALPHA
    # true difference exactly the paper's number: "smaller than claimed" is a false positive
    at_paper = _studies(1.0, 0.5, seed=13)
    assert np.mean([p_values(s, 0.5, 1.0)[2] < ALPHA for s in at_paper]) <= ALPHA


def test_the_confidence_sequence_covers_the_truth_at_every_seed_at_once():
    studies = _studies(0.3, 0.5, seed=14)
    missed = [
        any(not lo <= 0.3 <= hi for lo, hi in (confidence_sequence(s[:k]) for k in (5, 10, 60)))
        for s in studies[:500]
    ]
    assert np.mean(missed) <= ALPHA
    lo, hi = confidence_sequence(studies[0])
    assert lo < 0.3 < hi and hi - lo < 0.6  # and it narrows: 60 seeds of SD 0.5


def test_a_real_effect_is_decided_and_decisions_never_undo_as_seeds_are_added():
    studies = _studies(0.5, 0.5, seed=15)[:200]
    decided = [
        next((k for k in range(2, SEEDS + 1) if p_values(s[:k], 0.5, None)[0] < ALPHA), 0)
        for s in studies
    ]
    assert np.mean([k > 0 for k in decided]) > 0.9  # delta = 1: nearly always within 60 seeds
    for s, k in zip(studies[:20], decided[:20], strict=True):
        if k:  # the running maximum: once below alpha, below it at every later seed count
            assert all(p_values(s[:m], 0.5, None)[0] < ALPHA for m in range(k, SEEDS + 1))


def _diffs(mean: float, sd: float, n: int, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


def _row(expected: str, d: np.ndarray, paper: float | None = None) -> RowEvidence:
    looks = [paired_look(d[:k]) for k in range(1, d.size + 1)]
    return RowEvidence(expected, looks, margin=0.5, paper=paper)


# (expected, differences, paper) -> verdict, judged anytime-valid
CASES = {
    "agrees": ("better", _diffs(1.0, 0.4, 12), 1.0),
    "disagrees": ("better", _diffs(-1.0, 0.4, 12), 1.0),
    "equivalent": ("no_worse", _diffs(0.0, 0.3, 30), None),
    "smaller than claimed": ("better", _diffs(0.45, 1.2, 40, seed=3), 3.0),
    "inconclusive": ("better", _diffs(0.3, 0.5, 8), 1.0),
}


@pytest.mark.parametrize("want", VERDICTS)
def test_each_verdict_anytime_valid(want: str):
    expected, d, paper = CASES[want]
    v = decide([_row(expected, d, paper)], [5], method="anytime")[0]
    assert v.verdict == want, v
    assert v.ci_lo <= v.mean <= v.ci_hi
    if want != "inconclusive":
        assert 2 <= v.look <= d.size  # the seed count at which it was first decided


def test_anytime_needs_more_seeds_than_a_fixed_test_and_names_its_interval():
    d = _diffs(1.0, 0.4, 5)
    fixed = decide([RowEvidence("better", [paired_look(d)])], [5])[0]
    anytime = decide([_row("better", d)], [5], method="anytime")[0]
    assert (fixed.verdict, anytime.verdict) == ("agrees", "inconclusive")
    assert (anytime.ci_lo, anytime.ci_hi) == (-math.inf, math.inf)  # 5 seeds cannot reach 1/20
    with pytest.raises(ValueError, match="method must be one of"):
        decide([_row("better", d)], [5], method="bayes")
