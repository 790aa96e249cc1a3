"""Step-time probes of the ways to more study runs per hour, measured side by side.

One training step of the studies' network at the study recipe's batch size, on one torch thread
(what each study worker has), timed for: PyTorch's kernels (today's trainer), the tuned kernels
(``archlab.train.kernels``), K seeds stacked as one grouped network (``archlab.train.seedstack``:
channels_last, each convolution one grouped convolution over the seeds, BatchNorm and data per
seed) for several K, the same with ``torch.func.vmap`` over stacked weights, and
``torch.compile`` (its compile time, again for a second network of the same architecture with
the caches warm, and its steady step), and K stacked seeds compiled. Each figure is
per seed-step, so they compare directly; the bench keeps what wins and reports the rest.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archlab.arch.models import build_model
from archlab.arch.spec import ArchSpec
from archlab.train.config import TrainConfig
from archlab.train.kernels import tune
from archlab.train.runtime import resolve_runtime, synchronize, threads
from archlab.train.seedstack import stack_seeds, unstack_logits

MODEL = "inception_mini"


def _net(seed: int, kernels: str, device: torch.device) -> nn.Module:
    torch.manual_seed(seed)
    net = build_model(MODEL, ArchSpec(), num_classes=10, in_chans=1, input_size=28)
    return tune(net.to(device, memory_format=torch.channels_last), kernels)


def _loss(out: Any, y: torch.Tensor) -> torch.Tensor:
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = nn.functional.cross_entropy(logits.float(), y)
    return loss if aux is None else loss + 0.4 * nn.functional.cross_entropy(aux.float(), y)


def _time(step: Callable[[], None], warm: int, n: int, device: torch.device) -> float:
    """Seconds per call of ``step`` after ``warm`` untimed calls (the GPU's queue drained)."""
    for _ in range(warm):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / n


def _plain_step(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: Any, forward: Any = None
) -> Callable[[], None]:
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    forward = net if forward is None else forward  # a compiled module has no truth value

    def step() -> None:
        with amp():
            loss = _loss(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _vmap_step(k: int, xs: torch.Tensor, ys: torch.Tensor, amp: Any) -> Callable[[], None]:
    """One step of ``k`` seeds as one network: vmap over their stacked weights and batches."""
    from torch.func import functional_call, stack_module_state, vmap

    nets = [_net(seed, "stock", xs.device) for seed in range(k)]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    opt = torch.optim.SGD(list(params.values()), lr=0.01, momentum=0.9)

    def one(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _loss(functional_call(base, (p, b), (x,)), y)

    def step() -> None:
        with amp():
            losses = vmap(one, randomness="different")(params, buffers, xs, ys)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # seeds share no weights: each gets its own gradient
        opt.step()

    return step


def _stacked_step(
    k: int, xs: torch.Tensor, ys: torch.Tensor, amp: Any, compiled: bool = False
) -> Callable[[], None]:
    """One step of ``k`` seeds stacked along channels as one grouped network (tuned kernels).

    ``compiled``: its forward through ``torch.compile`` (stock kernels: inductor fuses its own).
    """
    kernels = "stock" if compiled else "tuned"
    net = stack_seeds([_net(seed, kernels, xs.device) for seed in range(k)])
    net = net.to(memory_format=torch.channels_last)
    forward = torch.compile(net) if compiled else net
    # seed s's batch is input channel s: (batch, k, 28, 28)
    x = xs[:k, :, 0].transpose(0, 1).contiguous(memory_format=torch.channels_last)
    y = ys[:k].transpose(0, 1).reshape(-1)  # (batch, k) flattened, as the logits are
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        with amp():
            out = forward(x)
        parts = out if isinstance(out, tuple) else (out,)
        flat = [unstack_logits(t.float(), k).flatten(0, 1) for t in parts]
        loss = _loss(tuple(flat) if len(flat) == 2 else flat[0], y) * k  # the seeds' sum
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def probe(
    *,
    batch_size: int = 64,
    steps: int = 10,
    seeds: int = 4,
    stacked: tuple[int, ...] = (2, 4, 8),
    compile_: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """ms per seed-step of each way, on one thread; None where a way failed (with why)."""
    rt = resolve_runtime(TrainConfig(threads=1, device=device))  # type: ignore[arg-type]
    amp, dev = rt.autocast, rt.device
    gen = torch.Generator().manual_seed(0)
    most = max(seeds, *stacked)
    xs = torch.randn(most, batch_size, 1, 28, 28, generator=gen).to(dev)
    ys = torch.randint(0, 10, (most, batch_size), generator=gen).to(dev)
    x, y = xs[0].contiguous(memory_format=torch.channels_last), ys[0]
    out: dict[str, Any] = {
        "device": dev.type,
        "batch_size": batch_size,
        "steps": steps,
        "seeds_batched": seeds,
        "precision": "bf16" if rt.amp_dtype is not None else "fp32",
        "ms_per_seed_step": {},
        "errors": {},
    }
    ms = out["ms_per_seed_step"]
    with threads(1):
        for kernels in ("stock", "tuned"):
            step = _plain_step(_net(0, kernels, dev), x, y, amp)
            ms[kernels] = 1000 * _time(step, 3, steps, dev)
        for k in stacked:
            name = f"stacked_{k}_seeds"
            try:
                ms[name] = 1000 * _time(_stacked_step(k, xs, ys, amp), 2, steps, dev) / k
            except Exception as e:  # noqa: BLE001 - a kernel the device lacks: reported
                out["errors"][name] = _first_line(e)
        try:
            step = _vmap_step(seeds, xs[:seeds], ys[:seeds], amp)
            ms[f"vmap_{seeds}_seeds"] = 1000 * _time(step, 1, max(1, steps // 3), dev) / seeds
        except Exception as e:  # noqa: BLE001 - e.g. a batching rule torch lacks: reported
            out["errors"][f"vmap_{seeds}_seeds"] = _first_line(e)
        if compile_:
            try:
                net = _net(0, "stock", dev)
                opt_step = _plain_step(net, x, y, amp, torch.compile(net))
                # one timed call, no warm-up: the first step compiles forward and backward
                out["compile_s"] = _time(opt_step, 0, 1, dev)
                ms["compile"] = 1000 * _time(opt_step, 2, steps, dev)
                # a study trains one architecture many times: the next network of it finds
                # inductor's and AOTAutograd's caches warm (dynamo still traces it)
                again = _net(1, "stock", dev)
                step = _plain_step(again, x, y, amp, torch.compile(again))
                out["compile_again_s"] = _time(step, 0, 1, dev)
            except Exception as e:  # noqa: BLE001 - a compiler failure is a finding, not a crash
                out["errors"]["compile"] = _first_line(e)
            name = f"stacked_{seeds}_seeds_compiled"
            try:  # both levers at once: K seeds per op, and the op fusion of inductor
                step = _stacked_step(seeds, xs, ys, amp, compiled=True)
                out["stacked_compile_s"] = _time(step, 0, 1, dev)
                ms[name] = 1000 * _time(step, 2, steps, dev) / seeds
            except Exception as e:  # noqa: BLE001 - reported
                out["errors"][name] = _first_line(e)
    base = ms["stock"]
    out["vs_stock"] = {k: base / v for k, v in ms.items()}
    return out
