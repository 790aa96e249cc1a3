"""The paper's claims as data, and how each is judged against our measurements.

A claim names a design ``axis`` (a column of the runs table, e.g. ``conv5x5`` or
``label_smoothing``), the ``option`` it is about and the ``reference`` it is compared with
(fnmatch patterns, ``|`` separates alternatives, ``*`` matches any value). A comparison row
(a variant against its baseline) tests the claim when the two differ on ``axis`` with those
values — in either orientation; a reversed row has its difference negated — and agree on every
other design axis and every recipe field, except the fields the claim names
as going ``along`` with its axis (RMSProp's learning rate) and width/depth knobs the study solved
to equal MACs. A pair that differs in more is *confounded*: listed, never given a verdict
(``archlab.analysis.matching`` matches rows to claims).

Cost claims carry an exact ``Fraction`` checked against a measured ratio (``check_cost``).
Accuracy claims carry an expectation (``better``, ``worse``, ``no_worse``, ``not_better``,
``close``), an equivalence ``margin`` and, where the paper gives one, its effect in points
(``paper_effect``); ``archlab.analysis.evidence`` turns the runs into each row's evidence and
``archlab.analysis.verdicts`` decides it (agrees / disagrees / equivalent / smaller than claimed /
inconclusive). ``judge`` below is the plain interval rule the principle analyses still use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from archlab.analysis.verdicts import DEFAULT_MARGIN
from archlab.arch.blocks.conv import conv_macs


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, with the axis/options that test it and the expected outcome."""

    id: str
    section: str
    text: str
    paper_number: str
    kind: Literal["cost", "accuracy"]
    axis: str
    option: str  # the paper's choice (pattern); "" = judged by a principle study, not a row
    reference: str  # what it is compared with (pattern)
    expected: Fraction | str  # cost: exact option/reference ratio; accuracy: see module doc
    margin: float = DEFAULT_MARGIN  # points of top-1: equivalence (TOST) margin of the claim
    paper_effect: float | None = None  # the paper's effect in points, option minus reference
    early: float | None = None  # judge the curves at this fraction of training instead
    final_expected: str = ""  # with ``early``: expectation for the final difference too
    n: int | None = None  # the kernel size n the claim is about (conv_nxn); None = any
    along: tuple[str, ...] = ()  # fields that change with the axis as the paper changed them
    #: what the per-seed differences are of: final test top-1, or test minus train top-1 (the
    #: train-test gap, negated so that higher is better, as for accuracy)
    metric: Literal["test_top1", "test_minus_train_top1"] = "test_top1"

    @property
    def paper(self) -> str:
        """The claim as the report's "paper" column shows it."""
        return f"{self.text} ({self.paper_number})"


