"""Throughput the way studies see it: whole study runs per hour, and --jobs 1 vs --jobs 2.

What limits a study is how many seeded runs fit in an hour, so this times whole runs (loading,
training, precise BN, evaluation) the way a study makes them: one worker per core, pinned, one
torch thread each, pulling runs from one queue. The queue interleaves the two trainers seed by
seed (stock seed 0, tuned seed 0, stock seed 1, ...), so drifting load and the workers' one-off
start-up fall on both alike, and each seed's pair starts from the same weights and batches.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import queue
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from archlab import provenance
from archlab.arch.models import default_spec
from archlab.arch.spec import ArchSpec
from archlab.train.config import TrainConfig
from archlab.train.data import load_dataset
from archlab.train.kernels import KERNELS
from archlab.train.trainer import train

MODEL = "inception_mini"
JOBS_BARRIER_TIMEOUT_S = 300
TODAY, NEW = KERNELS[1], KERNELS[0]  # "stock": today's trainer; "tuned": the new one
JOB_WAIT_S = 2.0  # a spawned worker's first get may wait for the queue's feeder thread


def run_worker(*, jobs: Any, out_dir: str, config: dict[str, Any]) -> None:
    """One study worker: take (kernels, seed) jobs until the queue is empty; one JSON per run."""
    spec = ArchSpec()
    while True:
        try:
            kernels, seed = jobs.get(timeout=JOB_WAIT_S)
        except queue.Empty:
            return
        cfg = TrainConfig(**{**config, "seed": seed})
        result = train(spec, cfg, model=MODEL, progress=False, kernels=kernels)
        row = {
            "kernels": kernels,
            "seed": seed,
            "pid": os.getpid(),
            "cores": provenance.usable_cores(),
            "status": result.status,
            "error": result.error,
            "wall_s": result.wall_time_s,
            "train_s": result.final.get("train_time_s"),
            "test_top1": result.final.get("test_top1"),
            "device": result.runtime.get("device", "cpu"),
        }
        Path(out_dir, f"run-{kernels}-{seed}.json").write_text(json.dumps(row))


def measure(config: TrainConfig, seeds: int, n_workers: int) -> dict[str, Any]:
    """Both trainers over ``seeds`` paired seeds on ``n_workers`` pinned workers."""
    from archlab.parallel import run_workers

    ctx = multiprocessing.get_context("spawn")
    jobs = ctx.Queue()
    for seed in range(seeds):
        for kernels in (TODAY, NEW):
            jobs.put((kernels, seed))
    with tempfile.TemporaryDirectory(prefix="archlab-runs-") as tmp:
        kwargs = {"jobs": jobs, "out_dir": tmp, "config": config.to_dict()}
        codes = run_workers(n_workers, run_worker, kwargs)
        if any(codes):
            raise RuntimeError(f"study-run benchmark workers failed: exit codes {codes}")
        runs = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("run-*.json"))]
    bad = [r for r in runs if r["status"] != "complete"]
    if bad or len(runs) != 2 * seeds:
        raise RuntimeError(f"study-run benchmark: {len(runs)} runs, not complete: {bad}")
    return summarize(runs, n_workers)


def summarize(runs: list[dict[str, Any]], n_workers: int) -> dict[str, Any]:
    """Runs per hour of each trainer on all workers, their ratio and the paired accuracies."""
    by = {
        k: sorted((r for r in runs if r["kernels"] == k), key=lambda r: r["seed"]) for k in KERNELS
    }
    if [r["seed"] for r in by[TODAY]] != [r["seed"] for r in by[NEW]]:
        raise ValueError("every seed needs a run of both trainers")
    device = runs[0].get("device", "cpu") if runs else "cpu"
    out: dict[str, Any] = {"workers": n_workers, "device": device, "runs": runs}
    for k, rows in by.items():
        wall = statistics.fmean(r["wall_s"] for r in rows)
        train_s = statistics.fmean(r["train_s"] for r in rows)
        out[k] = {
            "mean_wall_s": wall,
            "mean_train_s": train_s,
            "mean_other_s": wall - train_s,  # loading, precise BN, evaluation
            # every worker busy with runs like these, back to back
            "runs_per_hour": n_workers * 3600 / wall,
            "test_top1": [r["test_top1"] for r in rows],
        }
    out["ratio"] = out[NEW]["runs_per_hour"] / out[TODAY]["runs_per_hour"]
    out["accuracy"] = paired_accuracy(out[TODAY]["test_top1"], out[NEW]["test_top1"])
    return out


def paired_accuracy(today: list[float], new: list[float]) -> dict[str, Any]:
    """New minus today per seed: mean, 95% t interval, and how many seeds agree to the bit."""
    from scipy import stats

    diffs = [b - a for a, b in zip(today, new, strict=True)]
    mean = statistics.fmean(diffs)
    n = len(diffs)
    if n > 1 and any(diffs):
        half = stats.t.ppf(0.975, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    else:
        half = 0.0 if not any(diffs) else math.inf  # one seed that differs: no interval
    return {
        "diffs": diffs,
        "mean": mean,
        "ci95": [float(mean - half), float(mean + half)],
        "identical": sum(d == 0 for d in diffs),
        "seeds": n,
        "within": bool(mean - half <= 0 <= mean + half),
    }


# --- --jobs 1 vs --jobs 2 -----------------------------------------------------------------------


def jobs_worker(*, steps: int, batch_size: int, out_dir: str, barrier: Any = None) -> None:
    """One --jobs worker: train the bench model ``steps`` steps; write its timing window."""
    from archlab.arch.cost import complexity

    full = load_dataset(f"synthetic:{steps * batch_size}")
    # one batch of test images: the window times training, not evaluation
    data = dataclasses.replace(
        full, test_x=full.test_x[:batch_size], test_y=full.test_y[:batch_size]
    )
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
        "cores": provenance.usable_cores(),
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


def jobs_compare(steps: int, batch_size: int) -> dict[str, Any]:
    """Aggregate img/s of one unpinned process vs two processes pinned to separate cores."""
    one = _run_jobs(1, steps, batch_size)
    n_cores = len(provenance.usable_cores())
    two = _run_jobs(2, steps, batch_size) if n_cores >= 2 else None
    return {
        "steps_per_worker": steps,
        "jobs1": one,
        "jobs2": two,
        "ratio": two["images_per_s"] / one["images_per_s"] if two else None,
    }
