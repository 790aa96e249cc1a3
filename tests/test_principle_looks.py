"""Principle verdicts over a study's planned looks: the look that decides, its level, the 5%."""

import numpy as np
import pandas as pd
import pytest

from archlab.analysis.principle_looks import LOOK_FACT, common_seeds, judge_over_looks
from archlab.analysis.principles import LEVELLED, PRINCIPLES, analyze
from archlab.analysis.sequential import calibrated_levels
from tests.test_principles import SQUEEZE

SEEDS = 8


def _squeeze_runs(loss: float, sd: float, seeds: int, rng: np.random.Generator) -> pd.DataFrame:
    """Principle 1's iso-MAC squeeze design: each halving costs ``loss`` pt, at every place."""
    rows = []
    for c in SQUEEZE:
        halvings = -np.log2(c["squeeze_ratio"])
        for seed in range(seeds):
            rows.append(
                {
                    **c,
                    "variant": f"{c['squeeze_at']}={c['squeeze_ratio']}",
                    "seed": seed,
                    "status": "complete",
                    "macs": 40e6,
                    "run_key": f"{c}-{seed}",
                    "test_top1": 90 - loss * halvings + rng.normal(0, sd),
                }
            )
    return pd.DataFrame(rows)


def test_without_looks_it_is_the_plain_analysis() -> None:
    runs = _squeeze_runs(0.5, 0.3, SEEDS, np.random.default_rng(0))
    res = judge_over_looks(1, runs, looks=None)
    assert LOOK_FACT not in res.facts
    assert res.facts["mean"] == analyze(1, runs).facts["mean"]


def test_a_clear_effect_is_decided_at_the_first_look_on_its_seeds_only() -> None:
    runs = _squeeze_runs(1.0, 0.2, SEEDS, np.random.default_rng(1))
    res = judge_over_looks(1, runs, looks=[3, 4, 5, 6, 7, 8])
    look = res.facts[LOOK_FACT]
    assert res.evidence != "inconclusive"
    assert look == {
        "look": 1,
        "of": 6,
        "seeds": 3,
        "level": pytest.approx(calibrated_levels([3, 4, 5, 6, 7, 8])[0]),
        "decided": True,
    }
    # the first look's analysis: 3 seeds at the look's level, wider than 95% on the same seeds
    first = runs[runs["seed"] < 3]
    at95 = analyze(1, first).facts["mean"]
    assert res.facts["mean"].value == pytest.approx(at95.value)
    assert res.facts["mean"].hi - res.facts["mean"].lo > at95.hi - at95.lo


def test_an_open_verdict_reports_its_last_look_reached() -> None:
    runs = _squeeze_runs(0.0, 0.3, SEEDS, np.random.default_rng(2))
    res = judge_over_looks(1, runs, looks=[3, 5, 10])  # 8 seeds reach looks 3 and 5, not 10
    look = res.facts[LOOK_FACT]
    assert res.evidence == "inconclusive"
    assert (look["look"], look["of"], look["seeds"], look["decided"]) == (2, 3, 5, False)


def test_seeds_missing_in_any_variant_are_not_looked_at() -> None:
    runs = _squeeze_runs(0.5, 0.3, 6, np.random.default_rng(3))
    runs.loc[(runs["variant"] == "stem=0.5") & (runs["seed"] == 2), "status"] = "failed"
    assert common_seeds(runs) == [0, 1, 3, 4, 5]
    res = judge_over_looks(1, runs, looks=[5])
    assert res.facts[LOOK_FACT]["seeds"] == 5


def test_an_anytime_study_reads_every_interval_as_a_confidence_sequence() -> None:
    runs = _squeeze_runs(0.5, 0.3, SEEDS, np.random.default_rng(4))
    planned = judge_over_looks(1, runs, looks=[4, 8], method="planned")
    anytime = judge_over_looks(1, runs, looks=[4, 8], method="anytime")
    assert LOOK_FACT in planned.facts and not planned.facts["anytime"]
    assert LOOK_FACT not in anytime.facts and anytime.facts["anytime"]
    fixed = analyze(1, runs).facts["mean"]
    seq = anytime.facts["mean"]
    assert seq.value == pytest.approx(fixed.value)  # balanced: the seeds' fits average to it
    assert seq.lo < fixed.lo and fixed.hi < seq.hi  # and the sequence is wider
    assert set(LEVELLED) == set(PRINCIPLES) - {2}


def test_principle2_uses_its_anytime_form_under_planned_looks() -> None:
    rows = []
    for module in ("expanded", "plain"):
        for seed in range(SEEDS):
            rows.append(
                {
                    "coarse_module": module,
                    "width_mult": 1.0,
                    "variant": module,
                    "seed": seed,
                    "status": "complete",
                    "macs": 40e6,
                    "run_key": f"{module}-{seed}",
                    "test_top1": 90.0 + 0.1 * seed,
                }
            )
    curves = pd.DataFrame(
        [
            {"run_key": f"{m}-{s}", "epoch": e, "train_top1": 60 + 10 * e + (m == "plain")}
            for m in ("expanded", "plain")
            for s in range(SEEDS)
            for e in range(1, 4)
        ]
    )
    res = judge_over_looks(2, pd.DataFrame(rows), curves, looks=[4, 8], method="planned")
    assert res.facts["anytime"] is True
    assert LOOK_FACT not in res.facts


@pytest.mark.slow
def test_looks_keep_the_false_positive_rate_that_a_look_at_95_each_time_breaks() -> None:
    """Null studies of principle 1 (no squeeze costs anything), looked at after every seed."""
    rng = np.random.default_rng(20151202)
    looks, studies = [3, 4, 5, 6], 300
    wrong = naive = 0
    for _ in range(studies):
        runs = _squeeze_runs(0.0, 0.3, looks[-1], rng)
        res = judge_over_looks(1, runs, looks=looks)
        wrong += res.evidence in ("agrees", "disagrees")
        at95 = [analyze(1, runs[runs["seed"] < k]).evidence for k in looks]
        naive += any(e in ("agrees", "disagrees") for e in at95)
    print(f"false verdicts: {wrong / studies:.1%} over the looks, {naive / studies:.1%} at 95%")
    # binomial SE at 5% over 300 studies: 1.3 points; every look at 95% spends 5% each time
    assert wrong / studies <= 0.05 + 2 * 0.013
    assert naive > wrong
