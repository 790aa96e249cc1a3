"""Claims as data: exact cost ratios, evidence rules, and matching comparison rows to claims."""

from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from archlab.analysis.claims import (
    CLAIMS,
    Claim,
    analytic_ratio,
    check_cost,
    get_claim,
    judge,
)
from archlab.analysis.evidence import evaluate_claims
from archlab.analysis.matching import match, normalize
from archlab.analysis.stats import compare_to_baseline
from archlab.arch.cost import complexity, fvcore_conv_macs, measured_block_ratios
from archlab.arch.models import default_spec
from archlab.arch.spec import AXES

SEEDS = (0, 1, 2, 3)
BASE_SPEC = {
    "conv5x5": "3x3x2_sqrt",
    "conv_nxn": "1xn_nx1",
    "factor_act": "relu",
    "stem": "3x3x3",
    "grid_reduction": "parallel",
    "aux_head": "aux",
    "coarse_module": "expanded",
    "n": 7,
    "label_smoothing": 0.1,
    "resize": np.nan,
}


def make_runs(
    variants: dict[str, tuple[dict, float, int]], seeds: Iterable[int] = SEEDS
) -> pd.DataFrame:
    """variants: label -> (spec changes, top-1 shift vs baseline, macs); seed noise is shared."""
    rows = []
    for label, (changes, shift, macs) in {"baseline": ({}, 0.0, 1000), **variants}.items():
        for seed in seeds:
            rows.append(
                {
                    **BASE_SPEC,
                    **changes,
                    "variant": label,
                    "is_baseline": label == "baseline",
                    "seed": seed,
                    "status": "complete",
                    "run_key": f"{label}-{seed}",
                    "scale": "quick",
                    "macs": macs,
                    # Same per-seed noise for every variant: a paired comparison sees the shift.
                    "test_top1": 90.0 + 0.3 * seed + shift + 0.01 * (seed % 2),
                }
            )
    return pd.DataFrame(rows)


def claims_for(runs: pd.DataFrame, ids, **kw) -> pd.DataFrame:
    comps = compare_to_baseline(runs, n_boot=1000)
    return evaluate_claims(ids, runs, comparisons=comps, **kw)


COST_CLAIMS = [c.id for c in CLAIMS.values() if c.kind == "cost"]
C, GRID = 16, 14  # equal in/out channels: the setting every cost claim of the paper states


def _block_macs(axis: str, option: str, n: int) -> int:
    """fvcore's conv MACs of one registered factorization option, C -> C channels at n x n."""
    layers = AXES[axis].get(option).layers(C, C, C, n)
    return fvcore_conv_macs(nn.Sequential(*layers), torch.zeros(1, C, GRID, GRID))


def _reduction_macs(option: str, stage: str) -> int:
    """MACs of a grid-reduction stage of the mini model built with ``option`` (fvcore)."""
    spec = default_spec("inception_mini").replace(grid_reduction=option)
    return complexity("inception_mini", spec).by_stage[stage]["macs"]


@pytest.mark.parametrize("cid", COST_CLAIMS)
def test_cost_claims_agree_with_macs_counted_on_built_blocks(cid):
    """The ratio comes from fvcore on archlab's blocks, not from the claim's own constant."""
    claim = get_claim(cid)
    if claim.axis == "grid_reduction":
        # whole models: each reduction stage of conv_pool against pool_conv, same widths
        ratios = [
            _reduction_macs(claim.option, s) / _reduction_macs(claim.reference, s)
            for s in ("reduction_1", "reduction_2")
        ]
    else:
        n = claim.n or {"conv5x5": 5, "conv_nxn": 7}[claim.axis]
        ratios = [
            _block_macs(claim.axis, claim.option, n) / _block_macs(claim.axis, claim.reference, n)
        ]
    for measured in ratios:
        assert check_cost(claim, measured) == "agrees", f"{cid}: counted {measured}"
    # the figure reports show is the same count
    assert check_cost(claim, measured_block_ratios()[cid]) == "agrees"
    assert analytic_ratio(cid) == claim.expected


