"""Where and how a run computes: device, autocast dtype, memory format, compiling, torch state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from archlab.train.config import TrainConfig
from archlab.train.data import Dataset, normalize

# compile="auto": on this project's 2-core AVX512-BF16 CPU (torch 2.13) compiled training steps
# of the mini model measured 0.8-0.95x eager speed (bf16 and fp32, channels_last) after 150 s of
# compiling, so "auto" never compiles on CPU. On CUDA, where compiling fuses the BN/ReLU/pool
# work that dominates these nets' steps, the trainer times COMPILE_PROBE_STEPS eager steps and
# compiles when the projected saving at an assumed 1.5x speedup exceeds the compile cost
# (compile_pays).
COMPILE_COST_S = 70.0
COMPILE_SPEEDUP = 1.5
COMPILE_PROBE_STEPS = 20  # eager steps timed before "auto" decides


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes."""

    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype; None = fp32
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def prepare(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """uint8 images on the device -> normalized float input in the model's memory format."""
        x = normalize(x, data.mean, data.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast pays."""
    # plain AVX-512 only emulates bf16 dot products in oneDNN, which is no faster than fp32
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if all(hasattr(cpu, c) for c in checks):
        return any(getattr(cpu, c)() for c in checks)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_runtime(config: TrainConfig) -> Runtime:
    """Device, autocast dtype and memory format the config asks for on this machine."""
    use_cuda = config.device == "cuda" or config.device == "auto" and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    if config.precision == "fp32":
        amp = None
    elif config.precision == "bf16":
        amp = torch.bfloat16
    elif use_cuda:
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    else:
        amp = torch.bfloat16 if cpu_has_fast_bf16() else None
    return Runtime(device, amp, config.channels_last)


def runtime_record(rt: Runtime, config: TrainConfig, kernels: str) -> dict[str, Any]:
    """How a run computes, for its RunResult: what ``auto`` resolved to on this machine."""
    from archlab import provenance

    return {
        "device": rt.device.type,
        "precision": "bf16" if rt.amp_dtype == torch.bfloat16 else "fp32",
        "channels_last": rt.channels_last,
        "threads": torch.get_num_threads() if config.threads is None else config.threads,
        "kernels": kernels,
        "cpu": provenance.cpu_model(),
        "cpu_flags": provenance.cpu_flags(),
        "gpu": torch.cuda.get_device_name(rt.device) if rt.device.type == "cuda" else None,
    }


def describe(config: TrainConfig, kernels: str = "tuned") -> str:
    """One line: what ``config`` computes with on this machine (printed at a run's start)."""
    r = runtime_record(resolve_runtime(config), config, kernels)
    precision = "bf16 autocast" if r["precision"] == "bf16" else "fp32"
    layout = "channels_last" if r["channels_last"] else "NCHW"
    where = r["gpu"] or f"{r['cpu']} ({', '.join(r['cpu_flags']) or 'no AVX2'})"
    return (
        f"{r['device']}, {precision}, {layout}, {r['threads']} torch thread(s), {kernels} "
        f"kernels on {where}"
    )


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` (None: left alone), restored afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compile_pays(eager_step_s: float, remaining_steps: int) -> bool:
    """Whether compiling (COMPILE_COST_S) repays itself over the remaining eager steps."""
    saved = eager_step_s * remaining_steps * (1 - 1 / COMPILE_SPEEDUP)
    return saved > COMPILE_COST_S


@contextlib.contextmanager
def isolated_torch_state(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG for the run and restore it and the thread count afterwards."""
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    else:
        cuda = []
    with threads(config.threads), torch.random.fork_rng(devices=cuda):
        # init and dropout draw from the global RNG; fork_rng gives it back untouched
        torch.manual_seed(config.seed)
        yield


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA); nothing on CPU, where ops run synchronously."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
