"""The seed-spread split: churn of single images vs whole-run shifts, on constructed matrices."""

from __future__ import annotations

import numpy as np
import pytest

from archlab.analysis.noise import split_noise


def test_small_matrix_by_hand() -> None:
    # 3 seeds x 4 images; image 0 always right, 1 never, 2 twice, 3 once
    c = np.array([[1, 0, 1, 0], [1, 0, 1, 1], [1, 0, 0, 0]])
    s = split_noise(c)
    top1 = np.array([50.0, 75.0, 25.0])
    assert s.seeds == 3 and s.images == 4
    assert s.mean_top1 == pytest.approx(50.0)
    assert s.sd == pytest.approx(np.std(top1, ddof=1))
    # p = (1, 0, 2/3, 1/3): sum p(1-p) = 4/9, times k/(k-1) = 3/2, over n^2 = 16, in pt^2
    assert s.churn_sd == pytest.approx(100 * np.sqrt(4 / 9 * 1.5 / 16))
    assert s.unstable == pytest.approx(50.0)
    assert s.sd_ci[0] < s.sd < s.sd_ci[1]


def test_independent_flips_are_all_churn() -> None:
    """Images flipping independently: the observed variance averages the churn variance."""
    rng = np.random.default_rng(0)
    n, k, studies = 2_000, 5, 400
    p = rng.beta(0.3, 0.05, size=n)  # most images easy, some hard, as in a trained classifier
    ratios, ps = [], []
    for _ in range(studies):
        s = split_noise(rng.random((k, n)) < p)
        ratios.append(s.sd**2 / s.churn_sd**2)
        ps.append(s.p_excess)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.08)
    # the chi-square test holds its level when churn is all there is
    assert np.mean(np.array(ps) < 0.05) == pytest.approx(0.05, abs=0.03)


def test_whole_run_shift_is_detected() -> None:
    """Seeds that each move every image's odds together spread more than churn explains."""
    rng = np.random.default_rng(1)
    n, k = 5_000, 6
    logit = rng.normal(2.5, 2.0, size=n)
    shift = rng.normal(0.0, 0.4, size=(k, 1))  # one per seed: a run landing on a worse point
    c = rng.random((k, n)) < 1 / (1 + np.exp(-(logit + shift)))
    s = split_noise(c)
    assert s.p_excess < 0.01
    assert s.whole_run_sd > s.churn_sd


def test_identical_seeds_have_no_spread() -> None:
    c = np.tile(np.array([1, 0, 1, 1]), (4, 1))
    s = split_noise(c)
    assert s.sd == 0 and s.churn_sd == 0 and s.unstable == 0 and s.whole_run_sd == 0


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((1, 10)), "seeds >= 2"),
        (np.ones(10), "matrix"),
        (np.full((3, 4), 0.5), "only 0/1"),
    ],
)
def test_bad_input_is_named(matrix: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_noise(matrix)