# Analytic ratios from the conv formula on the paper's configurations (C channels, d x d grid).
# The symbols are arbitrary: any C, d give the same ratio, which is the point of the claims.
_C, _D = 64, 16
_ANALYTIC: dict[str, Fraction] = {
    "conv5x5_cost": Fraction(2 * conv_macs(_C, _C, 3, 3, _D, _D), conv_macs(_C, _C, 5, 5, _D, _D)),
    "nxn_cost": Fraction(
        conv_macs(_C, _C, 1, 3, _D, _D) + conv_macs(_C, _C, 3, 1, _D, _D),
        conv_macs(_C, _C, 3, 3, _D, _D),
    ),
    "nxn7_cost": Fraction(
        conv_macs(_C, _C, 1, 7, _D, _D) + conv_macs(_C, _C, 7, 1, _D, _D),
        conv_macs(_C, _C, 7, 7, _D, _D),
    ),
    "2x2_cost": Fraction(2 * conv_macs(_C, _C, 2, 2, _D, _D), conv_macs(_C, _C, 3, 3, _D, _D)),
    # conv (k -> 2k) on the d x d grid then pool, against pool then the same conv on d/2 x d/2.
    "grid_cost": Fraction(
        conv_macs(_C, 2 * _C, 3, 3, _D, _D), conv_macs(_C, 2 * _C, 3, 3, _D // 2, _D // 2)
    ),
}

CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in (
        Claim(
            id="conv5x5_cost",
            section="3.1",
            text="two stacked 3x3 cost (9+9)/25 of one 5x5, same in/out channels",
            paper_number="0.72: 28% saved, params too",
            kind="cost",
            axis="conv5x5",
            option="3x3x2_sqrt",
            reference="5x5",
            expected=Fraction(18, 25),
        ),
        Claim(
            id="conv5x5_acc",
            section="3.1",
            text="5x5 -> two 3x3 (each growing the width by sqrt(alpha)) loses no expressiveness",
            paper_number="no number; used in Inception-v3",
            kind="accuracy",
            axis="conv5x5",
            option="3x3x2_sqrt",
            reference="5x5",
            expected="no_worse",
            margin=0.5,
        ),
        Claim(
            id="nxn_cost",
            section="3.2",
            text="3x3 -> 1x3 then 3x1 costs 6/9",
            paper_number="33% saved (Fig. 3)",
            kind="cost",
            axis="conv_nxn",
            option="1xn_nx1",
            reference="nxn",
            expected=Fraction(2, 3),
            n=3,
        ),
        Claim(
            id="nxn7_cost",
            section="3.2",
            text="n x n -> 1 x n then n x 1 costs 2/n; n = 7 on the 17x17 grid",
            paper_number="2/7 for n = 7 (Fig. 6)",
            kind="cost",
            axis="conv_nxn",
            option="1xn_nx1",
            reference="nxn",
            expected=Fraction(2, 7),
            n=7,
        ),
        Claim(
            id="2x2_cost",
            section="3.2",
            text="3x3 -> two 2x2 costs 8/9",
            paper_number="only 11% saved",
            kind="cost",
            axis="conv_nxn",
            option="2x2x2",
            reference="nxn",
            expected=Fraction(8, 9),
            n=3,
        ),
        Claim(
            id="asym_vs_2x2",
            section="3.2",
            text="1x3 then 3x1 beats two 2x2 in place of a 3x3",
            paper_number="no number ('even better' than 2x2, at 6/9 vs 8/9 of the cost)",
            kind="accuracy",
            axis="conv_nxn",
            option="1xn_nx1",
            reference="2x2x2",
            expected="better",
            n=3,
        ),
        Claim(
            id="asym_early",
            section="3.2",
            text="1 x n + n x 1 does not work well early (module A's grid): worse than the n x n",
            paper_number="no number ('does not work well on early layers')",
            kind="accuracy",
            axis="conv5x5",
            option="1x5_5x1",
            reference="5x5",
            expected="worse",
        ),
        Claim(
            id="nxn_acc",
            section="3.2",
            text="1 x n + n x 1 works well on medium grids (12..20)",
            paper_number="no number; used at 17x17 with n = 7",
            kind="accuracy",
            axis="conv_nxn",
            option="1xn_nx1",
            reference="nxn",
            expected="no_worse",
            margin=0.5,
        ),
        Claim(
            id="factor_act",
            section="3.1",
            text="ReLU between the two factor convs beats a linear one",
            paper_number="77.2% vs 76.2% top-1: +1.0 pt (Fig. 2)",
            kind="accuracy",
            axis="factor_act",
            option="relu",
            reference="linear",
            expected="better",
            paper_effect=1.0,
        ),
        Claim(
            id="stem_7x7",
            section="Table 3",
            text="three 3x3 stem convs beat one 7x7",
            paper_number="top-1 error 22.8% -> 21.6%: +1.2 pt (whole row 3.8 -> 4.8 Bn ops)",
            kind="accuracy",
            axis="stem",
            option="3x3x3",
            reference="7x7",
            expected="better",
            paper_effect=1.2,
        ),
        Claim(
            id="bn_auxiliary",
            section="4 / Table 3",
            text="BN-auxiliary (the head's fully connected layer with BN) beats the plain head",
            paper_number="top-1 error 21.6% -> 21.2%: +0.4 pt",
            kind="accuracy",
            axis="aux_head",
            option="aux",
            reference="aux_nobn",
            expected="better",
            paper_effect=0.4,
        ),
        Claim(
            id="aux_converge",
            section="4",
            text="auxiliary head: no faster early convergence, slightly better at the end",
            paper_number="no number (training curves)",
            kind="accuracy",
            axis="aux_head",
            option="aux*",
            reference="none",
            expected="not_better",
            margin=1.0,
            early=0.3,
            final_expected="better",
        ),
        Claim(
            id="aux_regularizer",
            section="4",
            text=(
                "auxiliary classifiers act as regularizers: the train-test gap is smaller with "
                "the head (test minus last-epoch train top-1 of the main head)"
            ),
            paper_number="no number (Sec. 4)",
            kind="accuracy",
            axis="aux_head",
            option="aux*",
            reference="none",
            expected="better",
            metric="test_minus_train_top1",
        ),
        Claim(
            id="grid_cost",
            section="5",
            text=(
                "conv then pool costs 4x pool then conv: our single 3x3 conv k -> 2k "
                "(the paper's Fig. 9 layout gives 3x)"
            ),
            paper_number="paper: 3x for its layout; we check 4x",
            kind="cost",
            axis="grid_reduction",
            option="conv_pool",
            reference="pool_conv",
            expected=Fraction(4),
        ),
        Claim(
            id="grid_pool_conv",
            section="5",
            text="pool then conv is cheap but a representational bottleneck",
            paper_number="no number (Fig. 9)",
            kind="accuracy",
            axis="grid_reduction",
            option="pool_conv",
            reference="conv_pool|parallel",
            expected="worse",
        ),
        Claim(
            id="grid_parallel",
            section="5",
            text="parallel stride-2 conv + pool is cheap and bottleneck-free",
            paper_number="no number (Fig. 10)",
            kind="accuracy",
            axis="grid_reduction",
            option="parallel",
            reference="conv_pool",
            expected="no_worse",
            margin=0.5,
        ),
        Claim(
            id="expanded_bank",
            section="6",
            text="expanded filter bank at the coarsest grid helps",
            paper_number="no number (Fig. 7; principle 2)",
            kind="accuracy",
            axis="coarse_module",
            option="expanded",
            reference="plain",
            expected="better",
        ),
        Claim(
            id="rmsprop",
            section="8 / Table 3",
            text="RMSProp (decay 0.9, eps 1.0, lr 0.045) beats the v2 baseline's SGD",
            paper_number="top-1 error 23.4% -> 23.1%: +0.3 pt",
            kind="accuracy",
            axis="optimizer",
            option="rmsprop",
            reference="sgd",
            expected="better",
            paper_effect=0.3,
            along=("lr", "rmsprop_decay", "rmsprop_eps", "grad_clip", "schedule", "exp_gamma"),
        ),
        Claim(
            id="label_smoothing",
            section="7",
            text="label smoothing eps = 0.1 improves top-1",
            paper_number="about +0.2 pt top-1 and top-5",
            kind="accuracy",
            axis="label_smoothing",
            option="0.1",
            reference="0",
            expected="better",
            paper_effect=0.2,
        ),
        Claim(
            id="lowres",
            section="9 / Table 2",
            text="lower input resolution at equal compute ends close",
            paper_number="79x79 vs 299x299: 75.2% vs 76.6% (-1.4 pt)",
            kind="accuracy",
            axis="resize",
            option="*",
            reference="*",
            expected="close",
            margin=1.5,
            # Sec. 9: the network changes only in its first layers' stride, which keeps the grids
            along=("stem_stride",),
        ),
        Claim(
            id="principle1",
            section="2",
            text="avoid representational bottlenecks, especially early",
            paper_number="no number",
            kind="accuracy",
            axis="min_repr",
            option="",
            reference="",
            expected="better",
        ),
        Claim(
            id="principle2",
            section="2",
            text="higher-dimensional representations train faster",
            paper_number="no number",
            kind="accuracy",
            axis="coarse_width",
            option="",
            reference="",
            expected="faster",
        ),
        Claim(
            id="principle3",
            section="2",
            text="spatial aggregation over 1x1-reduced embeddings loses little",
            paper_number="no number",
            kind="accuracy",
            axis="reduce_ratio",
            option="",
            reference="",
            expected="no_worse",
            margin=1.0,
        ),
        Claim(
            id="principle4",
            section="2",
            text="balance width and depth",
            paper_number="no number",
            kind="accuracy",
            axis="depth_mult",
            option="",
            reference="",
            expected="interior_best",
        ),
        Claim(
            id="balance_vs_depth",
            section="2",
            text=(
                "principle 4 as worded: twice the compute spent on width and depth together "
                "beats spending it on depth alone (3 modules per stage, widened, vs 5 at width 1)"
            ),
            paper_number="no number",
            kind="accuracy",
            axis="depth_mult",
            option="1.5",
            reference="2.5",
            expected="better",
        ),
        Claim(
            id="balance_vs_width",
            section="2",
            text=(
                "principle 4 as worded: twice the compute spent on width and depth together "
                "beats spending it on width alone (3 modules per stage vs 2, both widened)"
            ),
            paper_number="no number",
            kind="accuracy",
            axis="depth_mult",
            option="1.5",
            reference="1",
            expected="better",
        ),
    )
}


