"""``archlab bench``'s measurements: archlab's trainer against a hand-written loop, on this machine.

Side by side in one process, on the same model (inception_mini, batch 256): training images/s
of the plain DataLoader/NCHW/fp32 loop of ``archlab.train.reference`` and of archlab's trainer;
effective training MACs/s against a matmul peak measured in the same run; test top-1 of both
loops after the same steps (paired seeds: same initial weights and batch order); the time to
count MACs/params of every variant; ``--jobs 1`` vs ``--jobs 2`` aggregate throughput; a
torch.profiler table of one step. ``archlab.report.bench`` judges the result against its
targets and writes ``bench.json`` and ``bench.md``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from archlab import provenance
from archlab.arch.models import default_spec
from archlab.arch.spec import ArchSpec
from archlab.report.bench import checks
from archlab.train import probes, throughput
from archlab.train.config import TrainConfig, preset
from archlab.train.data import DataError, Dataset, load_dataset
from archlab.train.profile import profile_step
from archlab.train.reference import baseline_run
from archlab.train.runtime import cpu_has_fast_bf16, synchronize, threads
from archlab.train.trainer import train

MODEL = "inception_mini"
DEVICES = ("auto", "cpu", "cuda")
MAX_SETTING = 100_000  # seeds or steps beyond this would run for days: refused up front
FULL_MODEL = "inception_v3_tv"  # full-size Inception-v3 for the counting target


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run."""

    quick: bool
    seeds: int
    steps: int  # optimizer steps per seed in the accuracy comparison (one epoch of a subset)
    batch_size: int
    throughput_epochs: int  # archlab's throughput run: short epochs, the first one dropped
    throughput_epoch_steps: int
    jobs_steps: int  # steps each --jobs worker trains
    matmul_n: int  # CPU matmul size; CUDA uses 4x
    matmul_s: float
    count_limit: int | None  # mini variants counted; None = every one
    threads: int | None  # torch threads; None = torch's default, what users get
    dataset: str
    test_images: int | None  # first N test images for the accuracy comparison; None = all
    eval_batch_size: int = 1024
    run_seeds: int = 5  # paired seeds of whole study-recipe runs, per trainer
    #: changes to the study recipe for the runs-per-hour comparison (none: the studies' own)
    run_recipe: tuple[tuple[str, Any], ...] = ()
    probe_batch: int = 64  # the study recipe's batch size
    probe_steps: int = 10
    probe_compile: bool = True  # torch.compile's probe costs a compile (~100 s on 2 cores)
    #: auto: the CPU, and CUDA too where there is one; cpu or cuda: that device alone
    device: str = "auto"
    gpu_workers: int = 4  # study-run workers sharing one GPU (each its own CUDA context)


FULL = Settings(
    quick=False,
    seeds=3,
    steps=40,
    batch_size=256,
    throughput_epochs=3,
    throughput_epoch_steps=4,
    jobs_steps=12,
    matmul_n=2048,
    matmul_s=1.5,
    count_limit=None,
    threads=None,
    dataset="fashion-mnist",
    # half the test split: the fp32 baseline evaluates at ~1/3 of its training speed, and the
    # paired loops are scored on the same images, so their gap needs no more to fit 5 minutes
    test_images=5000,
)
# tiny everything, one thread: seconds on a busy machine; the numbers mean nothing
QUICK = Settings(
    quick=True,
    seeds=2,
    steps=2,
    batch_size=32,
    throughput_epochs=2,
    throughput_epoch_steps=2,
    jobs_steps=2,
    matmul_n=256,
    matmul_s=0.05,
    count_limit=2,
    threads=1,
    dataset="synthetic:128",
    test_images=None,
    eval_batch_size=256,
    run_seeds=2,
    run_recipe=(("dataset", "synthetic:256"), ("train_subset", None), ("precise_bn", 2)),
    probe_batch=8,
    probe_steps=1,
    probe_compile=False,
)


def settings(
    *,
    quick: bool,
    seeds: int | None = None,
    steps: int | None = None,
    run_seeds: int | None = None,
    device: str = "auto",
) -> Settings:
    """FULL or QUICK with optional overrides of the seeds, steps per seed, study-run seeds and
    the device."""
    s = QUICK if quick else FULL
    if device not in DEVICES:
        raise ValueError(f"--device {device}: must be one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here; allowed: auto, cpu")
    for name, value in (("seeds", seeds), ("steps", steps), ("run-seeds", run_seeds)):
        if value is not None and not 1 <= value <= MAX_SETTING:
            raise ValueError(f"--{name} {value}: must be an integer from 1 to {MAX_SETTING:,}")
    return dataclasses.replace(
        s,
        seeds=seeds or s.seeds,
        steps=steps or s.steps,
        run_seeds=run_seeds or s.run_seeds,
        device=device,
    )


