"""``archlab bench``: archlab's trainer against a hand-written PyTorch loop, on this machine.

Side by side in one process, on the same model (inception_mini, batch 256): training images/s
of a plain DataLoader/NCHW/fp32 loop and of ``archlab.train.train``; effective training MACs/s
against a matmul peak measured in the same run; test top-1 of both loops after the same steps
(paired seeds: same initial weights and batch order); the time to count MACs/params of every
variant; ``--jobs 1`` vs ``--jobs 2`` aggregate throughput; a torch.profiler table of one step.
Writes ``bench.md`` and ``bench.json``; speed targets print as PASS / FALLS SHORT lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from archlab.config import TrainConfig
from archlab.data import DataError, Dataset, load_dataset, normalize
from archlab.models import build_model, default_spec
from archlab.train import _DATA_SEED_SALT, cpu_has_fast_bf16, train
from archlab.variants import ArchSpec

MODEL = "inception_mini"
FULL_MODEL = "inception_v3_tv"  # full-size Inception-v3 for the counting target
WARM_STEPS = 3  # baseline steps left out of its steady-state timing (kernel setup)
PROFILE_WARM, PROFILE_STEPS = 2, 3
TOP_OPS = 8
JOBS_BARRIER_TIMEOUT_S = 300

#: id -> (what is checked, goal); ``checks`` measures each against its goal.
TARGETS: dict[str, tuple[str, float]] = {
    "speedup": ("archlab img/s >= 3x baseline img/s", 3.0),
    "top1_gap": ("|mean top-1 difference| <= 0.5 pt", 0.5),
    "mac_util": ("effective training MACs/s >= 20% of matmul peak", 0.20),
    "jobs": ("--jobs 2 aggregate img/s >= 1.1x --jobs 1", 1.1),
    "count_s": ("MACs/params of every variant + full Inception-v3 <= 10 s", 10.0),
}

#: Op-name fragments of each profile category (first match wins; the rest is "other").
OP_CATEGORIES: dict[str, tuple[str, ...]] = {
    "conv/matmul": ("conv", "addmm", "aten::mm", "aten::bmm", "matmul", "linear"),
    "batchnorm": ("batch_norm",),
    "relu": ("relu", "threshold_backward"),
    "pooling": ("pool",),
    "optimizer": ("_foreach", "sgd"),
    "copies/casts": ("copy_", "aten::to", "_to_copy", "contiguous", "clone", "cat"),
}


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
)


def settings(*, quick: bool, seeds: int | None = None, steps: int | None = None) -> Settings:
    """FULL or QUICK with optional overrides of the seeds and the steps per seed."""
    s = QUICK if quick else FULL
    for name, value in (("seeds", seeds), ("steps", steps)):
        if value is not None and value < 1:
            raise ValueError(f"--{name} {value}: must be >= 1")
    return dataclasses.replace(s, seeds=seeds or s.seeds, steps=steps or s.steps)


# --- machine ------------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx2")
                return [f for f in wanted if f in line.split()]
    return []


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, torch version, bf16 support, threads, GPU."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cores": len(cores) or os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bf16_native": cpu_has_fast_bf16(),
        "torch_threads_default": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` (None: left alone), restored afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# --- matmul peak ----------------------------------------------------------------------------------


def matmul_peak(device: str, dtype: torch.dtype, n: int, seconds: float) -> float:
    """Sustained GMAC/s of n x n x n matmuls (n**3 MACs each) run for about ``seconds``."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    out = torch.matmul(a, b)  # the first call picks and sets up the kernel
    _sync(device)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count == 0:
        torch.matmul(a, b, out=out)
        _sync(device)
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


