"""A torch.profiler table of the trainer's own training steps: top ops by self time, by kind."""

from __future__ import annotations

import time
from typing import Any

import torch

from archlab.arch.models import build_model
from archlab.arch.spec import ArchSpec
from archlab.train.config import TrainConfig
from archlab.train.data import Dataset
from archlab.train.runtime import isolated_torch_state, resolve_runtime, synchronize
from archlab.train.trainer import Trainer

PROFILE_WARM, PROFILE_STEPS = 2, 3  # steps run before profiling, steps profiled
TOP_OPS = 8  # ops listed by self time

#: Op-name fragments of each profile category (first match wins; the rest is "other").
OP_CATEGORIES: dict[str, tuple[str, ...]] = {
    "conv/matmul": ("conv", "addmm", "aten::mm", "aten::bmm", "matmul", "linear"),
    "batchnorm": ("batch_norm",),
    "relu": ("relu", "threshold_backward"),
    "pooling": ("pool",),
    "optimizer": ("_foreach", "sgd"),
    "copies/casts": ("copy_", "aten::to", "_to_copy", "contiguous", "clone", "cat"),
}


def _category(name: str) -> str:
    return next((c for c, keys in OP_CATEGORIES.items() if any(k in name for k in keys)), "other")


def profile_step(
    data: Dataset, spec: ArchSpec, cfg: TrainConfig, *, model: str = "inception_mini"
) -> dict[str, Any]:
    """torch.profiler table of archlab training steps: top ops by self time, categories."""
    from torch.profiler import ProfilerActivity, profile

    # the trainer's own step: profiling a re-implementation would explain nothing
    rt = resolve_runtime(cfg)
    on_cuda = rt.device.type == "cuda"
    with isolated_torch_state(cfg, rt.device):
        net = build_model(model, spec, num_classes=data.num_classes, in_chans=data.in_chans)
        net = net.to(rt.device)
        if rt.channels_last:
            net = net.to(memory_format=torch.channels_last)
        trainer = Trainer(net, spec, cfg.replace(epochs=1.0), data, rt)
        idx = torch.arange(trainer.batch_size)
        for _ in range(PROFILE_WARM):
            trainer.train_step(idx)
        synchronize(rt.device)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
        start = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(PROFILE_STEPS):
                trainer.train_step(idx)
            synchronize(rt.device)
        step_s = (time.perf_counter() - start) / PROFILE_STEPS
    return _profile_table(prof.key_averages(), on_cuda, step_s)


def _profile_table(events: Any, on_cuda: bool, step_s: float) -> dict[str, Any]:
    key = "self_device_time_total" if on_cuda else "self_cpu_time_total"
    rows = [(e.key, getattr(e, key), e.count) for e in events if getattr(e, key) > 0]
    total = sum(t for _, t, _ in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    categories: dict[str, float] = {}
    for name, t, _ in rows:
        categories[_category(name)] = categories.get(_category(name), 0.0) + 100 * t / total
    top = [
        {
            "op": name,
            "self_ms_per_step": t / 1000 / PROFILE_STEPS,
            "percent": 100 * t / total,
            "calls_per_step": count / PROFILE_STEPS,
        }
        for name, t, count in rows[:TOP_OPS]
    ]
    return {
        "time": "self CUDA time" if on_cuda else "self CPU time",
        "steps": PROFILE_STEPS,
        "step_ms_profiled": 1000 * step_s,
        "total_self_ms_per_step": total / 1000 / PROFILE_STEPS,
        "top_ops": top,
        "category_percent": dict(sorted(categories.items(), key=lambda kv: -kv[1])),
    }
