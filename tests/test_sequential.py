"""Tests for archlab.analysis.sequential: the exact linear-spending boundaries against a Monte
Carlo of the Brownian motion they assume, and the repeated p-value built on them."""

import numpy as np
import pytest
from scipy import stats

from archlab.analysis.sequential import (
    boundaries,
    calibrated_levels,
    nominal_levels,
    repeated_p,
    repeated_p_many,
)


@pytest.mark.parametrize("sides", [1, 2])
@pytest.mark.parametrize("looks", [[5, 6, 7, 8, 9, 10], [3, 7, 10], [5, 10]])
def test_each_look_spends_its_share_of_alpha(looks: list[int], sides: int) -> None:
    """P(first crossing at look k) = alpha * (n_k - n_{k-1}) / n_K, by 400,000 simulated paths."""
    paths, alpha = 400_000, 0.05
    steps = np.random.default_rng(sides * 100 + len(looks)).standard_normal((paths, looks[-1]))
    z = np.cumsum(steps, axis=1)[:, np.array(looks) - 1] / np.sqrt(looks)
    crossed = (np.abs(z) if sides == 2 else z) >= boundaries(looks, alpha, sides)
    first = crossed & (np.cumsum(crossed, axis=1) == 1)
    want = alpha * np.diff([0, *looks]) / looks[-1]
    se = np.sqrt(want * (1 - want) / paths)
    assert np.all(np.abs(first.mean(axis=0) - want) < 4 * se), (first.mean(axis=0), want)


def test_first_boundary_is_closed_form_and_later_levels_beat_the_union_bound() -> None:
    looks = [5, 6, 7, 8, 9, 10]
    c = boundaries(looks, 0.05)
    assert c[0] == pytest.approx(stats.norm.isf(0.05 * 0.5 / 2))
    union = 0.05 * np.diff([0, *looks]) / looks[-1]
    levels = nominal_levels(looks, 0.05)
    # looks share most seeds, so each later look may test at far more than its increment
    assert levels[0] == pytest.approx(union[0]) and np.all(levels[1:] > 2.5 * union[1:])
    assert np.all(nominal_levels(looks, 0.05, sides=1) > levels / 2)


def test_one_look_is_the_plain_p_value() -> None:
    assert repeated_p([0.031], [10]) == pytest.approx(0.031)
    assert boundaries([10], 0.05) == pytest.approx([stats.norm.isf(0.025)])


def test_repeated_p_rejects_exactly_where_a_look_crosses_its_level() -> None:
    looks = [5, 6, 7, 8, 9, 10]
    levels = nominal_levels(looks, 0.05)
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 0.06, (400, len(looks)))
    crossed = (p <= levels).any(axis=1)
    rep = repeated_p_many(p, looks)
    # calibrated for t-tests it is a little stricter than the normal-theory levels, never laxer
    assert not np.any((rep < 0.05) & ~crossed)
    assert np.mean(crossed & (rep < 0.05)) > 0.8 * np.mean(crossed)


def test_repeated_p_only_falls_as_looks_are_added_and_stays_in_range() -> None:
    looks = list(range(5, 13))
    ps = [0.3, 0.08, 0.2, 0.02, 0.5, 0.004, 0.9, 0.6]
    reps = [repeated_p(ps[:k], looks) for k in range(1, len(looks) + 1)]
    assert all(b <= a for a, b in zip(reps, reps[1:], strict=False))
    assert all(0 < r <= 1 for r in reps)
    assert repeated_p([1.0, 1.0], looks) == 1.0
    assert repeated_p([], looks) == 1.0
    assert repeated_p([0.0], looks) == pytest.approx(1 / 200_001)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: boundaries([0, 3], 0.05), "looks"),
        (lambda: boundaries([], 0.05), "looks"),
        (lambda: boundaries([5, 10], 0.0), "alpha"),
        (lambda: repeated_p([0.1], [5, 10], sides=3), "sides"),
    ],
)
def test_bad_designs_are_named(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("looks", [[5], [3, 4, 5, 6], [5, 6, 7, 8, 9, 10]])
def test_calibrated_levels_are_where_the_repeated_p_crosses_alpha(looks) -> None:
    """A p just under a look's level makes the repeated p reach 5%; just over it does not."""
    levels = calibrated_levels(looks)
    assert len(levels) == len(looks)
    for j, level in enumerate(levels):
        p = [1.0] * j
        assert repeated_p([*p, level * 0.99], looks) <= 0.05 < repeated_p([*p, level * 1.01], looks)
    if len(looks) > 1:
        # the calibration for t-tests asks a little more than the normal theory
        assert (levels < nominal_levels(looks, 0.05)).all()
    else:
        assert levels[0] == 0.05
