"""The tuned kernels give PyTorch's own numbers, bit for bit, for every registered variant."""

import pytest
import torch
from torch import nn

from archlab.arch.blocks.modules import BranchConcat
from archlab.arch.models import build_model
from archlab.arch.spec import AXES, ArchSpec
from archlab.train.kernels import BoxAvgPool3x3, cat_channels, tune

OPTIONS = [(a, e.name) for a, reg in AXES.items() for e in reg]


def _spec(axis: str, option: str) -> ArchSpec:
    valid_n = getattr(AXES[axis].get(option), "valid_n", None)
    return ArchSpec(**{axis: option, "n": min(valid_n) if valid_n else 7})


def _step(spec: ArchSpec, kernels: str, amp: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and parameter gradients of one training step from seed-0 weights."""
    torch.manual_seed(0)
    net = build_model("inception_mini", spec, num_classes=10, in_chans=1, input_size=28)
    net = tune(net.to(memory_format=torch.channels_last), kernels)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = net(x)
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = nn.functional.cross_entropy(logits.float(), y)
    if aux is not None:
        loss = loss + 0.4 * nn.functional.cross_entropy(aux.float(), y)
    loss.backward()
    return logits.detach(), [p.grad for p in net.parameters() if p.grad is not None]


@pytest.mark.parametrize(("axis", "option"), OPTIONS)
def test_tuned_kernels_match_stock_bit_for_bit(axis: str, option: str) -> None:
    spec = _spec(axis, option)
    for amp in (True, False):
        stock_logits, stock_grads = _step(spec, "stock", amp)
        tuned_logits, tuned_grads = _step(spec, "tuned", amp)
        assert torch.equal(stock_logits, tuned_logits), (axis, option, amp)
        assert len(stock_grads) == len(tuned_grads)
        for a, b in zip(stock_grads, tuned_grads, strict=True):
            assert torch.equal(a, b), (axis, option, amp)


def test_tune_swaps_the_concatenation_and_the_box_pool_only() -> None:
    net = tune(build_model("inception_mini", ArchSpec(), num_classes=10, in_chans=1))
    concats = [m for m in net.modules() if isinstance(m, BranchConcat)]
    assert concats and all(m.cat is cat_channels for m in concats)
    assert any(isinstance(m, BoxAvgPool3x3) for m in net.modules())
    # the aux head's 5x5/3 pool has no tuned kernel
    assert any(isinstance(m, nn.AvgPool2d) for m in net.modules())
    stock = tune(build_model("inception_mini", ArchSpec(), num_classes=10, in_chans=1), "stock")
    assert not any(isinstance(m, BoxAvgPool3x3) for m in stock.modules())
    assert all(m.cat is torch.cat for m in stock.modules() if isinstance(m, BranchConcat))


def test_cat_channels_gives_dense_channels_last_gradients() -> None:
    xs = [torch.randn(2, c, 5, 5).contiguous(memory_format=torch.channels_last) for c in (3, 4)]
    for x in xs:
        x.requires_grad_()
    out = cat_channels(xs)
    assert torch.equal(out, torch.cat(xs, 1))
    out.backward(torch.randn_like(out))
    for x in xs:
        assert x.grad.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="dim 1"):
        cat_channels(xs, dim=0)


def test_unknown_kernels_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'fast'"):
        tune(nn.Sequential(), "fast")
