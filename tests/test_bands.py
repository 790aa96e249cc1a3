"""Fitted relations with their bands: the mean seed's line, its confidence band, curve means."""

import numpy as np
import pandas as pd
import pytest

from archlab.analysis.bands import curve_band, mean_seed_band, quadratic_band, squeeze_band
from archlab.analysis.principles import analyze
from archlab.analysis.stats import mean_ci
from tests.test_principles import SEEDS, SQUEEZE, _runs

LOSS = {"stem": 1.0, "stage_a": 0.6, "stage_b": 0.2}  # pt per halving of the channels kept
SEED_MEAN = 0.3 * np.mean(list(SEEDS))  # _runs adds 0.3 pt per seed number


def _squeeze_fit():
    runs = _runs(SQUEEZE, lambda c: -LOSS.get(c["squeeze_at"], 0.0) * -np.log2(c["squeeze_ratio"]))
    return analyze(1, runs).facts["fit"]


def test_the_band_is_the_confidence_interval_of_the_mean_seed() -> None:
    fit = _squeeze_fit()
    band = mean_seed_band(fit, {"stem": [3.0]})
    # the same line by hand: every seed intercept at 1/k, three halvings at the stem
    vec = np.array([3.0 if n == "stem" else 0.0 for n in fit.model.exog_names])
    vec[[n.startswith("seed=") for n in fit.model.exog_names]] = 1 / len(SEEDS)
    t = fit.t_test(vec)
    lo, hi = np.asarray(t.conf_int(alpha=0.05)).ravel()
    assert band.loc[0, "fit"] == pytest.approx(float(np.ravel(t.effect)[0]))
    assert (band.loc[0, "lo"], band.loc[0, "hi"]) == pytest.approx((lo, hi))
    assert band.loc[0, "lo"] < 90 + SEED_MEAN - 3 * LOSS["stem"] < band.loc[0, "hi"]
    with pytest.raises(ValueError, match="not in the fit"):
        mean_seed_band(fit, {"nowhere": [1.0]})


def test_squeeze_lines_meet_at_no_squeeze_and_fall_by_the_loss() -> None:
    band = squeeze_band(_squeeze_fit(), list(LOSS), [0.125, 0.25, 0.5], n=4)
    assert band["ratio"].iloc[:4].tolist() == pytest.approx([1.0, 0.5, 0.25, 0.125])
    start = band[band["ratio"] == 1.0].set_index("place")["fit"]
    assert start.max() - start.min() < 1e-9  # one baseline for every place
    end = band[band["ratio"] == 0.125].set_index("place")["fit"]
    for place, loss in LOSS.items():
        assert start[place] - end[place] == pytest.approx(3 * loss, abs=0.15)
    assert (band["lo"] < band["fit"]).all() and (band["fit"] < band["hi"]).all()


def test_quadratic_band_peaks_at_the_true_depth() -> None:
    depths = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    cells = [{"depth_mult": d, "width_mult": 1.0 / d**0.5} for d in depths]
    runs = _runs(cells, lambda c: -2.0 * (np.log2(c["depth_mult"] / 1.5)) ** 2)
    band = quadratic_band(analyze(4, runs).facts["vertex"]["fit"], 0.5, 3.0, n=81)
    assert band["depth"].iloc[[0, -1]].tolist() == pytest.approx([0.5, 3.0])
    best = band.loc[band["fit"].idxmax()]
    assert best["depth"] == pytest.approx(1.5, rel=0.05)
    assert best["lo"] < 90 + SEED_MEAN < best["hi"]


def test_curve_band_is_the_mean_and_t_interval_per_module_and_epoch() -> None:
    runs = pd.DataFrame(
        {"run_key": ["a0", "a1", "a2", "b0"], "coarse_module": ["x", "x", "x", "y"]}
    )
    curves = pd.DataFrame(
        {"run_key": k, "epoch": e, "val_top1": 10.0 * e + i}
        for i, k in enumerate(runs["run_key"])
        for e in (1, 2)
    )
    band = curve_band(curves, runs, "coarse_module", "val_top1").set_index(
        ["coarse_module", "epoch"]
    )
    assert band.loc[("x", 2.0), "n"] == 3
    assert tuple(band.loc[("x", 2.0), ["mean", "lo", "hi"]]) == pytest.approx(
        mean_ci([20.0, 21.0, 22.0])
    )
    assert band.loc[("y", 1.0), "mean"] == 13.0 and np.isnan(band.loc[("y", 1.0), "lo"])
    assert curve_band(pd.DataFrame(), runs, "coarse_module", "val_top1").empty
