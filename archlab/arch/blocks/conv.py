"""ConvBN: conv (no bias) + BatchNorm(eps=0.001) + activation, torchvision's BasicConv2d layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BN_EPS = 0.001  # torchvision / the released Inception-v3 trainer


class ConvBN(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation; state_dict keys ``conv.*`` and ``bn.*``."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        *,
        stride: int = 1,
        padding: int | tuple[int, ...] = 0,
        dilation: int = 1,
        act: nn.Module | None = None,
        bn: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(padding, tuple) and len(padding) == 4:
            # asymmetric (left, right, top, bottom) padding: even kernels such as 2x2
            self.pad: nn.Module | None = nn.ZeroPad2d(padding)
            padding = 0
        else:
            self.pad = None
        # a conv without BatchNorm after it gets the bias the BN shift would have given it
        self.conv = nn.Conv2d(
            cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, bias=not bn
        )
        self.bn: nn.Module = nn.BatchNorm2d(cout, eps=BN_EPS) if bn else nn.Identity()
        # an activation module has no state, so keys stay torchvision's whatever it is
        self.act = nn.ReLU(inplace=True) if act is None else act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = self.pad(x)
        return self.act(self.bn(self.conv(x)))


@dataclass(frozen=True)
class Join:
    """What sits between the two convs of a factorization: an activation, and BN or not."""

    act: Callable[[], nn.Module]
    bn: bool = True

    def first(self, cin: int, cout: int, kernel: int | tuple[int, int], **kw: object) -> ConvBN:
        """The first conv of a factorized pair, ending in this join."""
        return ConvBN(cin, cout, kernel, act=self.act(), bn=self.bn, **kw)  # type: ignore[arg-type]


#: the join of an unfactorized network: BN then ReLU, like every other conv
RELU_JOIN = Join(lambda: nn.ReLU(inplace=True))


class PoolConvBN(ConvBN):
    """3x3/1 average pool -> 1x1 ConvBN, computed as conv -> pool -> BN -> act.

    A bias-free 1x1 conv and a zero-padded average pool are both linear per pixel, so they
    commute exactly; pooling the (narrower) conv output is several times cheaper, and on CPU
    avg-pool backward is one of the costliest ops of a small Inception step.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 1)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pool(self.conv(x))))


def conv_macs(cin: int, cout: int, kh: int, kw: int, hout: int, wout: int) -> int:
    """Multiply-adds of a dense conv: one per weight per output position."""
    return cin * cout * kh * kw * hout * wout


def conv_params(cin: int, cout: int, kh: int, kw: int, *, bn: bool = True) -> int:
    """Weights of a bias-free conv plus its BatchNorm scale and shift."""
    return cin * cout * kh * kw + (2 * cout if bn else 0)
