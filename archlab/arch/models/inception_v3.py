"""Full-size Inception-v3 in torchvision's exact layout (Mixed_5b ... Mixed_7c, AuxLogits)."""

from __future__ import annotations

from archlab.arch.models.inception import Layout


def _a(pool: int) -> dict[str, int]:
    return {"b1": 64, "b5_red": 48, "b5": 64, "dbl_red": 64, "dbl": 96, "pool": pool}


def _b(c7: int) -> dict[str, int]:
    return {"b1": 192, "c7": c7, "b7": 192, "pool": 192}


_C = {"b1": 320, "b3_red": 384, "b3": 384, "dbl_red": 448, "dbl": 384, "pool": 192}

TORCHVISION = Layout(
    stem=(32, 32, 64),
    stem_stride=2,
    valid=True,
    post_stem=(80, 192),
    a=[_a(32), _a(64), _a(64)],
    red1={"b3": 384, "dbl_red": 64, "dbl": 96},
    b=[_b(128), _b(160), _b(160), _b(192)],
    red2={"b3_red": 192, "b3": 320, "b7_red": 192, "b7": 192},
    c=[_C, _C],
    aux={"mid": 128, "hidden": 768},
)
