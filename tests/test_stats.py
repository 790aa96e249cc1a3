"""Statistics against known values: t quantiles, intervals, sign-flip p, verdicts, tables."""

import math

import numpy as np
import pandas as pd
import pytest

from archlab.analysis.stats import (
    MIN_BOOTSTRAP,
    bootstrap_slope,
    compare_to_baseline,
    edf,
    mean_ci,
    paired_diff,
    pareto_front,
    sign_flip_p,
    summarize,
    t_quantile,
    verdict_from_ci,
)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706204736174703),
        (0.975, 2, 4.302652729911275),
        (0.975, 10, 2.2281388519649385),
        (0.995, 30, 2.749995653567726),
        (0.025, 5, -2.570581835636314),
    ],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-8)


def test_mean_ci_of_1_2_3():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert lo == pytest.approx(-0.4841377, abs=1e-6) and hi == pytest.approx(4.4841377, abs=1e-6)


def test_mean_ci_single_value_and_nan():
    mean, lo, hi = mean_ci([5.0, float("nan")])
    assert mean == 5.0 and math.isnan(lo) and math.isnan(hi)


def test_constant_shift_gives_zero_width_ci():
    b = np.array([90.0, 91.5, 89.0, 92.0])
    r = paired_diff(b + 0.5, b, n_boot=2000)
    assert r.n == 4
    assert r.ci_lo == pytest.approx(0.5) and r.ci_hi == pytest.approx(0.5)
    assert r.t_lo == pytest.approx(0.5) and r.t_hi == pytest.approx(0.5)
    assert r.verdict == "better"
    assert r.p_value == pytest.approx(2 / 16)  # only the identity and the all-flip are as extreme


