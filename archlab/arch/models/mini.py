"""inception_mini: the paper's topology at small-image scale (28-64 px, e.g. Fashion-MNIST).

Widths are torchvision's divided by ~6-8 and kept on multiples of 4 so width_mult can scale
them finely; stages run at 28x28, 14x14 (inside the paper's 12..20 range for 1 x n) and 7x7.
"""

from __future__ import annotations

from archlab.arch.models.inception import Layout

_A = {"b1": 12, "b5_red": 8, "b5": 12, "dbl_red": 12, "dbl": 16, "pool": 8}
_B = {"b1": 24, "c7": 16, "b7": 24, "pool": 24}
_C = {"b1": 40, "b3_red": 48, "b3": 48, "dbl_red": 56, "dbl": 48, "pool": 24}

MINI = Layout(
    stem=(12, 16, 24),
    stem_stride=1,
    valid=False,
    post_stem=None,
    a=[_A, _A],
    red1={"b3": 32, "dbl_red": 12, "dbl": 16},
    b=[_B, _B],
    red2={"b3_red": 24, "b3": 40, "b7_red": 24, "b7": 24},
    c=[_C, _C],
    aux={"mid": 32, "hidden": 128},
)
