"""Factorized convolutions (paper Sections 3.1-3.2) registered on the conv5x5, conv_nxn and
factor_act axes, each with an analytic MAC/param formula (pycls-style ``*_cx`` twins)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from archlab.arch.blocks.conv import ConvBN, conv_params
from archlab.arch.spec import CONV5X5, CONV_NXN, FACTOR_ACT

#: build(cin, mid, cout, n, act, transpose) -> the block's layers, in order
Build = Callable[[int, int, int, int, nn.Module, bool], list[nn.Module]]
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
        self, cin: int, mid: int, cout: int, n: int, *, act: nn.Module, transpose: bool = False
    ) -> list[nn.Module]:
        """The layers realizing a cin -> cout n x n conv (mid = width between factors)."""
        return self.build(cin, mid, cout, n, act, transpose)


def _single(cin: int, mid: int, cout: int, n: int, act: nn.Module, tr: bool) -> list[nn.Module]:
    return [ConvBN(cin, cout, n, padding=n // 2)]


SINGLE = Factorization(
    build=_single,
    macs=lambda cin, mid, cout, n, h, w: n * n * cin * cout * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, cout, n, n),
)


def _two_3x3(cin: int, mid: int, cout: int, n: int, act: nn.Module, tr: bool) -> list[nn.Module]:
    return [ConvBN(cin, mid, 3, padding=1, act=act), ConvBN(mid, cout, 3, padding=1)]


TWO_3X3 = Factorization(
    build=_two_3x3,
    macs=lambda cin, mid, cout, n, h, w: 9 * (cin * mid + mid * cout) * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, mid, 3, 3) + conv_params(mid, cout, 3, 3),
)


def _asym(cin: int, mid: int, cout: int, n: int, act: nn.Module, tr: bool) -> list[nn.Module]:
    # torchvision's double 7x7 branch starts with the n x 1 factor: ``transpose`` keeps its shapes
    k1, k2 = ((n, 1), (1, n)) if tr else ((1, n), (n, 1))
    p1, p2 = (k1[0] // 2, k1[1] // 2), (k2[0] // 2, k2[1] // 2)
    return [ConvBN(cin, mid, k1, padding=p1, act=act), ConvBN(mid, cout, k2, padding=p2)]


ASYM = Factorization(
    build=_asym,
    macs=lambda cin, mid, cout, n, h, w: n * (cin * mid + mid * cout) * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, mid, 1, n) + conv_params(mid, cout, n, 1),
)


def _two_2x2(cin: int, mid: int, cout: int, n: int, act: nn.Module, tr: bool) -> list[nn.Module]:
    # pad right/bottom then left/top, so the pair sees a centred 3x3 window at the input size
    return [
        ConvBN(cin, mid, 2, padding=(0, 1, 0, 1), act=act),
        ConvBN(mid, cout, 2, padding=(1, 0, 1, 0)),
    ]


TWO_2X2 = Factorization(
    build=_two_2x2,
    macs=lambda cin, mid, cout, n, h, w: 4 * (cin * mid + mid * cout) * h * w,
    params=lambda cin, mid, cout, n: conv_params(cin, mid, 2, 2) + conv_params(mid, cout, 2, 2),
    valid_n=frozenset({3}),
)

CONV5X5.add(
    "3x3x2",
    TWO_3X3,
    description="two stacked 3x3 convs in place of the 5x5 (18/25 = 0.72 of its cost)",
    paper="Fig. 5, Sec. 3.1",
)
CONV5X5.add(
    "5x5", SINGLE, description="a single 5x5 conv (Inception-v1/torchvision)", paper="Fig. 4"
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

FACTOR_ACT.add(
    "relu",
    lambda: nn.ReLU(inplace=True),
    description="ReLU after the first factor conv",
    paper="Fig. 2 (77.2% top-1)",
)
FACTOR_ACT.add(
    "linear",
    nn.Identity,
    description="no activation between the factor convs (BN only)",
    paper="Fig. 2 (76.2% top-1)",
)
