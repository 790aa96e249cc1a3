"""The principle analyses on constructed runs: each design's statistic and its verdict."""

import numpy as np
import pandas as pd
import pytest

from archlab.analysis.principles import SPEED_MARGIN, analyze
from archlab.report.principles import render_balance_text, run_principle

SEEDS = range(6)


def _runs(cells: list[dict], effect, macs=lambda c: 40e6, sd: float = 0.1) -> pd.DataFrame:
    """One row per cell and seed: top-1 = 90 + effect(cell) + a seed offset + noise."""
    rng = np.random.default_rng(0)
    rows = []
    for c in cells:
        for seed in SEEDS:
            rows.append(
                {
                    **c,
                    "variant": ",".join(f"{k}={v}" for k, v in c.items()) or "baseline",
                    "seed": seed,
                    "status": "complete",
                    "macs": macs(c),
                    "run_key": f"{c}-{seed}",
                    "test_top1": 90 + effect(c) + 0.3 * seed + rng.normal(0, sd),
                }
            )
    return pd.DataFrame(rows)


SQUEEZE = [{"squeeze_at": "none", "squeeze_ratio": 1.0}] + [
    {"squeeze_at": p, "squeeze_ratio": r}
    for p in ("stem", "stage_a", "stage_b")
    for r in (0.125, 0.25, 0.5)
]


@pytest.mark.parametrize(
    ("loss", "evidence"),
    [
        ({"stem": 1.0, "stage_a": 0.6, "stage_b": 0.2}, "agrees"),  # hurts, most early
        ({"stem": 0.2, "stage_a": 0.6, "stage_b": 1.0}, "disagrees"),  # hurts most late
        ({"stem": -0.5, "stage_a": -0.5, "stage_b": -0.5}, "disagrees"),  # a squeeze helps
        ({"stem": 0.0, "stage_a": 0.0, "stage_b": 0.0}, "inconclusive"),
    ],
)
def test_principle1_squeeze_design_tests_loss_and_interaction(loss: dict, evidence: str) -> None:
    def effect(c: dict) -> float:
        return -loss.get(c["squeeze_at"], 0.0) * -np.log2(c["squeeze_ratio"])

    res = analyze(1, _runs(SQUEEZE, effect))
    assert res.evidence == evidence
    stem = res.facts["slopes"]["stem"]
    assert stem.lo < loss["stem"] < stem.hi  # the fit recovers the loss per halving
    inter = res.facts["early_minus_late"]
    assert inter.value == pytest.approx(loss["stem"] - loss["stage_b"], abs=0.15)


def test_principle1_hurting_as_much_late_as_early_is_smaller_than_claimed() -> None:
    """The squeeze hurts, and the early-minus-late interval straddles 0 inside the margin."""
    loss = {"stem": 0.5, "stage_a": 0.6, "stage_b": 0.6}
    res = analyze(
        1,
        _runs(
            SQUEEZE,
            lambda c: -loss.get(c["squeeze_at"], 0.0) * -np.log2(c["squeeze_ratio"]),
            sd=0.3,
        ),
    )
    inter, i90 = res.facts["early_minus_late"], res.facts["early_minus_late_90"]
    assert res.facts["mean"].lo > 0 and inter.lo < 0 < inter.hi  # hurts; not especially early
    assert -res.facts["margin"] < i90.lo and i90.hi < res.facts["margin"]
    assert res.evidence == "smaller than claimed"


REDUCE = [{"reduce_ratio": r} for r in (0.125, 0.25, 0.5, 1.0)]


