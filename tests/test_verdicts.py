"""Tests for archlab.analysis.verdicts: each verdict on constructed differences, TOST and Holm
against statsmodels, and the sequential procedure's false-positive rate over repeated looks."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from archlab.analysis.sequential import nominal_levels, repeated_p_many
from archlab.analysis.verdicts import (
    VERDICTS,
    Look,
    RowEvidence,
    decide,
    paired_look,
    seeds_needed,
)


def _diffs(mean: float, sd: float, n: int, seed: int = 0) -> np.ndarray:
    """n values with exactly this sample mean and SD (so the outcome does not hang on luck)."""
    z = np.random.default_rng(seed).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


def _one(expected: str, diffs: np.ndarray, *, paper: float | None = None, margin: float = 0.5):
    row = RowEvidence(expected, [paired_look(diffs)], margin=margin, paper=paper)
    return decide([row], [len(diffs)])[0]


# (expected, mean, sd, n, paper, margin) -> verdict; every verdict word appears at least once
CASES = {
    "agrees": ("better", 1.0, 0.3, 6, 1.0, 0.5),
    "disagrees": ("better", -1.0, 0.3, 6, 1.0, 0.5),
    "equivalent": ("better", 0.02, 0.2, 12, 1.0, 0.5),
    "smaller than claimed": ("better", 0.3, 0.5, 10, 2.0, 0.5),
    "inconclusive": ("better", 0.3, 2.0, 3, 1.0, 0.5),
}


@pytest.mark.parametrize("want", VERDICTS)
def test_each_verdict_on_constructed_differences(want: str) -> None:
    expected, mean, sd, n, paper, margin = CASES[want]
    v = _one(expected, _diffs(mean, sd, n), paper=paper, margin=margin)
    assert v.verdict == want, v


def test_agrees_says_whether_the_paper_number_is_inside_the_interval() -> None:
    inside = _one("better", _diffs(1.0, 0.3, 6), paper=1.0)
    outside = _one("better", _diffs(0.4, 0.05, 6), paper=1.0)
    assert (inside.verdict, inside.paper_in_ci) == ("agrees", True)
    assert (outside.verdict, outside.paper_in_ci) == ("agrees", False)


def test_worse_claims_are_mirrored() -> None:
    assert _one("worse", _diffs(-1.0, 0.3, 6)).verdict == "agrees"
    assert _one("worse", _diffs(1.0, 0.3, 6)).verdict == "disagrees"


def test_no_worse_prefers_equivalence_and_close_rejects_beyond_the_margin() -> None:
    assert _one("no_worse", _diffs(-0.05, 0.2, 12)).verdict == "equivalent"
    assert _one("no_worse", _diffs(-2.0, 0.3, 6)).verdict == "disagrees"
    assert _one("close", _diffs(0.1, 0.3, 12), margin=1.5).verdict == "equivalent"
    assert _one("close", _diffs(-3.0, 0.3, 6), margin=1.5).verdict == "disagrees"
    assert _one("close", _diffs(-1.0, 2.0, 3), margin=1.5).verdict == "inconclusive"


def test_tost_p_matches_statsmodels_ttost_paired() -> None:
    rng = np.random.default_rng(3)
    a, b = 80 + rng.normal(0, 0.3, 8), 80 + rng.normal(0.1, 0.3, 8)
    look = paired_look(a - b)
    ours = max(look.p_greater(-0.5), look.p_less(0.5))
    theirs = ttost_paired(a, b, -0.5, 0.5)[0]
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_direction_p_matches_scipy_paired_t_test() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 7), rng.normal(0.5, 1, 7)
    assert paired_look(a - b).p_two_sided() == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_holm_across_rows_matches_statsmodels() -> None:
    rows = [RowEvidence("better", [paired_look(_diffs(m, 0.5, 6, s))]) for s, m in
            enumerate((0.9, 0.5, 0.3, 0.05))]  # fmt: skip
    raw = [r.looks[0].p_two_sided() for r in rows]
    want = multipletests(raw, alpha=0.05, method="holm")[1]
    got = [v.p_direction for v in decide(rows, [6])]
    assert got == pytest.approx(list(want))
    assert min(raw) < 0.05 and sorted(got) != sorted(raw)  # the adjustment did something


LOOKS = list(range(5, 13))  # first round 5 seeds, then one seed a round up to 12


def _null_p(n_studies: int, seed: int) -> np.ndarray:
    """Two-sided paired t-test p at every look of null studies (true difference 0)."""
    d = np.random.default_rng(seed).standard_normal((n_studies, LOOKS[-1]))
    return np.column_stack([2 * stats.t.sf(np.abs(_t(d[:, :n])), n - 1) for n in LOOKS])


def _t(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) / (x.std(axis=1, ddof=1) / math.sqrt(x.shape[1]))


def test_sequential_looks_keep_false_positives_at_or_below_alpha() -> None:
    """2,000 null studies looked at after every round: the procedure's rate is 5%, not more."""
    p = _null_p(2000, 2024)
    rate = float(np.mean(repeated_p_many(p, LOOKS) < 0.05))
    # its rate is 5% (calibrated), estimated within ~1 pt: it fails when significantly above
    assert stats.binomtest(round(rate * 2000), 2000, 0.05, alternative="greater").pvalue > 0.01
    # the same looks each tested at 5% inflate it: the simulation can tell the difference
    assert np.mean((p < 0.05).any(axis=1)) > 0.08