def test_check_cost_is_exact():
    claim = get_claim("conv5x5_cost")
    assert check_cost(claim, 0.72) == "agrees"
    assert check_cost(claim, 0.72 + 1e-12) == "agrees"
    assert check_cost(claim, 0.7201) == "disagrees"
    assert check_cost(claim, float("nan")) == "inconclusive"
    with pytest.raises(ValueError):
        check_cost(get_claim("stem_7x7"), 1.0)


def test_every_claim_is_well_formed():
    for claim in CLAIMS.values():
        assert claim.kind in ("cost", "accuracy")
        assert isinstance(claim.expected, Fraction) == (claim.kind == "cost")
    with pytest.raises(KeyError, match="valid"):
        get_claim("nope")


@pytest.mark.parametrize(
    ("expected", "lo", "hi", "margin", "evidence"),
    [
        ("better", 0.1, 0.5, 0, "agrees"),
        ("better", -0.5, -0.1, 0, "disagrees"),
        ("better", -0.1, 0.5, 0, "inconclusive"),
        ("worse", -0.5, -0.1, 0, "agrees"),
        ("no_worse", -0.3, 0.2, 0.5, "agrees"),
        ("no_worse", -0.9, -0.6, 0.5, "disagrees"),
        ("no_worse", -0.9, 0.2, 0.5, "inconclusive"),
        ("not_better", -0.2, 0.4, 0.5, "agrees"),
        ("close", -1.0, 1.0, 1.5, "agrees"),
        ("close", -3.0, -2.0, 1.5, "disagrees"),
        ("better", float("nan"), float("nan"), 0, "inconclusive"),
    ],
)
def test_judge(expected, lo, hi, margin, evidence):
    assert judge(expected, lo, hi, margin) == evidence


def test_normalize_numbers_and_missing():
    assert normalize(0.10) == "0.1" == normalize("0.1")
    assert normalize(79.0) == "79" and normalize(0.0) == "0"
    assert normalize(float("nan")) == "none" == normalize(None)
    assert normalize("5x5") == "5x5"


def test_reversed_row_is_oriented_to_the_claim():
    # The study's baseline is the paper's choice (3x3x2); the variant is the old 5x5, 1 pt worse.
    runs = make_runs({"conv5x5=5x5": ({"conv5x5": "5x5"}, -1.0, 1300)})
    table = claims_for(runs, ["conv5x5_acc", "conv5x5_cost", "factor_act"]).set_index("claim")
    assert "factor_act" not in table.index  # no comparison tests it: skipped
    acc = table.loc["conv5x5_acc"]
    assert acc["ours"].startswith("+1.00 pt")
    assert "n=4 seeds, quick scale" in acc["ours"]
    assert acc["evidence"] == "agrees"
    assert acc["comparison"] == "conv5x5=5x5 vs baseline"
    cost = table.loc["conv5x5_cost"]
    assert cost["evidence"] == "agrees"
    assert "whole-net MACs ratio 0.769" in cost["ours"]  # 1000/1300: oriented option/reference


def test_measured_cost_ratio_decides_the_cost_claim():
    runs = make_runs({"conv5x5=5x5": ({"conv5x5": "5x5"}, -1.0, 1300)})
    table = claims_for(runs, ["conv5x5_cost"], cost_ratios={"conv5x5_cost": 0.75})
    assert table["evidence"].tolist() == ["disagrees"]


def test_accuracy_claim_that_disagrees():
    runs = make_runs({"stem=7x7": ({"stem": "7x7"}, +1.2, 900)})
    row = claims_for(runs, ["stem_7x7"]).iloc[0]
    assert row["ours"].startswith("\u22121.20 pt")  # the paper's choice is 1.2 pt worse here
    assert row["evidence"] == "disagrees"


