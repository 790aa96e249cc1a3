"""Stems on the ``stem`` axis: three 3x3 convs (Inception-v3) or one 7x7 (Inception-v2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from archlab.arch.blocks.conv import RELU_JOIN, ConvBN, Join
from archlab.arch.spec import STEM

#: build(cin, widths, stride, valid, join) -> named layers; widths = the three 3x3 convs' outputs
StemBuild = Callable[[int, tuple[int, int, int], int, bool, Join], list[tuple[str, nn.Module]]]


@dataclass(frozen=True)
class Stem:
    """A stem option: its named layers and its analytic MACs."""

    build: StemBuild
    macs: Callable[[int, tuple[int, int, int], int, int, int, bool], int]


def _out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _three_3x3(
    cin: int, widths: tuple[int, int, int], stride: int, valid: bool, join: Join = RELU_JOIN
) -> list[tuple[str, nn.Module]]:
    # torchvision pads only the third conv ("valid" layout); small images pad all three
    p1, p2 = (0, 0) if valid else (1, 1)
    a, b, c = widths
    # the stack is a factorized 7x7 (Table 3): the factor_act join sits between its convs
    return [
        ("Conv2d_1a_3x3", join.first(cin, a, 3, stride=stride, padding=p1)),
        ("Conv2d_2a_3x3", join.first(a, b, 3, padding=p2)),
        ("Conv2d_2b_3x3", ConvBN(b, c, 3, padding=1)),
    ]


def _three_3x3_macs(
    cin: int, widths: tuple[int, int, int], stride: int, h: int, w: int, valid: bool
) -> int:
    p = 0 if valid else 1
    a, b, c = widths
    h1, w1 = _out(h, 3, stride, p), _out(w, 3, stride, p)
    h2, w2 = _out(h1, 3, 1, p), _out(w1, 3, 1, p)
    return 9 * (cin * a * h1 * w1 + a * b * h2 * w2 + b * c * h2 * w2)


def _one_7x7(
    cin: int, widths: tuple[int, int, int], stride: int, valid: bool, join: Join = RELU_JOIN
) -> list[tuple[str, nn.Module]]:
    # valid 7x7/2 gives the same grid as the valid 3x3 stack (299 -> 147), so the rest fits
    return [("Conv2d_1a_7x7", ConvBN(cin, widths[2], 7, stride=stride, padding=0 if valid else 3))]


def _one_7x7_macs(
    cin: int, widths: tuple[int, int, int], stride: int, h: int, w: int, valid: bool
) -> int:
    p = 0 if valid else 3
    return 49 * cin * widths[2] * _out(h, 7, stride, p) * _out(w, 7, stride, p)


STEM.add(
    "3x3x3",
    Stem(_three_3x3, _three_3x3_macs),
    description="three stacked 3x3 convs (the 'Factorized 7x7')",
    paper="Table 3, Sec. 6",
)
STEM.add(
    "7x7",
    Stem(_one_7x7, _one_7x7_macs),
    description="one 7x7 conv (Inception-v2 stem)",
    paper="Table 3",
)
