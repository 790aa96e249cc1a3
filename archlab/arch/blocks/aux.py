"""Auxiliary classifiers on the ``aux_head`` axis (paper Section 4, Table 3 "BN-auxiliary").

The paper's "BN-auxiliary" batch-normalizes the head's fully connected layer; in the released
trainer and in torchvision that layer is the 768-wide conv over the pooled 5x5 grid, and it
carries BN: ``aux`` (the default). The paper's plain head is that layer with a bias and no BN:
``aux_nobn``. ``aux_bn`` adds a BatchNorm1d before the logits on top: an extension, not the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.arch.blocks.conv import ConvBN
from archlab.arch.spec import AUX_HEAD


class AuxHead(nn.Module):
    """avg-pool 5/3 -> 1x1 conv -> conv over the pooled grid (BN or bias) -> (BN1d) -> fc."""

    def __init__(
        self,
        cin: int,
        num_classes: int,
        *,
        mid: int,
        hidden: int,
        grid: int,
        bn_fc: bool,
        bn_hidden: bool = True,
    ) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv0 = ConvBN(cin, mid, 1)
        # the conv over the whole pooled grid is the head's fully connected layer
        self.conv1 = ConvBN(mid, hidden, grid, bn=bn_hidden)
        # the extension: the logits' input is batch-normalized too
        self.fc_bn = nn.BatchNorm1d(hidden, eps=0.001) if bn_fc else None
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(self.pool(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        if self.fc_bn is not None:
            x = self.fc_bn(x)
        return self.fc(x)


def _make(*, bn_hidden: bool, bn_fc: bool):  # noqa: ANN202 - a registry factory
    def build(cin: int, num_classes: int, *, mid: int, hidden: int, grid: int) -> AuxHead | None:
        return AuxHead(
            cin, num_classes, mid=mid, hidden=hidden, grid=grid, bn_fc=bn_fc, bn_hidden=bn_hidden
        )

    return build


def _none(cin: int, num_classes: int, *, mid: int, hidden: int, grid: int) -> None:
    return None


AUX_HEAD.add(
    "aux",
    _make(bn_hidden=True, bn_fc=False),
    description="BN-auxiliary: the head's fully connected (768-wide) layer batch-normalized",
    paper="Sec. 4, Table 3 (21.6 -> 21.2% error); torchvision's head",
)
AUX_HEAD.add(
    "aux_nobn",
    _make(bn_hidden=False, bn_fc=False),
    description="the paper's plain auxiliary head: that layer with a bias, no BN",
    paper="Sec. 4, Table 3 baseline",
)
AUX_HEAD.add(
    "aux_bn",
    _make(bn_hidden=True, bn_fc=True),
    description="extension (not in the paper): BN-auxiliary plus a BatchNorm1d before the logits",
    paper="not in the paper",
)
AUX_HEAD.add("none", _none, description="no auxiliary head", paper="Sec. 4")