def test_exact_sign_flip_p_small_cases():
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(0.25)
    assert sign_flip_p([1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.125)
    assert sign_flip_p([1.0, -1.0]) == pytest.approx(1.0)


def test_monte_carlo_sign_flip_for_many_pairs():
    p = sign_flip_p(np.ones(20), n_mc=5000)  # 2**20 > 100000: Monte Carlo
    assert 0 < p < 0.001


def test_verdict_words_and_lower_is_better_flip():
    assert verdict_from_ci(0.1, 0.5) == "better"
    assert verdict_from_ci(-0.5, -0.1) == "worse"
    assert verdict_from_ci(-0.1, 0.5) == "inconclusive"
    assert verdict_from_ci(-0.5, -0.1, higher_is_better=False) == "better"
    assert verdict_from_ci(0.1, 0.5, higher_is_better=False) == "worse"
    b = np.array([0.30, 0.32, 0.28, 0.31, 0.29])
    assert paired_diff(b - 0.05, b, higher_is_better=False).verdict == "better"
    assert paired_diff(b - 0.05, b).verdict == "worse"


def test_fewer_than_two_pairs_is_inconclusive():
    r = paired_diff([91.0], [90.0])
    assert r.n == 1 and r.mean_diff == 1.0 and r.verdict == "inconclusive"
    assert math.isnan(r.ci_lo)


def test_no_bootstrap_interval_over_few_seeds():
    # All three differences positive: a percentile bootstrap would exclude 0 (it covers ~75%
    # with 3 values); below MIN_BOOTSTRAP values the interval shown is the t interval.
    r = paired_diff([0.1, 0.5, 2.0], [0.0, 0.0, 0.0], n_boot=4000)
    assert (r.ci_lo, r.ci_hi) == (r.t_lo, r.t_hi)
    assert r.t_lo < 0
    assert r.verdict == "inconclusive"
    # with enough pairs the bootstrap is computed (it differs from the t interval)
    many = paired_diff(np.linspace(0.1, 2.0, MIN_BOOTSTRAP), np.zeros(MIN_BOOTSTRAP), n_boot=4000)
    assert many.ci_lo > 0 and many.ci_lo != many.t_lo


def test_pareto_front_hand_made():
    df = pd.DataFrame(
        {
            "macs": [1.0, 2.0, 3.0, 4.0, 2.0, np.nan],
            "test_top1_mean": [70.0, 80.0, 75.0, 90.0, 79.0, 99.0],
        }
    )
    assert pareto_front(df).tolist() == [True, True, False, True, False, False]


def test_edf():
    x, f = edf([3.0, 1.0, float("nan"), 2.0])
    assert x.tolist() == [1.0, 2.0, 3.0]
    assert f.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def _runs(rows):
    cols = ["variant", "is_baseline", "group", "seed", "status", "test_top1", "macs"]
    return pd.DataFrame(rows, columns=cols)


def test_summarize_counts_diverged_and_failed():
    runs = _runs(
        [
            ("a", True, "", 0, "complete", 90.0, 100),
            ("a", True, "", 1, "complete", 92.0, 100),
            ("a", True, "", 2, "diverged", 10.0, 100),
            ("a", True, "", 3, "failed", np.nan, 100),
            ("b", False, "", 0, "diverged", np.nan, 50),
        ]
    )
    s = summarize(runs, metrics=["test_top1"]).set_index("variant")
    assert s.loc["a", ["n_runs", "n_complete", "n_diverged", "n_failed"]].tolist() == [4, 2, 1, 1]
    assert s.loc["a", "test_top1_mean"] == pytest.approx(91.0)  # diverged 10.0 not averaged in
    assert s.loc["b", "n_diverged"] == 1 and math.isnan(s.loc["b", "test_top1_mean"])
    assert s.loc["b", "macs"] == 50


def test_compare_to_baseline_pairs_on_seed():
    runs = _runs(
        [
            ("base", True, "", 0, "complete", 90.0, 100),
            ("base", True, "", 1, "complete", 91.0, 100),
            ("base", True, "", 2, "complete", 92.0, 100),
            ("v", False, "", 0, "complete", 91.0, 72),
            ("v", False, "", 1, "complete", 92.0, 72),
            ("v", False, "", 2, "diverged", 10.0, 72),  # not complete: seed 2 unpaired
            ("v", False, "", 3, "complete", 50.0, 72),  # no baseline run: dropped
        ]
    )
    c = compare_to_baseline(runs, n_boot=500).set_index("variant")
    assert c.loc["v", "n_pairs"] == 2
    assert c.loc["v", "mean_diff"] == pytest.approx(1.0)
    assert c.loc["v", "macs_ratio"] == pytest.approx(0.72)
    assert c.loc["v", "baseline"] == "base"


def test_compare_uses_group_baseline_else_global():
    rows = []
    for seed in range(3):
        rows += [
            ("base", True, "", seed, "complete", 90.0 + seed, 100),
            ("g1_base", True, "g1", seed, "complete", 80.0 + seed, 100),
            ("g1_v", False, "g1", seed, "complete", 81.0 + seed, 100),
            ("g2_v", False, "g2", seed, "complete", 88.0 + seed, 100),
        ]
    c = compare_to_baseline(_runs(rows), n_boot=500).set_index("variant")
    assert c.loc["g1_v", "baseline"] == "g1_base"
    assert c.loc["g1_v", "mean_diff"] == pytest.approx(1.0)
    assert c.loc["g2_v", "baseline"] == "base"
    assert c.loc["g2_v", "mean_diff"] == pytest.approx(-2.0)
    assert c.loc["g2_v", "verdict"] == "worse"
    assert "g1_base" not in c.index  # a baseline is the reference, never a row


def test_bootstrap_slope_recovers_a_linear_trend():
    rng = np.random.default_rng(1)
    x = np.tile([0.0, 1.0, 2.0, 3.0], 5)
    seeds = np.repeat(np.arange(5), 4)
    y = 2.0 * x + rng.normal(0, 0.1, x.size)
    r = bootstrap_slope(x, y, seeds, n_boot=500)
    assert r.slope == pytest.approx(2.0, abs=0.1)
    assert 0 < r.ci_lo < 2.0 < r.ci_hi
    assert r.n_clusters == 5 and r.n_points == 20


def test_slope_interval_is_honest_with_three_seeds():
    # Per-seed slopes 1, 2 and 6: every bootstrap resample has a positive slope, but three
    # replicates this spread cannot rule out zero.
    x = np.tile([0.0, 1.0], 3)
    y = np.array([0.0, 1.0, 0.0, 2.0, 0.0, 6.0])
    r = bootstrap_slope(x, y, np.repeat([0, 1, 2], 2), n_boot=500)
    assert r.slope == pytest.approx(3.0)
    assert (r.ci_lo, r.ci_hi) == (r.t_lo, r.t_hi)  # no cluster bootstrap over 3 seeds
    assert r.t_lo < 0 and r.lo == r.t_lo