def test_a_row_that_stopped_before_the_plan_grew_is_judged_as_it_stopped():
    seeds = range(8)
    runs = make_runs({"stem=7x7": ({"stem": "7x7"}, -0.8, 900)}, seeds)
    # five seeds favour the paper's stem; the three after them do not
    noise = dict(enumerate([0.5, -0.4, 0.3, -0.5, 0.2, 1.5, 1.4, 1.6]))
    late = runs["variant"] == "stem=7x7"
    runs.loc[late, "test_top1"] += runs.loc[late, "seed"].map(noise)
    label = "stem=7x7 vs baseline"
    stopped = [{"claim": "stem_7x7", "comparison": label, "looks": [3, 4, 5], "n": 5}]
    short = claims_for(runs, ["stem_7x7"], looks=[3, 4, 5]).iloc[0]
    longer = claims_for(runs, ["stem_7x7"], looks=range(3, 13)).iloc[0]
    kept = claims_for(runs, ["stem_7x7"], looks=range(3, 13), stopped=stopped).iloc[0]
    assert (short["evidence"], short["n"], short["look"]) == ("agrees", 5, 3)
    assert longer["evidence"] == "smaller than claimed" and longer["n"] == 8
    assert (kept["evidence"], kept["n"], kept["look"]) == ("agrees", 5, 3)
    assert kept["estimate"] == pytest.approx(short["estimate"])
    assert kept["ours"].endswith("decided at look 3 of 3..5 seeds, kept when the plan grew")


def test_an_open_row_with_more_seeds_than_a_fixed_design_needs_says_why():
    runs = make_runs({"stem=7x7": ({"stem": "7x7"}, -0.7, 900)}, range(5))
    late = runs["variant"] == "stem=7x7"
    noise = dict(enumerate([0.5, -0.4, 0.3, -0.5, 0.2]))
    runs.loc[late, "test_top1"] += runs.loc[late, "seed"].map(noise)
    row = claims_for(runs, ["stem_7x7"], looks=[3, 4, 5]).iloc[0]
    assert row["evidence"] == "inconclusive" and row["seeds_needed"] <= row["n"] == 5
    assert "but the look-adjusted and Holm-adjusted test needs more" in row["ours"]


def test_confounded_variant_is_listed_without_a_verdict():
    runs = make_runs({"conv5x5=5x5,stem=7x7": ({"conv5x5": "5x5", "stem": "7x7"}, -1.0, 1000)})
    table = claims_for(runs, ["conv5x5_acc", "stem_7x7"]).set_index("claim")
    assert table["evidence"].tolist() == ["confounded", "confounded"]
    assert table.loc["conv5x5_acc", "ours"] == "also differs in stem"
    assert table.loc["stem_7x7", "ours"] == "also differs in conv5x5"
    assert table["estimate"].isna().all()  # no number, no verdict


def test_recipe_field_confounds_unless_the_claim_brings_it_along():
    # the old progression row: RMSProp and smoothing vs the SGD baseline, scored as smoothing
    both = {"label_smoothing": 0.0, "optimizer": "rmsprop", "lr": 0.045}
    runs = make_runs({"+ls": (both, -0.4, 1000)})
    runs["optimizer"] = runs["optimizer"].fillna("sgd")
    runs["lr"] = runs["lr"].fillna(0.1)
    row = claims_for(runs, ["label_smoothing"]).iloc[0]
    assert (row["evidence"], row["ours"]) == ("confounded", "also differs in optimizer, lr")
    # RMSProp comes with its learning rate (the claim's `along`): a clean RMSProp test
    rms = make_runs({"+rmsprop": ({"optimizer": "rmsprop", "lr": 0.045}, 0.5, 1000)})
    rms["optimizer"] = rms["optimizer"].fillna("sgd")
    rms["lr"] = rms["lr"].fillna(0.1)
    row = claims_for(rms, ["rmsprop"]).iloc[0]
    assert row["evidence"] == "agrees" and row["comparison"] == "+rmsprop vs baseline"


def test_numeric_axis_and_knob_differences():
    # Label smoothing off (0.0) vs the paper's 0.1; an iso-MAC width change does not confound.
    runs = make_runs(
        {"label_smoothing=0": ({"label_smoothing": 0.0, "width_mult": 1.1}, -0.4, 1000)}
    )
    row = claims_for(runs, ["label_smoothing"]).iloc[0]
    assert row["ours"].startswith("+0.40 pt")
    assert row["evidence"] == "agrees"


