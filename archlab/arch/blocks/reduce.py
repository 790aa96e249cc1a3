"""Grid reductions on the ``grid_reduction`` axis (paper Section 5, Figs. 9 and 10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from archlab.arch.blocks.conv import ConvBN
from archlab.arch.blocks.modules import BranchConcat, Ctx, Step, numbered
from archlab.arch.spec import GRID_REDUCTION


@dataclass(frozen=True)
class ReductionPlan:
    """What one grid reduction must produce.

    ``kind`` "B" is torchvision's InceptionB (35 -> 17), "D" its InceptionD (17 -> 8);
    ``widths`` are the parallel form's native conv widths; ``ratio`` is the bottleneck_ratio.
    """

    kind: Literal["B", "D"]
    widths: dict[str, int]
    ratio: float
    valid: bool  # torchvision's unpadded stride-2 layout; small images pad to halve exactly

    @property
    def pad(self) -> int:
        """Padding of the stride-2 3x3 convs and pools."""
        return 0 if self.valid else 1

    def conv_out(self) -> int:
        """Channels the parallel form's conv branches produce at ratio 1."""
        w = self.widths
        return w["b3"] + (w["dbl"] if self.kind == "B" else w["b7"])

    def scaled(self, width: int) -> int:
        """A conv width scaled by the bottleneck ratio."""
        return max(1, round(self.ratio * width))


def _maxpool(plan: ReductionPlan) -> nn.Module:
    return nn.MaxPool2d(3, stride=2, padding=plan.pad)


@GRID_REDUCTION.register(
    "parallel",
    description="stride-2 conv branches and a pool branch in parallel, concatenated",
    paper="Fig. 10",
)
def parallel(cin: int, plan: ReductionPlan, ctx: Ctx) -> BranchConcat:
    """torchvision's InceptionB/D; conv branches scale with the ratio, the pool passes cin."""
    w, p = plan.widths, plan.pad
    if plan.kind == "B":
        b3, dbl = plan.scaled(w["b3"]), plan.scaled(w["dbl"])
        branches: list[list[Step]] = [
            [("branch3x3", ConvBN(cin, b3, 3, stride=2, padding=p))],
            [
                ("branch3x3dbl_1", ConvBN(cin, w["dbl_red"], 1)),
                # a factorized stride-2 5x5: its join is the factor_act axis
                ("branch3x3dbl_2", ctx.join.first(w["dbl_red"], dbl, 3, padding=1)),
                ("branch3x3dbl_3", ConvBN(dbl, dbl, 3, stride=2, padding=p)),
            ],
            [("maxpool", _maxpool(plan))],
        ]
        return BranchConcat(branches, b3 + dbl + cin)
    b3, b7, r7 = plan.scaled(w["b3"]), plan.scaled(w["b7"]), w["b7_red"]
    nxn = ctx.conv_nxn.layers(r7, r7, r7, ctx.n, join=ctx.join)
    branches = [
        [
            ("branch3x3_1", ConvBN(cin, w["b3_red"], 1)),
            ("branch3x3_2", ConvBN(w["b3_red"], b3, 3, stride=2, padding=p)),
        ],
        [
            ("branch7x7x3_1", ConvBN(cin, r7, 1)),
            *numbered("branch7x7x3_", 2, nxn),
            (f"branch7x7x3_{2 + len(nxn)}", ConvBN(r7, b7, 3, stride=2, padding=p)),
        ],
        [("maxpool", _maxpool(plan))],
    ]
    return BranchConcat(branches, b3 + b7 + cin)


def _total(cin: int, plan: ReductionPlan) -> int:
    # the sequential forms output what the parallel form would at ratio 1, times the ratio
    return plan.scaled(cin + plan.conv_out())


@GRID_REDUCTION.register(
    "pool_conv",
    description="max-pool then 3x3 conv: 1/4 the cost of conv_pool, but a bottleneck",
    paper="Fig. 9 left",
)
def pool_conv(cin: int, plan: ReductionPlan, ctx: Ctx) -> BranchConcat:
    """Pool first, then widen at the coarse grid."""
    cout = _total(cin, plan)
    steps: list[Step] = [("maxpool", _maxpool(plan)), ("conv", ConvBN(cin, cout, 3, padding=1))]
    return BranchConcat([steps], cout)


@GRID_REDUCTION.register(
    "conv_pool",
    description="3x3 conv at the fine grid then max-pool: no bottleneck, 4x the cost of pool_conv",
    paper="Fig. 9 right",
)
def conv_pool(cin: int, plan: ReductionPlan, ctx: Ctx) -> BranchConcat:
    """Widen at the fine grid first, then pool."""
    cout = _total(cin, plan)
    steps: list[Step] = [("conv", ConvBN(cin, cout, 3, padding=1)), ("maxpool", _maxpool(plan))]
    return BranchConcat([steps], cout)