def _epochs_for(steps: int, n: int, batch_size: int) -> float:
    return steps / (n // batch_size)


# --- the hand-written baseline ------------------------------------------------------------------


def _loader(data: Dataset, cfg: TrainConfig) -> DataLoader:
    """DataLoader over float tensors normalized once, shuffled like archlab orders its batches."""
    x = normalize(data.train_x, data.mean, data.std)
    ds = TensorDataset(x, data.train_y)
    # archlab draws each epoch's permutation from a generator seeded seed ^ salt; the same seed
    # here gives the same batches, so the two loops differ only in how they compute (paired)
    order = torch.Generator().manual_seed(cfg.seed ^ _DATA_SEED_SALT)
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


def baseline_run(data: Dataset, spec: ArchSpec, cfg: TrainConfig, steps: int) -> dict[str, Any]:
    """The loop a user writes by hand: DataLoader, NCHW, fp32, SGD momentum, aux loss."""
    device = "cuda" if cfg.device == "cuda" else "cpu"
    with torch.random.fork_rng(devices=[0] if device == "cuda" else []), _threads(cfg.threads):
        torch.manual_seed(cfg.seed)  # as train() seeds before building: the same initial weights
        net = build_model(MODEL, spec, num_classes=data.num_classes, in_chans=data.in_chans)
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
                _sync(device)
                start = time.perf_counter()
            x, y = (t.to(device) for t in next(batches))
            logits, aux = net(x)
            loss = F.cross_entropy(logits, y) + spec.aux_weight * F.cross_entropy(aux, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach()
        _sync(device)
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


# --- archlab --------------------------------------------------------------------------------------


def archlab_run(data: Dataset, spec: ArchSpec, cfg: TrainConfig, steps: int) -> dict[str, Any]:
    """One ``archlab.train.train`` run of ``steps`` steps: test top-1 and its img/s."""
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


# --- profile --------------------------------------------------------------------------------------


def _category(name: str) -> str:
    return next((c for c, keys in OP_CATEGORIES.items() if any(k in name for k in keys)), "other")


def profile_step(data: Dataset, spec: ArchSpec, cfg: TrainConfig) -> dict[str, Any]:
    """torch.profiler table of archlab training steps: top ops by self time, categories."""
    from torch.profiler import ProfilerActivity, profile

    # the trainer's own step (private): profiling a re-implementation would explain nothing
    from archlab.train import _Trainer, resolve_runtime

    rt = resolve_runtime(cfg)
    on_cuda = rt.device.type == "cuda"
    with torch.random.fork_rng(devices=[0] if on_cuda else []), _threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        net = build_model(MODEL, spec, num_classes=data.num_classes, in_chans=data.in_chans)
        net = net.to(rt.device)
        if rt.channels_last:
            net = net.to(memory_format=torch.channels_last)
        trainer = _Trainer(net, spec, cfg.replace(epochs=1.0), data, rt)
        idx = torch.arange(trainer.batch_size)
        for _ in range(PROFILE_WARM):
            trainer.train_step(idx)
        _sync(rt.device.type)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
        start = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(PROFILE_STEPS):
                trainer.train_step(idx)
            _sync(rt.device.type)
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


# --- MAC/param counting ---------------------------------------------------------------------------


def time_counting(limit: int | None) -> dict[str, Any]:
    """Seconds to count MACs/params of every mini variant (one axis at a time) + Inception-v3."""
    from archlab.flops_report import one_axis_variants
    from archlab.measure import complexity, flops_report

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


# --- --jobs 1 vs --jobs 2 -------------------------------------------------------------------------


def jobs_worker(*, steps: int, batch_size: int, out_dir: str, barrier: Any = None) -> None:
    """One --jobs worker: train the bench model ``steps`` steps; write its timing window."""
    from archlab.measure import complexity

    data = _shrink(load_dataset(f"synthetic:{steps * batch_size}"), steps * batch_size, batch_size)
    # the CPU even where a GPU is present: this compares core pinning
    cfg = TrainConfig(
        dataset="synthetic", batch_size=batch_size, epochs=1.0, eval_every=1, device="cpu"
    )
    spec = default_spec(MODEL)
    # train() counts MACs first; counted here (cached) so the timed window is training alone
    size, chans, classes = data.image_size, data.in_chans, data.num_classes
    complexity(MODEL, spec, input_size=size, in_chans=chans, num_classes=classes)
    # a fresh worker's first run sets up kernels the bench process already has: warm both alike,
    # so the timed run is the steady state of a long study
    train(spec, cfg.replace(epochs=min(1.0, 2 / steps)), model=MODEL, progress=False, dataset=data)
    if barrier is not None:
        barrier.wait(JOBS_BARRIER_TIMEOUT_S)  # start together: the windows must overlap
    start = time.time()
    result = train(spec, cfg, model=MODEL, progress=False, dataset=data)
    end = time.time()
    row = {
        "pid": os.getpid(),
        "cores": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
        "threads": torch.get_num_threads(),
        "images": steps * batch_size,
        "start": start,
        "end": end,
        "train_s": result.final.get("train_time_s"),
        "status": result.status,
    }
    Path(out_dir, f"worker-{os.getpid()}.json").write_text(json.dumps(row))


def _run_jobs(n_jobs: int, steps: int, batch_size: int) -> dict[str, Any]:
    from archlab.parallel import run_workers

    with tempfile.TemporaryDirectory(prefix="archlab-bench-") as tmp:
        barrier = multiprocessing.get_context("spawn").Barrier(n_jobs) if n_jobs > 1 else None
        kwargs = {"steps": steps, "batch_size": batch_size, "out_dir": tmp, "barrier": barrier}
        codes = run_workers(n_jobs, jobs_worker, kwargs)
        if any(codes):
            raise RuntimeError(f"--jobs {n_jobs} benchmark workers failed: exit codes {codes}")
        workers = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("worker-*.json"))]
    window = max(w["end"] for w in workers) - min(w["start"] for w in workers)
    images = sum(w["images"] for w in workers)
    return {"images_per_s": images / window, "window_s": window, "workers": workers}