# --- machine ------------------------------------------------------------------------------------


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_info() -> dict[str, Any]:
    """archlab.provenance's machine record plus native bf16 and torch's default thread count."""
    return {
        **provenance.machine_info(),
        "bf16_native": cpu_has_fast_bf16(),
        "torch_threads_default": torch.get_num_threads(),
    }


# --- matmul peak ----------------------------------------------------------------------------------


def matmul_peak(device: str, dtype: torch.dtype, n: int, seconds: float) -> float:
    """Sustained GMAC/s of n x n x n matmuls (n**3 MACs each) run for about ``seconds``."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    out = torch.matmul(a, b)  # the first call picks and sets up the kernel
    synchronize(device)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count == 0:
        torch.matmul(a, b, out=out)
        synchronize(device)
        count += 1
    return count * n**3 / elapsed / 1e9


def peaks(device: str, s: Settings) -> dict[str, Any]:
    """bf16 (where the device computes it natively) and fp32 matmul peaks; the one to compare."""
    n = s.matmul_n * (4 if device == "cuda" else 1)  # a GPU needs bigger matmuls to saturate
    fp32 = matmul_peak(device, torch.float32, n, s.matmul_s)
    native_bf16 = device == "cuda" or cpu_has_fast_bf16()
    bf16 = matmul_peak(device, torch.bfloat16, n, s.matmul_s) if native_bf16 else None
    return {
        "n": n,
        "seconds": s.matmul_s,
        "threads": torch.get_num_threads(),
        "fp32_gmacs": fp32,
        "bf16_gmacs": bf16,
        "dtype": "bf16" if bf16 is not None else "fp32",
        "peak_gmacs": bf16 if bf16 is not None else fp32,
    }


# --- data and recipes -----------------------------------------------------------------------------


def bench_data(s: Settings) -> tuple[Dataset, bool]:
    """The accuracy comparison's data: one epoch of ``steps`` batches; (data, is it real)."""
    n = s.steps * s.batch_size
    real = not s.dataset.startswith("synthetic")
    try:
        data = load_dataset(s.dataset) if real else None
    except DataError:
        real = False
    if real:
        data = load_dataset(s.dataset, train_subset=min(n, len(data.train_y)))
    else:
        data = load_dataset(f"synthetic:{max(n, 40)}")
    n_test = min(s.test_images or len(data.test_y), len(data.test_y))
    return _shrink(data, len(data.train_y), n_test), real


def archlab_config(s: Settings, device: str) -> TrainConfig:
    """The studies' recipe (TrainConfig's defaults: SGD+Nesterov, one-cycle, bf16 where fast,
    channels_last, crop augmentation) at the benchmark's batch size; evaluation at the end only."""
    return TrainConfig(
        dataset=s.dataset,
        batch_size=s.batch_size,
        eval_batch_size=s.eval_batch_size,
        device=device,
        threads=s.threads,
        eval_every=1_000_000,
    )


def study_config(s: Settings, device: str = "cpu") -> TrainConfig:
    """The studies' recipe (preset ``study``) with the settings' changes: the runs-per-hour runs."""
    return preset("study").replace(threads=1, device=device, **dict(s.run_recipe))


