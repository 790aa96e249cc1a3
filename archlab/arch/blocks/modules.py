"""Inception modules built from branches: A (Fig. 5), B (Fig. 6), C (Fig. 7, coarse_module axis).

Every module is a ``BranchConcat``: branches of named steps whose outputs are concatenated, with
torchvision's attribute names so the full-size model's state_dict matches torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archlab.arch.blocks.conv import ConvBN, Join, PoolConvBN
from archlab.arch.blocks.factorize import Factorization
from archlab.arch.spec import COARSE_MODULE, CONV5X5, CONV_NXN, FACTOR_ACT, ArchSpec

Named = tuple[str, nn.Module]
Step = Named | list[Named]  # a list is a split: parallel layers whose outputs are concatenated


class BranchConcat(nn.Module):
    """Run each branch (a sequence of steps) on the input and concatenate along channels."""

    def __init__(self, branches: Sequence[Sequence[Step]], out_channels: int) -> None:
        super().__init__()
        #: each branch's steps by name; a list of names is a split (outputs concatenated)
        self.plan: list[list[str | list[str]]] = []
        for branch in branches:
            names: list[str | list[str]] = []
            for step in branch:
                group = step if isinstance(step, list) else [step]
                for name, module in group:
                    self.add_module(name, module)
                names.append([n for n, _ in group] if isinstance(step, list) else step[0])
            self.plan.append(names)
        self.out_channels = out_channels
        #: the concatenation; the trainer may swap in one with a faster backward (same numbers)
        self.cat: Callable[..., torch.Tensor] = torch.cat

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for names in self.plan:
            y = x
            for step in names:
                if isinstance(step, list):
                    y = self.cat([self.get_submodule(n)(y) for n in step], 1)
                else:
                    y = self.get_submodule(step)(y)
            outs.append(y)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cat(self._forward(x), 1)


@dataclass(frozen=True)
class Ctx:
    """What the axes decide for every module of one model."""

    conv5x5: Factorization
    conv_nxn: Factorization
    join: Join  # what sits between the convs of every factorized pair
    n: int
    reduce_ratio: float | None

    @classmethod
    def from_spec(cls, spec: ArchSpec) -> Ctx:
        """Resolve the spec's registry names to their objects."""
        return cls(
            CONV5X5.get(spec.conv5x5),
            CONV_NXN.get(spec.conv_nxn),
            FACTOR_ACT.get(spec.factor_act),
            spec.n,
            spec.reduce_ratio,
        )

    def reduce(self, native: int, branch: int) -> int:
        """Width of a 1x1 reduction: native, or reduce_ratio x the branch width."""
        if self.reduce_ratio is None:
            return native
        return max(1, round(self.reduce_ratio * branch))


def numbered(prefix: str, start: int, layers: list[nn.Module]) -> list[Named]:
    """Name layers prefix+start, prefix+(start+1), ... (torchvision's naming)."""
    return [(f"{prefix}{start + i}", m) for i, m in enumerate(layers)]


def pool_branch(cin: int, width: int) -> list[Step]:
    """3x3 average pool then a 1x1 projection (computed in the cheaper, equivalent order)."""
    return [("branch_pool", PoolConvBN(cin, width))]


def module_a(cin: int, w: dict[str, int], ctx: Ctx) -> BranchConcat:
    """35x35 module (torchvision InceptionA); its 5x5 branch is the conv5x5 axis (Figs. 4, 5)."""
    b5_red = ctx.reduce(w["b5_red"], w["b5"])
    dbl_red = ctx.reduce(w["dbl_red"], w["dbl"])
    b5 = ctx.conv5x5.layers(b5_red, w["b5"], w["b5"], 5, join=ctx.join)
    branches: list[list[Step]] = [
        [("branch1x1", ConvBN(cin, w["b1"], 1))],
        [("branch5x5_1", ConvBN(cin, b5_red, 1)), *numbered("branch5x5_", 2, b5)],
        [
            ("branch3x3dbl_1", ConvBN(cin, dbl_red, 1)),
            # the double 3x3 is a factorized 5x5: its join is the factor_act axis
            ("branch3x3dbl_2", ctx.join.first(dbl_red, w["dbl"], 3, padding=1)),
            ("branch3x3dbl_3", ConvBN(w["dbl"], w["dbl"], 3, padding=1)),
        ],
        pool_branch(cin, w["pool"]),
    ]
    return BranchConcat(branches, w["b1"] + w["b5"] + w["dbl"] + w["pool"])


