"""Auxiliary classifiers on the ``aux_head`` axis (paper Section 4, Table 3 "BN-auxiliary")."""

from __future__ import annotations

import torch
from torch import nn

from archlab.arch.blocks.conv import ConvBN
from archlab.arch.spec import AUX_HEAD


class AuxHead(nn.Module):
    """avg-pool 5/3 -> 1x1 conv -> conv over the pooled grid -> (BN) -> fc; torchvision's keys."""

    def __init__(
        self, cin: int, num_classes: int, *, mid: int, hidden: int, grid: int, bn_fc: bool
    ) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv0 = ConvBN(cin, mid, 1)
        self.conv1 = ConvBN(mid, hidden, grid)
        # "BN-auxiliary": the fully connected layer's input is batch-normalized too
        self.fc_bn = nn.BatchNorm1d(hidden, eps=0.001) if bn_fc else None
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(self.pool(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        if self.fc_bn is not None:
            x = self.fc_bn(x)
        return self.fc(x)


def _make(bn_fc: bool):  # noqa: ANN202 - a registry factory
    def build(cin: int, num_classes: int, *, mid: int, hidden: int, grid: int) -> AuxHead | None:
        return AuxHead(cin, num_classes, mid=mid, hidden=hidden, grid=grid, bn_fc=bn_fc)

    return build


def _none(cin: int, num_classes: int, *, mid: int, hidden: int, grid: int) -> None:
    return None


AUX_HEAD.add(
    "aux_bn",
    _make(True),
    description="auxiliary head with its fully connected layer batch-normalized",
    paper="Sec. 4, Table 3 (21.6 -> 21.2% error)",
)
AUX_HEAD.add("aux", _make(False), description="auxiliary head (torchvision's)", paper="Sec. 4")
AUX_HEAD.add("none", _none, description="no auxiliary head", paper="Sec. 4")