def test_calibration_for_t_tests_is_what_keeps_the_rate() -> None:
    """100,000 null studies: calibrated <= 5% (+3 SE); the normal-theory levels alone exceed it."""
    p, bound = _null_p(100_000, 7), 0.05 + 3 * math.sqrt(0.05 * 0.95 / 100_000)
    assert np.mean(repeated_p_many(p, LOOKS) < 0.05) <= bound
    assert np.mean((p <= nominal_levels(LOOKS, 0.05)).any(axis=1)) > bound


def test_a_pooled_sd_is_treated_conservatively() -> None:
    """Rows tested on a pooled residual SD (more df) keep the rate: 6 variants, 20k studies."""
    rng = np.random.default_rng(11)
    y = rng.standard_normal((20_000, 6, LOOKS[-1]))  # runs: study x variant x seed
    p = np.empty((len(y), len(LOOKS)))
    for k, n in enumerate(LOOKS):
        x = y[:, :, :n]
        res = (
            x - x.mean(2, keepdims=True) - x.mean(1, keepdims=True) + x.mean((1, 2), keepdims=True)
        )
        df = 5 * (n - 1)
        se = math.sqrt(2) * np.sqrt((res**2).sum((1, 2)) / df) / math.sqrt(n)
        p[:, k] = 2 * stats.t.sf(np.abs((x[:, 1] - x[:, 0]).mean(1) / se), df)
    assert np.mean(repeated_p_many(p, LOOKS) < 0.05) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 20_000)


def test_decide_stops_a_row_exactly_when_its_repeated_p_falls_below_alpha() -> None:
    d = np.random.default_rng(5).normal(0.6, 1.0, (60, LOOKS[-1]))
    p = np.column_stack([2 * stats.t.sf(np.abs(_t(d[:, :n])), n - 1) for n in LOOKS])
    want = repeated_p_many(p, LOOKS) < 0.05
    got = [
        decide([RowEvidence("better", [paired_look(s[:n]) for n in LOOKS])], LOOKS)[0].verdict
        in ("agrees", "disagrees")
        for s in d
    ]
    assert got == list(want) and 0 < sum(got) < len(got)


def test_pooled_sd_replaces_the_pairs_own() -> None:
    d = _diffs(0.2, 1.0, 5)
    own, pooled = paired_look(d), paired_look(d, pooled_sd=0.1, pooled_df=40)
    assert own.se == pytest.approx(1.0 / math.sqrt(5))
    assert pooled.se == pytest.approx(math.sqrt(2) * 0.1 / math.sqrt(5))
    assert pooled.df == 40


def test_seeds_needed_grows_with_noise_and_is_absent_when_undefined() -> None:
    assert seeds_needed(0.3, 1.0) < seeds_needed(0.6, 1.0) < seeds_needed(1.2, 1.0)
    assert seeds_needed(float("nan"), 1.0) is None
    assert seeds_needed(0.3, 0.0) is None


def test_inconclusive_rows_say_how_many_seeds_would_decide_them() -> None:
    v = _one("better", _diffs(0.3, 2.0, 3), paper=1.0)
    assert v.verdict == "inconclusive" and v.seeds_needed > 3 and v.look == 0


def test_invalid_look_is_never_decided() -> None:
    row = RowEvidence("better", [Look(1, 5.0, math.nan, 0, math.nan)])
    assert decide([row], [1])[0].verdict == "inconclusive"


def test_a_row_keeps_the_plan_it_stopped_under() -> None:
    # decided at the last of looks 5..8; judged over looks 5..15 the same seeds read inconclusive
    d = _diffs(1.2, 1.0, 8)
    looks = [paired_look(d[:k]) for k in range(5, 9)]
    short = decide([RowEvidence("better", looks)], range(5, 9))[0]
    longer = decide([RowEvidence("better", looks)], range(5, 16))[0]
    kept = decide([RowEvidence("better", looks, planned=tuple(range(5, 9)))], range(5, 16))[0]
    assert (short.verdict, short.look) == (kept.verdict, kept.look) == ("agrees", 4)
    assert kept.p_direction == pytest.approx(short.p_direction)
    assert longer.verdict == "inconclusive" and longer.p_direction > 0.05
    # beside a row on the longer plan, Holm adjusts the two together as before
    other = RowEvidence("better", [paired_look(_diffs(0.0, 1.0, k, 1)) for k in range(5, 12)])
    pair = decide([RowEvidence("better", looks, planned=tuple(range(5, 9))), other], range(5, 16))
    assert pair[0].p_direction == pytest.approx(min(1.0, 2 * short.p_direction))
