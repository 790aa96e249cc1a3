"""Faster CPU kernels for two ops of a small Inception step, swapped in at train time.

Both compute the same numbers as the modules they replace (tests check the gradients bit for
bit), so a run's key and its results do not depend on them; the model as built, and with it
every MAC count, stays untouched.

- Branch concatenation: ``torch.cat``'s backward hands each branch a channel slice of the
  output gradient. In channels_last memory a slice is strided, and ReLU/BatchNorm backward on a
  strided gradient fall off their vectorized paths: ``threshold_backward`` measured 13x slower
  (3.0 ms vs 0.23 ms for 64x12x28x28 bf16 on one core). Copying each slice out first (0.1 ms)
  is far cheaper.
- The 3x3/1 average pool of the pool branches, forward only: oneDNN's depthwise convolution
  with a fixed all-ones kernel, then the same division by 9 in fp32, is several times faster
  than ``avg_pool2d`` in channels_last bf16 and gives the same bits. Its backward stays
  ``avg_pool2d``'s: a transposed depthwise conv was 13x faster still, but sums bf16 gradients
  in another order, which changes them at the rounding level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from archlab.arch.blocks.modules import BranchConcat

#: what ``tune`` can switch on; "stock" keeps PyTorch's kernels (the bench's "today" trainer)
KERNELS = ("tuned", "stock")


class _CatContiguousGrads(torch.autograd.Function):
    """torch.cat along channels whose backward gives each input a dense gradient."""

    @staticmethod
    def forward(ctx, *xs: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.sizes = [x.shape[1] for x in xs]
        return torch.cat(xs, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
        fmt = _memory_format(grad)
        return tuple(g.contiguous(memory_format=fmt) for g in grad.split(ctx.sizes, 1))


def _memory_format(t: torch.Tensor) -> torch.memory_format:
    cl = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl and not t.is_contiguous() else torch.contiguous_format


def cat_channels(xs: Sequence[torch.Tensor], dim: int = 1) -> torch.Tensor:
    """``torch.cat(xs, 1)`` with dense per-input gradients (``dim`` must be 1)."""
    if dim != 1:
        raise ValueError(f"cat_channels concatenates along dim 1, not {dim}")
    return _CatContiguousGrads.apply(*xs)


class _BoxAvg3x3(torch.autograd.Function):
    """3x3/1 average pool (zero padding counted): depthwise-conv forward, stock backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x)
        ones = torch.ones(x.shape[1], 1, 3, 3, dtype=torch.float32, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            # fp32 sums of bf16/fp32 inputs, then the same division by 9 avg_pool2d does
            total = nn.functional.conv2d(x.float(), ones, padding=1, groups=x.shape[1])
        return (total / 9).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        # avg_pool2d's own backward: a depthwise transposed conv sums the gradient in another
        # order, which changes bf16 gradients at the rounding level
        (x,) = ctx.saved_tensors
        pool = torch.ops.aten.avg_pool2d_backward
        return pool(grad, x, [3, 3], [1, 1], [1, 1], False, True, None)


class BoxAvgPool3x3(nn.Module):
    """``nn.AvgPool2d(3, stride=1, padding=1)`` (padding counted), forward via a depthwise conv."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BoxAvg3x3.apply(x)


def _is_box3x3(m: nn.Module) -> bool:
    if type(m) is not nn.AvgPool2d:
        return False
    same = [_pair(m.kernel_size), _pair(m.stride), _pair(m.padding)] == [(3, 3), (1, 1), (1, 1)]
    return same and m.count_include_pad and not m.ceil_mode and m.divisor_override is None


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v, v) if isinstance(v, int) else tuple(v)


def tune(net: nn.Module, kernels: str = "tuned") -> nn.Module:
    """Swap the tuned kernels into ``net`` (on its device) in place; returns it."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, not {kernels!r}")
    if kernels == "stock":
        return net
    cat: Callable[..., torch.Tensor] = cat_channels
    # the pool's same-bits check ran on CPU kernels; a GPU's conv may sum in another order
    on_cpu = all(p.device.type == "cpu" for p in net.parameters())
    for name, m in list(net.named_modules()):
        if isinstance(m, BranchConcat):
            m.cat = cat
        elif on_cpu and _is_box3x3(m):
            parent, _, attr = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, attr, BoxAvgPool3x3())
    return net
