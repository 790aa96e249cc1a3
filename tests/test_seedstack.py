"""K seeds stacked as one network compute what the K networks compute, for every variant."""

import pytest
import torch
from torch import nn

from archlab.arch.models import build_model
from archlab.arch.spec import AXES, ArchSpec
from archlab.train.kernels import tune
from archlab.train.seedstack import stack_seeds, unstack_logits

OPTIONS = [(a, e.name) for a, reg in AXES.items() for e in reg]
K, BATCH = 3, 4


def _spec(axis: str, option: str) -> ArchSpec:
    valid_n = getattr(AXES[axis].get(option), "valid_n", None)
    return ArchSpec(**{axis: option, "n": min(valid_n) if valid_n else 7, "dropout": 0.0})


def _net(spec: ArchSpec, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = build_model("inception_mini", spec, num_classes=10, in_chans=1, input_size=28)
    # float64: BatchNorm over a 4-image batch on 2x2 grids amplifies float32 rounding to ~1%
    return tune(net.to(torch.float64, memory_format=torch.channels_last))


def _loss(out: object, y: torch.Tensor) -> torch.Tensor:
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = nn.functional.cross_entropy(logits, y)
    return loss if aux is None else loss + 0.4 * nn.functional.cross_entropy(aux, y)


@pytest.mark.parametrize(("axis", "option"), OPTIONS)
def test_stacked_seeds_give_each_seeds_logits_and_gradients(axis: str, option: str) -> None:
    spec = _spec(axis, option)
    nets = [_net(spec, seed) for seed in range(K)]
    stacked = stack_seeds(nets)
    gen = torch.Generator().manual_seed(1)
    # each seed its own batch
    xs = torch.randn(K, BATCH, 1, 28, 28, generator=gen, dtype=torch.float64)
    ys = torch.randint(0, 10, (K, BATCH), generator=gen)
    # train mode: BatchNorm normalizes each seed's channels by that seed's batch
    cl = torch.channels_last
    outs = [net(x.contiguous(memory_format=cl)) for net, x in zip(nets, xs, strict=True)]
    sum(_loss(o, y) for o, y in zip(outs, ys, strict=True)).backward()
    x_stacked = xs[:, :, 0].transpose(0, 1).contiguous(memory_format=cl)
    out = stacked(x_stacked)
    logits, aux = out if isinstance(out, tuple) else (out, None)
    split = [unstack_logits(t, K) for t in (logits, aux) if t is not None]
    total = sum(
        _loss(tuple(s[:, k] for s in split) if aux is not None else split[0][:, k], ys[k])
        for k in range(K)
    )
    total.backward()
    for k, o in enumerate(outs):
        ref = o[0] if isinstance(o, tuple) else o
        torch.testing.assert_close(split[0][:, k], ref, rtol=1e-7, atol=1e-9)
    # every stacked parameter's gradient is the seeds' gradients side by side
    for name, p in stacked.named_parameters():
        parts = [dict(n.named_parameters())[name].grad for n in nets]
        ref = torch.stack(parts)  # SeedLinear keeps a seed axis; conv/BN stack along dim 0
        torch.testing.assert_close(p.grad.reshape(ref.shape), ref, rtol=1e-7, atol=1e-9)
    # eval mode: each seed's running statistics, updated by that seed's batch above
    for net in [*nets, stacked]:
        net.eval()
    with torch.no_grad():
        evals = unstack_logits(stacked(x_stacked), K)
        for k, (net, x) in enumerate(zip(nets, xs, strict=True)):
            ref = net(x.contiguous(memory_format=cl))
            torch.testing.assert_close(evals[:, k], ref, rtol=1e-7, atol=1e-9)


def test_a_layer_it_cannot_stack_is_refused() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    with pytest.raises(TypeError, match="cannot stack seeds of  \\(Odd\\)"):
        stack_seeds([Odd(), Odd()])