def jobs_compare(s: Settings) -> dict[str, Any]:
    """Aggregate img/s of one unpinned process vs two processes pinned to separate cores."""
    one = _run_jobs(1, s.jobs_steps, s.batch_size)
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    two = _run_jobs(2, s.jobs_steps, s.batch_size) if n_cores >= 2 else None
    return {
        "steps_per_worker": s.jobs_steps,
        "jobs1": one,
        "jobs2": two,
        "ratio": two["images_per_s"] / one["images_per_s"] if two else None,
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
        base_runs.append(baseline_run(data, spec, acc_cfg.replace(seed=seed), s.steps))
        log(f"[{device}] seed {seed}: archlab")
        arch_runs.append(archlab_run(data, spec, acc_cfg.replace(seed=seed), s.steps))
    log(f"[{device}] archlab throughput")
    out["archlab_throughput"] = archlab_throughput(data, spec, cfg, s)
    log(f"[{device}] profile")
    out["profile"] = profile_step(data, spec, cfg)
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


# --- targets --------------------------------------------------------------------------------------


#: how a shortfall of each target reads
_SHORT_UNITS: dict[str, Callable[[float], str]] = {
    "speedup": lambda v: f"{v:.2f}x",
    "top1_gap": lambda v: f"{v:.2f} pt",
    "mac_util": lambda v: f"{100 * v:.1f} percentage points",
    "jobs": lambda v: f"{v:.2f}x",
    "count_s": lambda v: f"{v:.1f} s",
}


def _check(tid: str, device: str | None, measured: float, shown: str) -> dict[str, Any]:
    what, goal = TARGETS[tid]
    if tid in ("top1_gap", "count_s"):  # upper bounds
        passed, short = abs(measured) <= goal, abs(measured) - goal
    else:
        passed, short = measured >= goal, goal - measured
    return {
        "id": tid,
        "device": device,
        "target": what,
        "goal": goal,
        "measured": measured,
        "shown": shown,
        "passed": passed,
        "shortfall": 0.0 if passed else short,
        "shortfall_shown": "" if passed else _SHORT_UNITS[tid](short),
        "reason": "",
    }


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured figure, PASS or not, and a likely reason when not."""
    out = []
    for device, dev in result["devices"].items():
        d = dev["derived"]
        out += [
            _check("speedup", device, d["speedup"], f"{d['speedup']:.2f}x"),
            _check("top1_gap", device, d["top1_gap"], f"{d['top1_gap']:+.2f} pt"),
            _check("mac_util", device, d["peak_fraction"], f"{100 * d['peak_fraction']:.1f}%"),
        ]
    ratio = result["jobs"]["ratio"]
    if ratio is not None:
        out.append(_check("jobs", "cpu", ratio, f"{ratio:.2f}x"))
    secs = result["counting"]["seconds"]
    out.append(_check("count_s", "cpu", secs, f"{secs:.1f} s"))
    for c in out:
        if not c["passed"]:
            c["reason"] = _reason(c, result)
    return out


def _busy_note(result: dict[str, Any]) -> str:
    cores = result["machine"]["usable_cores"] or 1
    load = max(result["load_average"].values())
    if load <= 0.75 * cores:
        return ""
    return (
        f" The 1-min load average reached {load:.1f} on {cores} cores during the run: other "
        "processes held the cores, and a torch thread waiting for a busy core stalls every op."
    )


def _reason(c: dict[str, Any], result: dict[str, Any]) -> str:
    """Why a target fell short, from the profile and the run's own numbers."""
    busy = _busy_note(result)
    if c["id"] == "count_s":
        cnt = result["counting"]
        return (
            f"{cnt['mini_s']:.1f} s for {cnt['variants']} mini variants ({cnt['distinct_specs']} "
            f"distinct), {cnt['full_model_s']:.1f} s for {cnt['full_model']} at "
            f"{cnt['threads']} torch threads: each count traces batch-1 forwards (fvcore twice, "
            "hooks once), whose tiny ops gain nothing from threads but pay a fork/join each." + busy
        )
    if c["id"] == "jobs":
        j = result["jobs"]
        below = " It is below --jobs 1." if c["measured"] < 1 else ""
        return (
            f"--jobs 1 {j['jobs1']['images_per_s']:.0f} img/s vs --jobs 2 "
            f"{j['jobs2']['images_per_s']:.0f} img/s: pinned workers only add throughput when "
            f"their cores are otherwise idle.{below}" + busy
        )
    dev = result["devices"][c["device"]]
    d, cats = dev["derived"], dev["profile"]["category_percent"]
    conv = cats.get("conv/matmul", 0.0)
    elementwise = sum(cats.get(k, 0.0) for k in ("batchnorm", "relu", "pooling"))
    if c["id"] == "top1_gap":
        sem = d["top1_gap_std"] / max(1, len(d["top1_gap_per_seed"])) ** 0.5
        gaps = ", ".join(f"{g:+.2f}" for g in d["top1_gap_per_seed"])
        return (
            f"paired per-seed gaps {gaps} pt (standard error {sem:.2f} pt): the loops share "
            "initial weights and batch order, so the gap is bf16/channels_last rounding "
            f"amplified over {result['settings']['steps']} steps"
            + (" and lies within seed noise." if abs(d["top1_gap"]) <= 2 * sem else ".")
        )
    top = dev["profile"]["top_ops"][0]
    profile = (
        f"the profiled archlab step spends {conv:.0f}% of its self time in conv/matmul ops and "
        f"{elementwise:.0f}% in BatchNorm/ReLU/pooling (forward + backward); the top op is "
        f"{top['op']} ({top['percent']:.0f}%)."
    )
    if c["id"] == "speedup":
        return (
            f"baseline {dev['baseline']['images_per_s']:.0f} img/s, archlab "
            f"{dev['archlab']['images_per_s']:.0f} img/s; {profile} bf16 and channels_last speed "
            "up convolutions much more than these memory-bound ops." + busy
        )
    conv_rate = d["effective_gmacs"] / max(conv / 100, 1e-9)
    return (
        f"{d['effective_gmacs']:.0f} GMAC/s vs a {dev['peak']['dtype']} matmul peak of "
        f"{dev['peak']['peak_gmacs']:.0f} GMAC/s; {profile} Counting only conv/matmul time, the "
        f"convolutions run at ~{conv_rate:.0f} GMAC/s: small channel counts (8-56) on 7-28 px "
        "grids keep them far from a large matmul's rate." + busy
    )


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
    with _threads(s.threads):  # the whole run: a thread count set for part would skew the rest
        result["machine"]["torch_threads_used"] = torch.get_num_threads()
        _measure(result, s, _timed_log(log))
    loads["end"] = _load()
    result["load_average"] = loads
    result["checks"] = checks(result)
    result["elapsed_s"] = time.perf_counter() - start
    return result


def _measure(result: dict[str, Any], s: Settings, log: Callable[[str], None]) -> None:
    from archlab.measure import complexity

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
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        dev = bench_device(device, data, s, log)
        dev["derived"] = derive(dev, cost.macs)
        result["devices"][device] = dev
    log("--jobs 1 vs --jobs 2")
    result["jobs"] = jobs_compare(s)
    log("done")


def _synthetic_note(s: Settings) -> str:
    if s.dataset.startswith("synthetic"):
        return "synthetic data by request (--quick): accuracies say nothing about Fashion-MNIST"
    return "Fashion-MNIST files not found: synthetic data instead; accuracies are not comparable"


def check_lines(result: dict[str, Any]) -> list[str]:
    """One PASS / FALLS SHORT line per target."""
    lines = []
    for c in result["checks"]:
        verdict = "PASS" if c["passed"] else "FALLS SHORT"
        lines.append(f"{verdict:<11} [{c['device']}] {c['target']}: {c['shown']}")
    return lines


# --- Markdown -------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _verdict(c: dict[str, Any]) -> str:
    return "PASS" if c["passed"] else f"FALLS SHORT by {c['shortfall_shown']}"


def _md_header(r: dict[str, Any]) -> list[str]:
    m, d, model, loads = r["machine"], r["data"], r["model"], r["load_average"]
    data = f"{d['dataset']} ({d['train_images']:,} train / {d['test_images']:,} test images)"
    lines = [
        "# archlab benchmark: the trainer vs a hand-written PyTorch loop",
        "",
        f"- machine: {m['cpu_model']}, {m['usable_cores']} usable cores, torch {m['torch']}, "
        f"native bf16: {'yes' if m['bf16_native'] else 'no'}, "
        f"{m['torch_threads_used']} torch threads" + (f", GPU {m['cuda']}" if m["cuda"] else ""),
        f"- 1-min load average: {loads['start']:.2f} at the start, {loads['end']:.2f} at the end "
        "(other processes on these cores make every figure noisy)",
        f"- model: {model['name']}, {model['macs']:,} MACs and {model['params']:,} params per "
        f"{'x'.join(map(str, model['input']))} image, batch {model['batch_size']}",
        f"- data: {data}" + (f". **{d['note']}**" if d["note"] else ""),
    ]
    if r["settings"]["quick"]:
        lines.append("- **--quick run: tiny sizes, one thread; the figures mean nothing**")
    return lines


def _md_results(r: dict[str, Any]) -> list[str]:
    seeds = r["settings"]["seeds"]
    rows = []
    for device, dev in r["devices"].items():
        dd, peak = dev["derived"], dev["peak"]
        for loop, key, eff in (
            ("baseline: DataLoader, NCHW, fp32", "baseline", dd["baseline_effective_gmacs"]),
            ("archlab: train()", "archlab", dd["effective_gmacs"]),
        ):
            x = dev[key]
            speed = dd["speedup"] if key == "archlab" else 1.0
            rows.append(
                [
                    device,
                    loop,
                    f"{x['images_per_s']:.0f}",
                    f"{speed:.2f}x",
                    f"{eff:.1f}",
                    f"{100 * eff / peak['peak_gmacs']:.1f}%",
                    f"{x['test_top1_mean']:.2f} ± {x['test_top1_std']:.2f}",
                ]
            )
        bf16 = f"{peak['bf16_gmacs']:.0f}" if peak["bf16_gmacs"] is not None else "n/a"
        rows.append(
            [device, f"matmul {peak['n']}^3: fp32 {peak['fp32_gmacs']:.0f}, bf16 {bf16} GMAC/s"]
            + [""] * 5
        )
    head = ["device", "loop", "train img/s", "vs baseline", "effective GMAC/s", "of peak"]
    head.append(f"test top-1 % (mean ± std, {seeds} seeds)")
    return ["", "## Results", "", *_table(head, rows), "", _results_note(r)]


def _results_note(r: dict[str, Any]) -> str:
    return (
        "Effective GMAC/s = 3 x forward MACs x img/s (forward, input-gradient and "
        "weight-gradient products); the peak is the bf16 matmul peak where the device computes "
        "bf16 natively, else fp32, measured in this run at the trainer's thread count. "
        "Baseline img/s leaves out each run's first steps; archlab's is the steady state of a "
        "run with crop augmentation (the studies' recipe), first epoch left out."
    )


def _md_targets(r: dict[str, Any]) -> list[str]:
    rows = [[c["target"], c["device"], c["shown"], _verdict(c)] for c in r["checks"]]
    lines = ["", "## Targets", "", *_table(["target", "device", "measured", "result"], rows)]
    short = [c for c in r["checks"] if not c["passed"]]
    if short:
        lines += ["", "Why the short ones fall short:", ""]
        lines += [f"- **{c['target']}** ({c['device']}): {c['reason']}" for c in short]
    return lines


def _md_profile(r: dict[str, Any]) -> list[str]:
    lines = []
    for device, dev in r["devices"].items():
        p = dev["profile"]
        rows = [
            [
                f"`{o['op']}`",
                f"{o['self_ms_per_step']:.2f}",
                f"{o['percent']:.1f}%",
                f"{o['calls_per_step']:g}",
            ]
            for o in p["top_ops"]
        ]
        cats = ", ".join(f"{k} {v:.0f}%" for k, v in p["category_percent"].items())
        lines += [
            "",
            f"## Profile of one archlab training step ({device}, top {TOP_OPS} ops by {p['time']})",
            "",
            f"{p['step_ms_profiled']:.0f} ms per step under the profiler (mean of {p['steps']} "
            f"steps after {PROFILE_WARM} warm-up steps), {p['total_self_ms_per_step']:.0f} ms of "
            "self time.",
            "",
            *_table(["op", "self ms/step", "share", "calls/step"], rows),
            "",
            f"Self time by kind (forward + backward): {cats}.",
        ]
    return lines


def _md_jobs(r: dict[str, Any]) -> list[str]:
    j = r["jobs"]
    rows = []
    for n, run in (("1", j["jobs1"]), ("2", j["jobs2"])):
        if run is None:
            continue
        cores = "; ".join(
            f"cores {','.join(map(str, w['cores']))} ({w['threads']} thr)" for w in run["workers"]
        )
        rows.append([n, cores, f"{run['images_per_s']:.0f}", f"{run['window_s']:.1f}"])
    ratio = f"{j['ratio']:.2f}x" if j["ratio"] is not None else "n/a (one core)"
    return [
        "",
        "## --jobs 1 vs --jobs 2 (cpu)",
        "",
        f"Each worker trains the model {j['steps_per_worker']} steps (archlab recipe, synthetic "
        "images); aggregate img/s = all images / the span from the first start to the last end "
        "(workers start together at a barrier, after process start-up). `--jobs 2` pins each "
        f"worker to its own cores via archlab.parallel. Ratio: **{ratio}**.",
        "",
        *_table(["jobs", "workers", "aggregate img/s", "window s"], rows),
    ]


def _md_counting(r: dict[str, Any]) -> list[str]:
    c = r["counting"]
    return [
        "",
        "## MAC/param counting",
        "",
        f"`flops_report` of {c['variants']} one-axis mini variants ({c['distinct_specs']} distinct "
        f"specs): {c['mini_s']:.1f} s; {c['full_model']} ({c['full_model_macs']:,} MACs): "
        f"{c['full_model_s']:.1f} s; total **{c['seconds']:.1f} s** at {c['threads']} torch "
        "threads, cache cleared first.",
    ]


def _md_settings(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    return [
        "",
        "## How it was measured",
        "",
        f"- Accuracy: {s['seeds']} seeds x {s['steps']} steps (one epoch of a "
        f"{s['steps'] * s['batch_size']:,}-image subset) per loop, scored on "
        f"{r['data']['test_images']:,} test images; per seed both loops start from "
        "the same weights and see the same batches (paired). The archlab runs use the studies' "
        "recipe without crop augmentation, because the baseline has none: the gap measures how "
        "archlab computes (bf16 autocast, channels_last, in-memory batches), not a recipe. Both: "
        "SGD + Nesterov momentum 0.9, one-cycle lr 0.1, weight decay 5e-4 (archlab: not on BN "
        "and biases), aux loss x0.4.",
        f"- archlab throughput: `train()` for {s['throughput_epochs']} epochs of "
        f"{s['throughput_epoch_steps']} steps with augmentation; img/s of epochs 2+ "
        "(RunResult.history, evaluation excluded).",
        f"- Whole benchmark: {r['elapsed_s']:.0f} s.",
    ]


def markdown(r: dict[str, Any]) -> str:
    """bench.md: results table, targets, profile, --jobs, counting, method."""
    parts = [_md_header, _md_results, _md_targets, _md_profile, _md_jobs]
    lines = [line for part in (*parts, _md_counting, _md_settings) for line in part(r)]
    return "\n".join(lines) + "\n"


def write_bench(result: dict[str, Any], out_dir: Path | str) -> dict[str, Path]:
    """Write bench.json and bench.md atomically into ``out_dir``."""
    from archlab.plots import write_atomic

    out = Path(out_dir)
    return {
        "json": write_atomic(out / "bench.json", json.dumps(result, indent=2) + "\n"),
        "md": write_atomic(out / "bench.md", markdown(result)),
    }