def test_knob_change_without_matched_macs_is_confounded():
    # principle 2's old mistake: plain at width 0.5 vs expanded at width 1.0 (4x the MACs)
    # scored as an expanded-bank test; only an iso-MAC width change may come along
    plain = {"coarse_module": "plain", "width_mult": 0.5}
    runs = make_runs({"plain,w=0.5": (plain, -3.0, 250)})
    row = claims_for(runs, ["expanded_bank"]).iloc[0]
    assert (row["evidence"], row["ours"]) == ("confounded", "also differs in width_mult")
    iso = make_runs({"plain,w=1.1": ({"coarse_module": "plain", "width_mult": 1.1}, -0.5, 1050)})
    assert len(claims_for(iso, ["expanded_bank"])) == 1


def test_claim_found_from_labels_when_column_missing():
    runs = make_runs({"factor_act=linear": ({}, -1.0, 1000)}).drop(columns=["factor_act"])
    # The baseline's value is unknown from the label "baseline": the claim cannot be matched.
    assert claims_for(runs, ["factor_act"]).empty
    runs["variant"] = runs["variant"].replace({"baseline": "factor_act=relu"})
    row = claims_for(runs, ["factor_act"]).iloc[0]
    assert row["evidence"] == "agrees"


def _curves(runs: pd.DataFrame, early_gain: float, final_gain: float) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples():
        aux = r.variant != "baseline"
        for epoch in range(1, 11):
            gain = (early_gain if epoch <= 3 else final_gain) if aux else 0.0
            acc = 50 + 4 * epoch + 0.2 * r.seed + gain
            rows.append(
                {
                    "run_key": r.run_key,
                    "variant": r.variant,
                    "seed": r.seed,
                    "epoch": epoch,
                    "test_top1": acc,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("early", "evidence"), [(0.0, "equivalent"), (5.0, "disagrees")])
def test_aux_convergence_uses_early_epochs(early, evidence):
    # The baseline has the (BN) aux head and ends 0.5 pt higher; the variant has none.
    runs = make_runs({"aux_head=none": ({"aux_head": "none"}, -0.5, 1000)})
    curves = _curves(runs, early_gain=-early, final_gain=-0.5)
    early_row, final_row = claims_for(runs, ["aux_converge"], curves=curves).to_dict("records")
    assert early_row["comparison"].endswith("(epoch 3)")
    assert early_row["evidence"] == evidence  # no faster early convergence: within the margin
    assert final_row["evidence"] == "agrees"  # slightly better at the end
    assert final_row["ours"].startswith("+0.50 pt")


def test_principle_verdicts_come_from_extra():
    runs = make_runs({})
    table = claims_for(runs, ["principle1"], extra={"principle1": ("slope +1", "agrees")})
    assert table[["claim", "ours", "evidence"]].values.tolist() == [
        ["principle1", "slope +1", "agrees"]
    ]


# --- matching: option/reference patterns and the kernel-size filter -----------------------------


def _claim(axis: str, option: str, reference: str, n: int | None = None) -> Claim:
    return Claim(
        id="t",
        section="-",
        text="test claim",
        paper_number="-",
        kind="accuracy",
        axis=axis,
        option=option,
        reference=reference,
        expected="better",
        n=n,
    )


def _row(variant: str) -> dict:
    return {"variant": variant, "baseline": "baseline", "macs_ratio": 1.0}


@pytest.mark.parametrize(
    ("option", "reference", "variant_value", "base_value", "sign"),
    [
        ("aux*", "none", "aux_bn", "none", 1),  # "*" inside a name
        ("aux*", "none", "aux", "none", 1),
        ("aux*", "none", "none", "aux_bn", -1),  # reversed row: sign flips
        ("aux*", "none", "aux_bn", "aux", 0),  # both match the option: no test of the claim
        ("pool_conv", "conv_pool|parallel", "pool_conv", "parallel", 1),  # "|" alternatives
        ("pool_conv", "conv_pool|parallel", "conv_pool", "pool_conv", -1),
        ("pool_conv", "conv_pool|parallel", "pool_conv", "plain", 0),
        ("*", "*", "79", "299", 1),  # any two different values
        ("0.1", "0", "0.10", "0.0", 1),  # numbers compare normalized
        ("0.1", "0", "0.2", "0.0", 0),
    ],
)
def test_claim_patterns(option, reference, variant_value, base_value, sign):
    runs = make_runs({"v": ({"x": variant_value}, 0.0, 1000)})
    runs.loc[runs["variant"] == "baseline", "x"] = base_value
    got, confounded = match(_claim("x", option, reference), _row("v"), runs)
    assert (got, confounded) == (sign, [])


@pytest.mark.parametrize(
    ("claim_n", "variant_n", "base_n", "sign"),
    [
        (3, 3, 3, 1),
        (3, 7, 7, 0),  # a claim about 3x3 says nothing about 7x7
        (7, 7, 7, 1),
        (3, 3, 7, 0),  # the kernel size changed too: not this claim's comparison
        (None, 7, 7, 1),  # no n: any kernel size
        (None, 3, 3, 1),
    ],
)
def test_claim_n_filter(claim_n, variant_n, base_n, sign):
    runs = make_runs({"conv_nxn=nxn": ({"conv_nxn": "nxn", "n": variant_n}, 0.0, 1000)})
    runs.loc[runs["variant"] == "baseline", "n"] = base_n
    claim = _claim("conv_nxn", "1xn_nx1", "nxn", n=claim_n)
    assert match(claim, _row("conv_nxn=nxn"), runs)[0] == -sign  # baseline holds the option


def test_n_filter_on_the_papers_claims():
    """nxn_cost (n = 3) and nxn7_cost (n = 7) each pick only their own kernel size's rows."""
    for n, wanted in ((3, "nxn_cost"), (7, "nxn7_cost")):
        runs = make_runs({"conv_nxn=nxn": ({"conv_nxn": "nxn", "n": n}, 0.0, 1300)})
        runs["n"] = n
        table = claims_for(runs, ["nxn_cost", "nxn7_cost"])
        assert table["claim"].tolist() == [wanted]


def test_a_renamed_claim_id_still_resolves():
    # a study planned before the rename stores the old id in its plan
    assert get_claim("aux_bn") is CLAIMS["bn_auxiliary"]
    with pytest.raises(KeyError, match="unknown claim 'nope'"):
        get_claim("nope")


def test_a_pair_differing_in_many_fields_is_not_listed():
    # a search trial: another design in every axis is no attempt at the claim
    many = {"conv5x5": "5x5", "stem": "7x7", "factor_act": "linear", "grid_reduction": "pool_conv"}
    runs = make_runs({"trial 1": (many, -1.0, 900)})
    assert claims_for(runs, ["conv5x5_acc", "stem_7x7"]).empty


@pytest.mark.parametrize(
    ("train_shift", "evidence"),
    [(2.0, "agrees"), (0.0, "equivalent"), (-2.0, "disagrees")],
)
def test_aux_regularizer_judges_the_train_test_gap(train_shift, evidence):
    """Without the head, train top-1 rises by ``train_shift`` at the same test top-1."""
    runs = make_runs({"aux_head=none": ({"aux_head": "none"}, 0.0, 1000)})
    curves = _curves(runs, early_gain=0.0, final_gain=0.0)
    last = curves["epoch"] == curves["epoch"].max()
    # seed-dependent noise, so the paired differences have an SD and the interval a width
    noise = 0.05 * curves["seed"] * (-1) ** curves["seed"]
    curves["train_top1"] = 95.0 + noise
    curves.loc[last & (curves["variant"] != "baseline"), "train_top1"] += train_shift
    (row,) = claims_for(runs, ["aux_regularizer"], curves=curves).to_dict("records")
    assert row["comparison"] == "aux_head=none vs baseline (test − train top-1)"
    assert row["evidence"] == evidence
    assert row["estimate"] == pytest.approx(train_shift, abs=0.2)


def test_aux_regularizer_needs_curves():
    runs = make_runs({"aux_head=none": ({"aux_head": "none"}, 0.0, 1000)})
    assert claims_for(runs, ["aux_regularizer"]).empty
