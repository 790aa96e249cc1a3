"""The reference loop: a hand-written PyTorch training run, paired with the trainer's.

What a user writes by hand: a DataLoader over normalized float tensors, NCHW, fp32, SGD with
momentum, one-cycle lr, the aux loss. At the same seed it starts from the trainer's initial
weights and sees the trainer's batches, so the two differ only in how they compute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from archlab.arch.models import build_model
from archlab.arch.spec import ArchSpec
from archlab.train.config import TrainConfig
from archlab.train.data import Dataset, normalize
from archlab.train.runtime import isolated_torch_state, synchronize
from archlab.train.trainer import DATA_SEED_SALT

WARM_STEPS = 3  # steps left out of the steady-state timing (kernel setup)


def _loader(data: Dataset, cfg: TrainConfig) -> DataLoader:
    """DataLoader over float tensors normalized once, shuffled like archlab orders its batches."""
    x = normalize(data.train_x, data.mean, data.std)
    ds = TensorDataset(x, data.train_y)
    # archlab draws each epoch's permutation from a generator seeded seed ^ salt; the same seed
    # here gives the same batches, so the two loops differ only in how they compute (paired)
    order = torch.Generator().manual_seed(cfg.seed ^ DATA_SEED_SALT)
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        sampler=RandomSampler(ds, generator=order),
        drop_last=True,
        generator=torch.Generator().manual_seed(cfg.seed),  # the loader's own draw: not `order`
    )


def _forever(loader: DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def baseline_run(
    data: Dataset, spec: ArchSpec, cfg: TrainConfig, steps: int, *, model: str = "inception_mini"
) -> dict[str, Any]:
    """``steps`` steps of the hand-written loop: test top-1, mean loss, timed images and seconds."""
    device = "cuda" if cfg.device == "cuda" else "cpu"
    # seeded as train() seeds before building: the same initial weights
    with isolated_torch_state(cfg, torch.device(device)):
        net = build_model(model, spec, num_classes=data.num_classes, in_chans=data.in_chans)
        net = net.to(device)
        opt = torch.optim.SGD(
            net.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=steps, cycle_momentum=False
        )
        batches = _forever(_loader(data, cfg))
        warm = min(WARM_STEPS, steps - 1)
        loss_sum = torch.zeros((), device=device)
        for i in range(steps):
            if i == warm:
                synchronize(device)
                start = time.perf_counter()
            x, y = (t.to(device) for t in next(batches))
            logits, aux = net(x)
            loss = F.cross_entropy(logits, y) + spec.aux_weight * F.cross_entropy(aux, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach()
        synchronize(device)
        elapsed = time.perf_counter() - start
        top1 = _top1(net, data, device, cfg.eval_batch_size)
    return {
        "test_top1": top1,
        "train_loss": loss_sum.item() / steps,
        "timed_images": (steps - warm) * cfg.batch_size,
        "timed_s": elapsed,
    }


@torch.no_grad()
def _top1(net: torch.nn.Module, data: Dataset, device: str, batch_size: int) -> float:
    """Test top-1 (%) of ``net`` in eval mode, fp32 NCHW."""
    net.eval()
    correct = 0
    for i in range(0, len(data.test_y), batch_size):
        x = normalize(data.test_x[i : i + batch_size], data.mean, data.std).to(device)
        correct += int((net(x).argmax(1).cpu() == data.test_y[i : i + batch_size]).sum())
    return 100 * correct / len(data.test_y)