def devices(s: Settings) -> list[str]:
    """The devices measured: the one asked for, or the CPU plus CUDA where there is a GPU."""
    if s.device != "auto":
        return [s.device]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _epochs_for(steps: int, n: int, batch_size: int) -> float:
    return steps / (n // batch_size)


# --- archlab --------------------------------------------------------------------------------------


def archlab_run(data: Dataset, spec: ArchSpec, cfg: TrainConfig, steps: int) -> dict[str, Any]:
    """One ``archlab.train.trainer.train`` run of ``steps`` steps: test top-1 and its img/s."""
    epochs = _epochs_for(steps, len(data.train_y), cfg.batch_size)
    result = train(spec, cfg.replace(epochs=epochs), model=MODEL, progress=False, dataset=data)
    if result.status != "complete":
        raise RuntimeError(f"archlab run {result.status}: {result.error}")
    return {
        "test_top1": result.final["test_top1"],
        "train_loss": result.history[-1]["train_loss"],
        "images_per_s": result.final["images_per_s"],
    }


def _shrink(data: Dataset, n_train: int, n_test: int) -> Dataset:
    return dataclasses.replace(
        data,
        train_x=data.train_x[:n_train],
        train_y=data.train_y[:n_train],
        test_x=data.test_x[:n_test],
        test_y=data.test_y[:n_test],
    )


def archlab_throughput(data: Dataset, spec: ArchSpec, cfg: TrainConfig, s: Settings) -> dict:
    """Steady-state img/s of ``train`` from its per-epoch history, the first epoch left out."""
    small = _shrink(data, s.throughput_epoch_steps * s.batch_size, s.batch_size)
    result = train(
        spec, cfg.replace(epochs=s.throughput_epochs), model=MODEL, progress=False, dataset=small
    )
    if result.status != "complete":
        raise RuntimeError(f"archlab throughput run {result.status}: {result.error}")
    per_epoch = [row["images_per_s"] for row in result.history]
    steady = per_epoch[1:] or per_epoch
    return {
        "images_per_s": statistics.harmonic_mean(steady),  # equal images per epoch
        "per_epoch_images_per_s": per_epoch,
        "steps": s.throughput_epochs * s.throughput_epoch_steps,
        "augment": cfg.augment,
    }


# --- MAC/param counting ---------------------------------------------------------------------------


def time_counting(limit: int | None) -> dict[str, Any]:
    """Seconds to count MACs/params of every mini variant (one axis at a time) + Inception-v3."""
    from archlab.arch.cost import complexity, flops_report
    from archlab.report.sweep import one_axis_variants

    variants = one_axis_variants(MODEL)[:limit]
    complexity.cache_clear()  # cold, as a fresh `archlab flops` would count
    start = time.perf_counter()
    for v in variants:
        flops_report(MODEL, list(v.overrides))
    mid = time.perf_counter()
    full = flops_report(FULL_MODEL)
    end = time.perf_counter()
    complexity.cache_clear()
    return {
        "variants": len(variants),
        "distinct_specs": len({v.spec for v in variants}),
        "full_model": FULL_MODEL,
        "full_model_macs": full["macs"],
        "mini_s": mid - start,
        "full_model_s": end - mid,
        "seconds": end - start,
        "threads": torch.get_num_threads(),
    }


# --- one device -----------------------------------------------------------------------------------


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def bench_device(device: str, data: Dataset, s: Settings, log: Callable[[str], None]) -> dict:
    """Peak, throughput, accuracy and profile of both loops on one device."""
    spec = default_spec(MODEL)
    cfg = archlab_config(s, device)
    out: dict[str, Any] = {"device": device, "load_start": _load()}
    log(f"[{device}] matmul peak")
    out["peak"] = peaks(device, s)
    # no augmentation in the accuracy runs: the baseline has none, so the gap measures how
    # archlab computes (bf16, channels_last, batching), not a different recipe
    acc_cfg = cfg.replace(augment=False)
    base_runs, arch_runs = [], []
    for seed in range(s.seeds):  # interleaved, so drifting load hits both loops alike
        log(f"[{device}] seed {seed}: baseline")
        base_runs.append(baseline_run(data, spec, acc_cfg.replace(seed=seed), s.steps, model=MODEL))
        log(f"[{device}] seed {seed}: archlab")
        arch_runs.append(archlab_run(data, spec, acc_cfg.replace(seed=seed), s.steps))
    log(f"[{device}] archlab throughput")
    out["archlab_throughput"] = archlab_throughput(data, spec, cfg, s)
    log(f"[{device}] profile")
    out["profile"] = profile_step(data, spec, cfg, model=MODEL)
    out["baseline"] = _summarize_baseline(base_runs)
    out["archlab"] = _summarize_archlab(arch_runs, out["archlab_throughput"]["images_per_s"])
    out["load_end"] = _load()
    return out


def _summarize_baseline(runs: list[dict[str, Any]]) -> dict[str, Any]:
    top1 = [r["test_top1"] for r in runs]
    mean, std = _mean_std(top1)
    images = sum(r["timed_images"] for r in runs)
    return {
        "images_per_s": images / sum(r["timed_s"] for r in runs),
        "test_top1": top1,
        "test_top1_mean": mean,
        "test_top1_std": std,
        "train_loss": [r["train_loss"] for r in runs],
    }


def _summarize_archlab(runs: list[dict[str, Any]], steady: float) -> dict[str, Any]:
    top1 = [r["test_top1"] for r in runs]
    mean, std = _mean_std(top1)
    return {
        "images_per_s": steady,
        "accuracy_runs_images_per_s": [r["images_per_s"] for r in runs],
        "test_top1": top1,
        "test_top1_mean": mean,
        "test_top1_std": std,
        "train_loss": [r["train_loss"] for r in runs],
    }


def derive(dev: dict[str, Any], macs: int) -> dict[str, Any]:
    """Speedup, effective MACs/s, share of the peak and the paired top-1 gap of one device."""
    base, arch = dev["baseline"], dev["archlab"]
    eff = 3 * macs * arch["images_per_s"] / 1e9  # forward + two backward matmuls per MAC
    gaps = [a - b for a, b in zip(arch["test_top1"], base["test_top1"], strict=True)]
    gap_mean, gap_std = _mean_std(gaps)
    return {
        "speedup": arch["images_per_s"] / base["images_per_s"],
        "effective_gmacs": eff,
        "baseline_effective_gmacs": 3 * macs * base["images_per_s"] / 1e9,
        "peak_fraction": eff / dev["peak"]["peak_gmacs"],
        "top1_gap": gap_mean,
        "top1_gap_per_seed": gaps,
        "top1_gap_std": gap_std,
    }


# --- the whole benchmark --------------------------------------------------------------------------


def _timed_log(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` with the seconds since the benchmark started in front."""
    start = time.perf_counter()
    return lambda msg: log(f"{time.perf_counter() - start:6.1f}s  {msg}")


def run_bench(s: Settings, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every measurement; the JSON-ready result with its target checks."""
    start = time.perf_counter()
    result: dict[str, Any] = {"version": 1, "settings": dataclasses.asdict(s)}
    result["machine"] = machine_info()
    loads = {"start": _load()}
    with threads(s.threads):  # the whole run: a thread count set for part would skew the rest
        result["machine"]["torch_threads_used"] = torch.get_num_threads()
        _measure(result, s, _timed_log(log))
    loads["end"] = _load()
    result["load_average"] = loads
    result["checks"] = checks(result)
    result["elapsed_s"] = time.perf_counter() - start
    return result


def _measure(result: dict[str, Any], s: Settings, log: Callable[[str], None]) -> None:
    from archlab.arch.cost import complexity

    log("counting MACs/params of every variant")
    result["counting"] = time_counting(s.count_limit)
    data, real = bench_data(s)
    result["data"] = {
        "dataset": "fashion-mnist" if real else "synthetic",
        "real": real,
        "note": "" if real else _synthetic_note(s),
        "train_images": len(data.train_y),
        "test_images": len(data.test_y),
    }
    # the arguments train() passes, so its runs find this count in complexity's cache
    shape = {"input_size": data.image_size, "in_chans": data.in_chans}
    cost = complexity(MODEL, default_spec(MODEL), **shape, num_classes=data.num_classes)
    result["model"] = {
        "name": MODEL,
        "macs": cost.macs,
        "params": cost.params,
        "input": [data.in_chans, *data.image_hw],
        "batch_size": s.batch_size,
    }
    result["devices"] = {}
    measured = devices(s)
    for device in measured:
        dev = bench_device(device, data, s, log)
        dev["derived"] = derive(dev, cost.macs)
        result["devices"][device] = dev
    # --jobs pins workers to cores: a CPU question, left out of a GPU-only bench
    result["jobs"] = None
    if "cpu" in measured:
        log("--jobs 1 vs --jobs 2")
        result["jobs"] = throughput.jobs_compare(s.jobs_steps, s.batch_size)
    # the studies' own device: the GPU where the bench measures one (studies pick it on auto)
    main = measured[-1]
    log(f"study runs per hour ({main}): {s.run_seeds} paired seeds of each trainer")
    n_workers = s.gpu_workers if main == "cuda" else len(provenance.usable_cores())
    result["study_runs"] = throughput.measure(study_config(s, main), s.run_seeds, n_workers)
    log("step-time probes: tuned kernels, batched seeds" + (", torch.compile" * s.probe_compile))
    result["probes"] = probes.probe(
        batch_size=s.probe_batch, steps=s.probe_steps, compile_=s.probe_compile, device=main
    )
    log("done")


def _synthetic_note(s: Settings) -> str:
    if s.dataset.startswith("synthetic"):
        return "synthetic data by request (--quick): accuracies say nothing about Fashion-MNIST"
    return "Fashion-MNIST files not found: synthetic data instead; accuracies are not comparable"
