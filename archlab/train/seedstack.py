"""K seeds of one architecture as one network: each op does K times the work.

The networks are stacked along channels, seed-major (seed k owns channels ``k*C .. (k+1)*C`` of
every activation): a convolution becomes one grouped convolution (``groups`` x K) with the seeds'
weights stacked, BatchNorm one BatchNorm over K x C channels (statistics stay per seed), a Linear
one block-diagonal product, and a branch concatenation keeps each seed's channels together. ReLU,
pooling and dropout act per channel already. Seed k's batch enters as input channel block k, so
every seed keeps its own data and initial weights; the logits come out as (batch, K, classes).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from archlab.arch.blocks.modules import BranchConcat

__all__ = ["SeedLinear", "stack_seeds", "unstack_logits"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


class _SeedCat(torch.autograd.Function):
    """Concatenate branch outputs per seed: seed k's channels of every branch stay together."""

    @staticmethod
    def forward(ctx, k: int, *xs: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        sizes = [x.shape[1] // k for x in xs]
        ctx.k, ctx.sizes = k, sizes
        n, _, h, w = xs[0].shape
        out = torch.empty(
            n, k * sum(sizes), h, w, dtype=xs[0].dtype, device=xs[0].device,
            memory_format=torch.channels_last,
        )  # fmt: skip
        view, off = out.unflatten(1, (k, sum(sizes))), 0
        for x, c in zip(xs, sizes, strict=True):
            view[:, :, off : off + c].copy_(x.unflatten(1, (k, c)))
            off += c
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        k, sizes = ctx.k, ctx.sizes
        view, off, grads = grad.unflatten(1, (k, sum(sizes))), 0, []
        for c in sizes:
            n, _, h, w = grad.shape
            # a dense channels_last gradient per branch: its ReLU/BN backward stay vectorized
            g = torch.empty(
                n, k * c, h, w, dtype=grad.dtype, device=grad.device,
                memory_format=torch.channels_last,
            )  # fmt: skip
            g.unflatten(1, (k, c)).copy_(view[:, :, off : off + c])
            grads.append(g)
            off += c
        return (None, *grads)


class _SeedCatFn:
    """A BranchConcat ``cat`` for K stacked seeds (picklable, unlike a closure)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, xs: Sequence[torch.Tensor], dim: int = 1) -> torch.Tensor:
        if dim != 1:
            raise ValueError(f"seed-stacked concatenation is along dim 1, not {dim}")
        return _SeedCat.apply(self.k, *xs)


class SeedLinear(nn.Module):
    """K Linear layers applied to the K seed blocks of a (batch, K*in) input."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.k = len(linears)
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]))
        has_bias = linears[0].bias is not None
        bias = torch.stack([m.bias.detach() for m in linears]) if has_bias else None
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("nki,koi->nko", x.unflatten(1, (self.k, -1)), self.weight)
        return (y if self.bias is None else y + self.bias).flatten(1)


def _stack_conv(convs: Sequence[nn.Conv2d]) -> nn.Conv2d:
    c, k = convs[0], len(convs)
    out = nn.Conv2d(
        k * c.in_channels, k * c.out_channels, c.kernel_size, c.stride, c.padding,
        c.dilation, k * c.groups, c.bias is not None, c.padding_mode,
    )  # fmt: skip
    with torch.no_grad():
        out.weight.copy_(torch.cat([m.weight for m in convs]))
        if c.bias is not None:
            out.bias.copy_(torch.cat([m.bias for m in convs]))
    return out


def _stack_bn(bns: Sequence[nn.Module]) -> nn.Module:
    b, k = bns[0], len(bns)
    out = type(b)(k * b.num_features, b.eps, b.momentum, b.affine, b.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(b, name, None) is not None:
                getattr(out, name).copy_(torch.cat([getattr(m, name) for m in bns]))
        if b.track_running_stats:
            out.num_batches_tracked.copy_(b.num_batches_tracked)
    return out


def stack_seeds(nets: Sequence[nn.Module]) -> nn.Module:
    """One network computing ``nets`` (same architecture, any weights) side by side."""
    k = len(nets)
    stacked = copy.deepcopy(nets[0])
    mods = [dict(n.named_modules()) for n in nets]
    for name, m in list(stacked.named_modules()):
        same = [d[name] for d in mods]
        if isinstance(m, nn.Conv2d):
            new: nn.Module | None = _stack_conv(same)
        elif isinstance(m, _BN):
            new = _stack_bn(same)
        elif isinstance(m, nn.Linear):
            new = SeedLinear(same)
        else:
            new = None
            if isinstance(m, BranchConcat):
                m.cat = _SeedCatFn(k)
            elif any(True for _ in m.parameters(recurse=False)):
                raise TypeError(f"cannot stack seeds of {name} ({type(m).__name__})")
        if new is not None:
            parent, _, attr = name.rpartition(".")
            setattr(stacked.get_submodule(parent) if parent else stacked, attr, new)
    p = next(nets[0].parameters())
    return stacked.to(device=p.device, dtype=p.dtype)


def unstack_logits(out: torch.Tensor, k: int) -> torch.Tensor:
    """(batch, K*classes) logits of a stacked network as (batch, K, classes)."""
    return out.unflatten(1, (k, -1))