#: Claim ids renamed since results were stored: a study's stored plan may name the old one.
RENAMED = {"aux_bn": "bn_auxiliary"}


def get_claim(claim_id: str) -> Claim:
    """The claim with this id, or its new id's (KeyError lists the valid ids)."""
    try:
        return CLAIMS[RENAMED.get(claim_id, claim_id)]
    except KeyError:
        raise KeyError(f"unknown claim {claim_id!r}; valid: {', '.join(CLAIMS)}") from None


def analytic_ratio(claim_id: str) -> Fraction:
    """A cost claim's ratio derived from the convolution MAC formula."""
    return _ANALYTIC[claim_id]


def check_cost(claim: Claim, measured_ratio: float) -> str:
    """ "agrees" iff the measured ratio equals the claim's exact ratio within 1e-9."""
    if claim.kind != "cost":
        raise ValueError(f"claim {claim.id!r} is not a cost claim")
    if measured_ratio is None or not math.isfinite(measured_ratio):
        return "inconclusive"
    return "agrees" if abs(measured_ratio - float(claim.expected)) <= 1e-9 else "disagrees"


def judge(expected: str, lo: float, hi: float, margin: float = 0.0) -> str:
    """Evidence for an accuracy expectation given an interval of the difference (points)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    rules = {
        "better": (lo > 0, hi < 0),
        "worse": (hi < 0, lo > 0),
        "no_worse": (lo > -margin, hi < -margin),
        "not_better": (hi < margin, lo > margin),
        "close": (-margin < lo and hi < margin, hi < -margin or lo > margin),
    }
    if expected not in rules:
        raise ValueError(f"unknown expectation {expected!r}; valid: {', '.join(rules)}")
    agrees, disagrees = rules[expected]
    return "agrees" if agrees else "disagrees" if disagrees else "inconclusive"


def combine(evidence: Iterable[str]) -> str:
    """One disagreement outweighs, then any doubt; "agrees" only when every part agrees."""
    parts = list(evidence)
    if "disagrees" in parts:
        return "disagrees"
    return "agrees" if parts and all(p == "agrees" for p in parts) else "inconclusive"


# --- rendering numbers -------------------------------------------------------------------------


def signed(x: float, digits: int = 2) -> str:
    """+0.31 / −0.12 (a true minus sign), or "n/a"."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:+.{digits}f}".replace("-", "\u2212")
