"""Factorized convolutions (paper Sections 3.1-3.2) registered on the conv5x5, conv_nxn and
factor_act axes, each with an analytic MAC/param formula (pycls-style ``*_cx`` twins)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from archlab.arch.blocks.conv import RELU_JOIN, ConvBN, Join, conv_params
from archlab.arch.spec import CONV5X5, CONV_NXN, FACTOR_ACT

#: build(cin, mid, cout, n, join, transpose) -> the block's layers, in order
Build = Callable[[int, int, int, int, Join, bool], list[nn.Module]]
#: macs(cin, mid, cout, n, h, w) at stride 1 with "same" padding
Cost = Callable[[int, int, int, int, int, int], int]


@dataclass(frozen=True)
class Factorization:
    """One way to realize an n x n convolution: its layers and its closed-form cost."""

    build: Build
    macs: Cost  # stride-1 'same' convs: every layer has h * w outputs
    params: Callable[[int, int, int, int], int]
    valid_n: frozenset[int] | None = None  # kernel sizes this form exists for (None: any)

    def layers(
        self,
        cin: int,
        mid: int,
        cout: int,
        n: int,
        *,
        join: Join = RELU_JOIN,
        transpose: bool = False,
    ) -> list[nn.Module]:
        """The layers realizing a cin -> cout n x n conv (mid = width between factors)."""
        return self.build(cin, mid, cout, n, join, transpose)


def _single(cin: int, mid: int, cout: int, n: int, join: Join, tr: bool) -> list[nn.Module]:
    return [ConvBN(cin, cout, n, padding=n // 2)]


SINGLE = Factorization(
    build=_single,
    macs=lambda cin, mid, cout, n, h, w: n * n * cin * cout * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, cout, n, n),
)


def _two_3x3(cin: int, mid: int, cout: int, n: int, join: Join, tr: bool) -> list[nn.Module]:
    return [join.first(cin, mid, 3, padding=1), ConvBN(mid, cout, 3, padding=1)]


TWO_3X3 = Factorization(
    build=_two_3x3,
    macs=lambda cin, mid, cout, n, h, w: 9 * (cin * mid + mid * cout) * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, mid, 3, 3) + conv_params(mid, cout, 3, 3),
)


def _asym(cin: int, mid: int, cout: int, n: int, join: Join, tr: bool) -> list[nn.Module]:
    # torchvision's double 7x7 branch starts with the n x 1 factor: ``transpose`` keeps its shapes
    k1, k2 = ((n, 1), (1, n)) if tr else ((1, n), (n, 1))
    p1, p2 = (k1[0] // 2, k1[1] // 2), (k2[0] // 2, k2[1] // 2)
    return [join.first(cin, mid, k1, padding=p1), ConvBN(mid, cout, k2, padding=p2)]


ASYM = Factorization(
    build=_asym,
    macs=lambda cin, mid, cout, n, h, w: n * (cin * mid + mid * cout) * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, mid, 1, n) + conv_params(mid, cout, n, 1),
)


def _two_2x2(cin: int, mid: int, cout: int, n: int, join: Join, tr: bool) -> list[nn.Module]:
    # pad right/bottom then left/top, so the pair sees a centred 3x3 window at the input size
    return [
        join.first(cin, mid, 2, padding=(0, 1, 0, 1)),
        ConvBN(mid, cout, 2, padding=(1, 0, 1, 0)),
    ]


TWO_2X2 = Factorization(
    build=_two_2x2,
    macs=lambda cin, mid, cout, n, h, w: 4 * (cin * mid + mid * cout) * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, mid, 2, 2) + conv_params(mid, cout, 2, 2),
    valid_n=frozenset({3}),
)


def sqrt_alpha_mid(cin: int, cout: int) -> int:
    """Sec. 3.1: a 5x5 growing the width by alpha becomes two 3x3 each growing it by sqrt(alpha)."""
    return max(1, round(math.sqrt(cin * cout)))


def _two_3x3_sqrt(cin: int, mid: int, cout: int, n: int, join: Join, tr: bool) -> list[nn.Module]:
    return _two_3x3(cin, sqrt_alpha_mid(cin, cout), cout, n, join, tr)


TWO_3X3_SQRT = Factorization(
    build=_two_3x3_sqrt,
    macs=lambda cin, mid, cout, n, h, w: TWO_3X3.macs(
        cin, sqrt_alpha_mid(cin, cout), cout, n, h, w
    ),
    params=lambda cin, mid, cout, n: TWO_3X3.params(cin, sqrt_alpha_mid(cin, cout), cout, n),
)

CONV5X5.add(
    "3x3x2",
    TWO_3X3,
    description=(
        "two stacked 3x3 convs in place of the 5x5, the first already at the output width "
        "(torchvision's double-3x3 layout): 18/25 of the 5x5 only when in = out"
    ),
    paper="Fig. 5 (widths as torchvision's 3x3dbl branch)",
)
CONV5X5.add(
    "3x3x2_sqrt",
    TWO_3X3_SQRT,
    description=(
        "two stacked 3x3 convs, each growing the width by sqrt(alpha) (the paper's form): "
        "18/25 of the 5x5 when in = out, (9/25)(1 + alpha)/sqrt(alpha) when it grows"
    ),
    paper="Sec. 3.1, Fig. 5",
)
CONV5X5.add(
    "5x5",
    SINGLE,
    description="a single 5x5 conv in module A's second branch (Inception-v1, torchvision)",
    paper="Fig. 4",
)

CONV5X5.add(
    "1x5_5x1",
    ASYM,
    description="1 x 5 then 5 x 1 on the early (35x35-like) grid, where the paper says it fails",
    paper="Sec. 3.2 ('does not work well on early layers')",
)

CONV_NXN.add(
    "1xn_nx1",
    ASYM,
    description="1 x n then n x 1 conv (2/n of the n x n cost)",
    paper="Figs. 3, 6, Sec. 3.2",
)
CONV_NXN.add("nxn", SINGLE, description="a single n x n conv", paper="Sec. 3.2")
CONV_NXN.add(
    "2x2x2",
    TWO_2X2,
    description="two 2x2 convs for a 3x3 (8/9 of its cost; only n = 3)",
    paper="Sec. 3.2",
)

# The join acts between the factors of every factorized conv in the net: module A's 5x5 branch
# and double-3x3 branch, module B's (double) 1 x n + n x 1, module C's 3x3-then-split and plain
# pairs, the grid reductions' double-3x3 and 1x7 + 7x1, and the three-3x3 stem (Sec. 3.1: "in
# all stages of the factorization").
FACTOR_ACT.add(
    "relu",
    RELU_JOIN,
    description="BN then ReLU after the first conv of every factorized pair",
    paper="Fig. 2 (77.2% top-1)",
)
FACTOR_ACT.add(
    "linear",
    Join(nn.Identity),
    description="BN but no activation after the first conv of every factorized pair",
    paper="Fig. 2 (76.2% top-1)",
    # revision 1: reaches every factorized pair (before: only the conv5x5/conv_nxn axes' pairs)
    revision=1,
)
FACTOR_ACT.add(
    "linear_nobn",
    Join(nn.Identity, bn=False),
    description="neither BN nor activation after the first conv of every factorized pair",
    paper="Sec. 3.1 (ReLU helps 'especially if we batch-normalize')",
)
