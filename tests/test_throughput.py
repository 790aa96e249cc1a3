"""Runs per hour and paired accuracies of whole study runs (archlab.train.throughput)."""

import statistics

import pytest
from scipy import stats

from archlab.train.throughput import paired_accuracy, summarize


def _run(kernels: str, seed: int, wall: float, train: float, top1: float) -> dict:
    return {"kernels": kernels, "seed": seed, "wall_s": wall, "train_s": train, "test_top1": top1}


def test_runs_per_hour_counts_every_worker_and_the_ratio_is_of_mean_run_times() -> None:
    runs = [
        _run("stock", 0, 100.0, 80.0, 89.0),
        _run("tuned", 0, 50.0, 40.0, 89.0),
        _run("stock", 1, 120.0, 90.0, 88.0),
        _run("tuned", 1, 60.0, 45.0, 88.0),
    ]
    out = summarize(runs, n_workers=2)
    assert out["stock"]["mean_wall_s"] == 110.0
    assert out["stock"]["runs_per_hour"] == pytest.approx(2 * 3600 / 110.0)
    assert out["tuned"]["mean_other_s"] == pytest.approx(55.0 - 42.5)
    assert out["ratio"] == pytest.approx(2.0)
    assert out["accuracy"]["identical"] == 2 and out["accuracy"]["within"]


def test_a_seed_without_its_pair_is_refused() -> None:
    runs = [_run("stock", 0, 1.0, 1.0, 50.0), _run("tuned", 1, 1.0, 1.0, 50.0)]
    with pytest.raises(ValueError, match="both trainers"):
        summarize(runs, n_workers=1)


def test_paired_accuracy_interval_is_the_t_interval_of_the_differences() -> None:
    today, new = [88.0, 89.0, 87.5, 88.2], [88.5, 90.1, 88.3, 88.9]
    acc = paired_accuracy(today, new)
    diffs = [b - a for a, b in zip(today, new, strict=True)]
    lo, hi = stats.t.interval(0.95, 3, loc=statistics.fmean(diffs), scale=stats.sem(diffs))
    assert acc["ci95"] == pytest.approx([lo, hi])
    assert acc["identical"] == 0 and acc["within"] is False  # all four differences > 0


def test_paired_accuracy_of_identical_runs_is_exactly_zero() -> None:
    acc = paired_accuracy([88.0, 89.0], [88.0, 89.0])
    assert acc["ci95"] == [0.0, 0.0] and acc["within"] and acc["identical"] == 2


def test_one_differing_seed_has_no_interval() -> None:
    acc = paired_accuracy([88.0], [88.5])
    assert acc["ci95"][1] == float("inf") and acc["within"]