@pytest.mark.parametrize(
    ("drops", "evidence", "smallest"),
    [
        ({0.125: 3.0, 0.25: 0.1, 0.5: 0.0}, "agrees", 0.25),
        ({0.125: 3.0, 0.25: 2.5, 0.5: 2.0}, "disagrees", None),
    ],
)
def test_principle3_at_equal_macs_finds_the_smallest_equivalent_ratio(
    drops: dict, evidence: str, smallest
) -> None:
    runs = _runs(REDUCE, lambda c: -drops.get(c["reduce_ratio"], 0.0), macs=lambda c: 40e6)
    runs["macs"] *= 1 + 0.01 * runs["reduce_ratio"]  # solved widths: within 2%, not identical
    res = analyze(3, runs)
    assert (res.evidence, res.facts["smallest"]) == (evidence, smallest)
    assert [ok for *_, ok in res.facts["tost"]] == [abs(drops[r]) < 0.5 for r in (0.125, 0.25, 0.5)]
    for r, d, _, ok in res.facts["tost"]:
        lo, hi = res.facts["ci90"][r]  # what the figure draws as the TOST interval
        assert d.lo < lo < d.mean < hi < d.hi  # a 90% interval inside the 95% one
        assert not ok or -res.facts["margin"] < lo < hi < res.facts["margin"]


def test_principle4_vertex_of_a_quadratic_in_log_depth() -> None:
    depths = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    cells = [{"depth_mult": d, "width_mult": 1.0 / d**0.5} for d in depths]
    # concave in log2(depth), peaking at depth 1.5
    res = analyze(4, _runs(cells, lambda c: -2.0 * (np.log2(c["depth_mult"] / 1.5)) ** 2))
    v = res.facts["vertex"]
    assert v["curvature"].hi < 0
    assert v["depth"].lo < 1.5 < v["depth"].hi and v["depth"].value == pytest.approx(1.5, rel=0.1)
    assert res.evidence == "agrees"
    flat = analyze(4, _runs(cells, lambda c: 0.0))
    assert flat.evidence == "inconclusive"
    assert res.facts["lr"] == {}  # one learning rate for all: nothing to name


def test_principle4_names_each_members_learning_rate_when_they_differ() -> None:
    depths = (0.5, 1.0, 2.0)
    cells = [{"depth_mult": d, "width_mult": 1.0 / d**0.5, "lr": 0.05 * d} for d in depths]
    res = analyze(4, _runs(cells, lambda c: 0.0))
    assert res.facts["lr"] == {0.5: 0.025, 1.0: 0.05, 2.0: 0.1}
    text = render_balance_text(res)
    chosen = "learning rate per member, chosen on validation: d=0.5: 0.025, d=1: 0.05, d=2: 0.1"
    assert chosen in text


@pytest.mark.parametrize(
    ("faster", "noise", "evidence"),
    [
        (2.0, 1.0, "agrees"),
        (-2.0, 1.0, "disagrees"),
        (0.0, 1.0, "equivalent"),  # same speed, measured well: inside +-SPEED_MARGIN epochs
        (0.0, 12.0, "inconclusive"),  # same speed, too noisy to rule out a difference
    ],
)
def test_principle2_at_equal_macs_pairs_epochs_to_a_fixed_threshold(
    faster: float, noise: float, evidence: str, tmp_path
) -> None:
    runs, curves = _speed_study(faster, noise)
    res = analyze(2, runs, curves, curve="val_top1", threshold=80.0)
    assert res.evidence == evidence
    assert (res.facts["speed_tost_p"] < 0.05) == (evidence == "equivalent")
    text = run_principle(2, runs, curves, tmp_path, curve="val_top1", threshold=80.0).verdict
    assert text.startswith(f"{evidence}: ") and f"inside ±{SPEED_MARGIN:.2f} epochs" in text
    speed = res.facts["paired_speed"]
    # 20 points to climb: 2.5 epochs at 8/epoch vs 2.0 at 10/epoch (or 3.33 at 6/epoch)
    expected = 20 / (8 + faster) - 20 / 8
    assert speed.lo < expected < speed.hi
    band = res.facts["curve_band"].set_index(["coarse_module", "epoch"])
    assert len(band) == 20 and (band["n"] == len(SEEDS)).all()
    gap = band.loc[("expanded", 10.0), "mean"] - band.loc[("plain", 10.0), "mean"]
    assert gap == pytest.approx(10 * faster, abs=1.5)  # the curves the figure draws


