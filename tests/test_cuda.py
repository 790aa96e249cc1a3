"""The GPU path: every registered variant trains on CUDA, runs record the GPU, studies pin it.

Marked ``cuda`` and skipped where torch sees no GPU (CI has none); ``make test-cuda`` runs them
on a machine with one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from archlab.arch.models import build_model
from archlab.arch.spec import AXES, ArchSpec
from archlab.train.config import TrainConfig
from archlab.train.kernels import tune
from archlab.train.runtime import resolve_runtime
from archlab.train.trainer import train
from tests.studykit import run_cli, trials, write_study

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
]

OPTIONS = [(a, e.name) for a, reg in AXES.items() for e in reg]
#: ||cuda - cpu|| / ||cpu|| of fp32 logits: cuDNN may use TF32 for convolutions (~1e-3)
FP32_REL_TOL = 1e-2


def _spec(axis: str, option: str) -> ArchSpec:
    valid_n = getattr(AXES[axis].get(option), "valid_n", None)
    return ArchSpec(**{axis: option, "n": min(valid_n) if valid_n else 7})


def _net(spec: ArchSpec, device: str) -> nn.Module:
    torch.manual_seed(0)
    net = build_model("inception_mini", spec, num_classes=10, in_chans=1, input_size=28)
    return tune(net.to(device, memory_format=torch.channels_last), "tuned")


def _batch(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
    return x.to(device), torch.randint(0, 10, (16,), generator=gen).to(device)


@pytest.mark.parametrize(("axis", "option"), OPTIONS)
def test_every_variant_trains_a_bf16_step_on_cuda(axis: str, option: str) -> None:
    net = _net(_spec(axis, option), "cuda")
    x, y = _batch("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = net(x)
    logits, aux = out if isinstance(out, tuple) else (out, None)
    assert logits.shape == (16, 10) and logits.device.type == "cuda"
    loss = nn.functional.cross_entropy(logits.float(), y)
    if aux is not None:
        loss = loss + 0.4 * nn.functional.cross_entropy(aux.float(), y)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), (axis, option)
    assert torch.isfinite(loss), (axis, option)


@pytest.mark.parametrize(("axis", "option"), OPTIONS)
def test_every_variant_computes_the_cpu_logits_on_cuda(axis: str, option: str) -> None:
    spec = _spec(axis, option)
    x, _ = _batch("cpu")
    cpu = _net(spec, "cpu").eval()
    gpu = _net(spec, "cuda").eval()
    with torch.no_grad():
        ref = cpu(x).double()
        got = gpu(x.cuda()).double().cpu()
    rel = ((got - ref).norm() / ref.norm()).item()
    assert rel < FP32_REL_TOL, (axis, option, rel)


def test_a_cuda_run_records_the_gpu_and_bf16() -> None:
    cfg = TrainConfig(dataset="synthetic:256", epochs=1, batch_size=64, precise_bn=2, threads=1)
    assert resolve_runtime(cfg).device.type == "cuda"  # auto picks the GPU
    result = train(ArchSpec(width_mult=0.5), cfg, progress=False)
    assert result.status == "complete", result.error
    rt = result.runtime
    assert rt["device"] == "cuda" and rt["gpu"] == torch.cuda.get_device_name(0)
    assert rt["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert 0 <= result.final["test_top1"] <= 100


def test_cuda_runs_repeat_their_accuracy_within_noise() -> None:
    """Two identical CUDA runs agree closely (cuDNN may pick non-deterministic kernels)."""
    cfg = TrainConfig(dataset="synthetic:256", epochs=2, batch_size=64, threads=1)
    a, b = (train(ArchSpec(width_mult=0.5), cfg, progress=False) for _ in range(2))
    assert abs(a.final["test_top1"] - b.final["test_top1"]) <= 5.0


def test_a_study_on_cuda_pins_its_numerics_to_the_gpu(tmp_path: Path) -> None:
    path = write_study(tmp_path, "gpu", seeds=2)
    url = str(tmp_path / "journal.log")
    args = ["study", "run", str(path), "--scale", "smoke", "--jobs", "2", "--storage", url]
    code, out, err = run_cli([*args, "--results", str(tmp_path), "--no-report"])
    assert code == 0, err
    assert "cuda" in err  # the start line names the numerics
    done = [t for t in trials(url, "gpu-smoke") if t.state.name == "COMPLETE"]
    assert len(done) == 4
    assert {t.user_attrs["recipe"]["device"] for t in done} == {"cuda"}