def module_b(cin: int, w: dict[str, int], ctx: Ctx) -> BranchConcat:
    """17x17 module (torchvision InceptionC); its n x n convs are the conv_nxn axis (Fig. 6)."""
    c7 = ctx.reduce(w["c7"], w["b7"])
    f, n = ctx.conv_nxn, ctx.n
    single = f.layers(c7, c7, w["b7"], n, join=ctx.join)
    # two factorized n x n convs in a row: the join sits inside each, a ReLU between them
    double = f.layers(c7, c7, c7, n, join=ctx.join, transpose=True) + f.layers(
        c7, c7, w["b7"], n, join=ctx.join, transpose=True
    )
    branches: list[list[Step]] = [
        [("branch1x1", ConvBN(cin, w["b1"], 1))],
        [("branch7x7_1", ConvBN(cin, c7, 1)), *numbered("branch7x7_", 2, single)],
        [("branch7x7dbl_1", ConvBN(cin, c7, 1)), *numbered("branch7x7dbl_", 2, double)],
        pool_branch(cin, w["pool"]),
    ]
    return BranchConcat(branches, w["b1"] + 2 * w["b7"] + w["pool"])


def _split(prefix: str, cin: int, cout: int) -> list[Named]:
    return [
        (f"{prefix}a", ConvBN(cin, cout, (1, 3), padding=(0, 1))),
        (f"{prefix}b", ConvBN(cin, cout, (3, 1), padding=(1, 0))),
    ]


@COARSE_MODULE.register(
    "expanded",
    description="8x8 module with expanded filter bank: parallel 1x3 and 3x1 outputs concatenated",
    paper="Fig. 7",
)
def module_c_expanded(cin: int, w: dict[str, int], ctx: Ctx) -> BranchConcat:
    """Coarsest-grid module (torchvision InceptionE): splits widen the representation."""
    b3_red = ctx.reduce(w["b3_red"], w["b3"])
    dbl_red = ctx.reduce(w["dbl_red"], w["dbl"])
    branches: list[list[Step]] = [
        [("branch1x1", ConvBN(cin, w["b1"], 1))],
        [("branch3x3_1", ConvBN(cin, b3_red, 1)), _split("branch3x3_2", b3_red, w["b3"])],
        [
            ("branch3x3dbl_1", ConvBN(cin, dbl_red, 1)),
            # 3x3 then the 1x3 | 3x1 split: Fig. 7's factorized 5x5, joined by factor_act
            ("branch3x3dbl_2", ctx.join.first(dbl_red, w["dbl"], 3, padding=1)),
            _split("branch3x3dbl_3", w["dbl"], w["dbl"]),
        ],
        pool_branch(cin, w["pool"]),
    ]
    return BranchConcat(branches, w["b1"] + 2 * w["b3"] + 2 * w["dbl"] + w["pool"])


@COARSE_MODULE.register(
    "plain",
    description="the same module without the expansion: 1x3 then 3x1 in sequence (conv_nxn, n=3)",
    paper="Fig. 6 form at 8x8",
)
def module_c_plain(cin: int, w: dict[str, int], ctx: Ctx) -> BranchConcat:
    """Coarsest-grid module without the expanded filter bank (half the channels of its splits)."""
    b3_red = ctx.reduce(w["b3_red"], w["b3"])
    dbl_red = ctx.reduce(w["dbl_red"], w["dbl"])
    f = ctx.conv_nxn
    b3 = f.layers(b3_red, b3_red, w["b3"], 3, join=ctx.join)
    dbl = f.layers(w["dbl"], w["dbl"], w["dbl"], 3, join=ctx.join)
    branches: list[list[Step]] = [
        [("branch1x1", ConvBN(cin, w["b1"], 1))],
        [("branch3x3_1", ConvBN(cin, b3_red, 1)), *numbered("branch3x3_", 2, b3)],
        [
            ("branch3x3dbl_1", ConvBN(cin, dbl_red, 1)),
            ("branch3x3dbl_2", ctx.join.first(dbl_red, w["dbl"], 3, padding=1)),
            *numbered("branch3x3dbl_", 3, dbl),
        ],
        pool_branch(cin, w["pool"]),
    ]
    return BranchConcat(branches, w["b1"] + w["b3"] + w["dbl"] + w["pool"])