def test_principle2_looked_at_every_round_is_judged_anytime_valid(tmp_path) -> None:
    runs, curves = _speed_study(0.0, 2.0)  # 6 seeds: TOST p 0.005 fixed, 0.15 anytime
    fixed = analyze(2, runs, curves, curve="val_top1", threshold=80.0)
    seq = analyze(2, runs, curves, curve="val_top1", threshold=80.0, sequential=True)
    assert (fixed.evidence, seq.evidence) == ("equivalent", "inconclusive")
    assert seq.facts["anytime"] and not fixed.facts["anytime"]
    assert seq.facts["speed_tost_p"] > fixed.facts["speed_tost_p"]
    a, b = fixed.facts["paired_speed"], seq.facts["paired_speed"]
    assert a.mean == pytest.approx(b.mean) and b.lo <= a.lo and b.hi >= a.hi
    text = run_principle(
        2, runs, curves, tmp_path, curve="val_top1", threshold=80.0, sequential=True
    ).verdict
    assert "anytime-valid (a 95% confidence sequence)" in text


def test_principle2_width_sweep_reads_each_seeds_slope_as_a_sequence(tmp_path) -> None:
    """Wider coarse grids climb faster; anytime-valid, 16 seeds decide it and 5 cannot."""

    def sweep(seeds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        cells = [{"coarse_module": "plain", "width_mult": w} for w in (0.5, 1.0, 2.0)]
        runs = _seeded(cells, lambda c: 0.0, seeds)
        rng = np.random.default_rng(2)
        curves = pd.DataFrame(
            {
                "run_key": r.run_key,
                "epoch": e,
                "train_top1": 60 + (8 + 2 * np.log2(r.width_mult)) * e + rng.normal(0, 1.0),
            }  # fmt: skip
            for r in runs.itertuples()
            for e in range(1, 11)
        )
        return runs, curves

    runs, curves = sweep(16)
    seq = analyze(2, runs, curves, threshold=80.0, sequential=True)
    assert seq.facts["anytime"] and seq.evidence == "agrees"
    fixed = analyze(2, runs, curves, threshold=80.0)
    assert seq.facts["speed"].lo < fixed.facts["speed"].lo  # the sequence is the wider
    text = run_principle(2, runs, curves, tmp_path, threshold=80.0, sequential=True).verdict
    assert "anytime-valid 95% confidence sequences" in text
    few = analyze(2, *sweep(5), threshold=80.0, sequential=True)
    assert few.evidence == "inconclusive"


def _speed_study(faster: float, noise: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two coarse modules at equal MACs whose validation curves climb at different rates."""
    # the expanded bank's validation curve climbs `faster` points an epoch more than the plain
    cells = [{"coarse_module": "expanded", "width_mult": 1.0}]
    cells.append({"coarse_module": "plain", "width_mult": 1.02})
    runs = _runs(
        cells, lambda c: 0.0, macs=lambda c: 40e6 * (1 + (c["coarse_module"] == "plain") / 100)
    )
    rng = np.random.default_rng(1)
    curves = pd.DataFrame(
        {
            "run_key": r.run_key,
            "epoch": e,
            "val_top1": 60
            + (8 + faster * (r.coarse_module == "expanded")) * e
            + rng.normal(0, noise),
        }
        for r in runs.itertuples()
        for e in range(1, 11)
    )
    return runs, curves


def _seeded(cells: list[dict], effect, seeds: int, sd: float = 0.3) -> pd.DataFrame:
    """Like ``_runs`` over ``seeds`` seeds, with independent noise per run."""
    rng = np.random.default_rng(7)
    rows = [
        {
            **c,
            "variant": ",".join(f"{k}={v}" for k, v in c.items()),
            "seed": seed,
            "status": "complete",
            "macs": 40e6,
            "run_key": f"{c}-{seed}",
            "test_top1": 90 + effect(c) + 0.3 * seed + rng.normal(0, sd),
        }
        for c in cells
        for seed in range(seeds)
    ]
    return pd.DataFrame(rows)


def _squeeze_loss(loss: dict):
    return lambda c: -loss.get(c["squeeze_at"], 0.0) * -np.log2(c["squeeze_ratio"])


DEPTHS = [{"depth_mult": d, "width_mult": 1.0 / d**0.5} for d in (0.5, 1.0, 1.5, 2.0, 3.0)]


@pytest.mark.parametrize(
    ("n", "cells", "effect", "evidence"),
    [
        (1, SQUEEZE, _squeeze_loss({"stem": 1.0, "stage_a": 0.6, "stage_b": 0.2}), "agrees"),
        (1, SQUEEZE, _squeeze_loss({"stem": 0.2, "stage_a": 0.6, "stage_b": 1.0}), "disagrees"),
        (3, REDUCE, lambda c: -{0.125: 3.0, 0.25: 0.1}.get(c["reduce_ratio"], 0.0), "agrees"),
        (
            3,
            REDUCE,
            lambda c: -{0.125: 3.0, 0.25: 2.5, 0.5: 2.0}.get(c["reduce_ratio"], 0.0),
            "disagrees",
        ),  # fmt: skip
        (4, DEPTHS, lambda c: -1.5 * (c["depth_mult"] != 1.0), "agrees"),  # interior best
        (4, DEPTHS, lambda c: -0.8 * c["depth_mult"], "disagrees"),  # shallowest best
    ],
)
def test_each_anytime_form_decides_with_seeds_and_not_with_five(n, cells, effect, evidence):
    """Anytime-valid principle verdicts: decided on 16 seeds, never on 5 (the sequence is open)."""

    def runs(seeds: int) -> pd.DataFrame:
        df = _seeded(cells, effect, seeds)
        if n == 3:  # solved widths: MACs within 2%, the equal-MACs (TOST) design
            df["macs"] *= 1 + 0.01 * df["reduce_ratio"]
        return df

    many = analyze(n, runs(16), sequential=True)
    assert many.facts["anytime"] is True
    assert many.evidence == evidence
    assert analyze(n, runs(5), sequential=True).evidence == "inconclusive"
    assert analyze(n, runs(5)).evidence == evidence  # where the fixed design decides


def test_principle4_anytime_leaves_the_vertex_undecisive() -> None:
    """A concave fit decides a fixed design; the vertex has no anytime-valid form."""
    cells = [{"depth_mult": d, "width_mult": 1.0 / d**0.5} for d in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)]
    runs = _seeded(cells, lambda c: -2.0 * (np.log2(c["depth_mult"] / 1.5)) ** 2, 5)
    fixed, seq = analyze(4, runs), analyze(4, runs, sequential=True)
    assert fixed.evidence == "agrees"
    assert seq.facts["vertex"] is not None  # still fitted and shown
    # five seeds leave every confidence sequence unbounded: only the vertex could have decided
    assert all(p.lo == -np.inf for _, p in seq.facts["rivals"])
    assert seq.evidence == "inconclusive"


def test_principle1_smallest_representation_slope_as_a_sequence() -> None:
    """The min_repr design: each seed's own slope, anytime-valid; 16 seeds decide, 5 cannot."""
    cells = [{"min_repr": r} for r in (0.125, 0.25, 0.5, 1.0)]

    def runs(seeds: int) -> pd.DataFrame:
        return _seeded(cells, lambda c: 0.5 * np.log2(c["min_repr"]), seeds)

    seq = analyze(1, runs(16), sequential=True)
    assert seq.facts["anytime"] and seq.evidence == "agrees"
    assert seq.facts["slope"].lo < analyze(1, runs(16)).facts["slope"].lo
    assert analyze(1, runs(5), sequential=True).evidence == "inconclusive"
