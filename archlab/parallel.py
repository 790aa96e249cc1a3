"""Local worker processes, each pinned to its own cores.

Unpinned training processes on one machine slow each other 4-5x; pinned to separate cores
(``os.sched_setaffinity``) two of them give ~1.1-1.2x the throughput of one (``archlab bench``
measures it). So ``--jobs N`` splits the usable cores into N disjoint sets and gives each worker
one set and ``torch.set_num_threads(len(set))``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from archlab.provenance import usable_cores

__all__ = ["cap_jobs", "pin", "run_workers", "split_cores", "usable_cores"]

POLL_S = 1.0  # how often the parent refreshes progress while workers run
PARENT_WATCH_S = 1.0  # how often a worker checks that the process that spawned it still lives
ORPHANED_EXIT = 3  # a worker's exit code when it stopped because its parent was gone


def split_cores(n_jobs: int, cores: list[int] | set[int]) -> list[set[int]]:
    """``cores`` split into ``n_jobs`` disjoint, contiguous, near-equal sets (first ones larger)."""
    cores = sorted(cores)
    if not 1 <= n_jobs <= len(cores):
        raise ValueError(f"cannot split {len(cores)} cores among {n_jobs} jobs")
    size, extra = divmod(len(cores), n_jobs)
    out, start = [], 0
    for i in range(n_jobs):
        end = start + size + (i < extra)
        out.append(set(cores[start:end]))
        start = end
    return out


def cap_jobs(n_jobs: int, n_cores: int, n_tasks: int | None = None) -> int:
    """``n_jobs`` capped at the cores (with a warning line) and at the tasks there are."""
    if n_jobs < 1:
        raise ValueError(f"--jobs {n_jobs}: need at least 1")
    if n_jobs > n_cores:
        print(
            f"archlab: warning: --jobs {n_jobs} > {n_cores} usable cores; using {n_cores} "
            "(more processes than cores slow each other down)",
            file=sys.stderr,
        )
        n_jobs = n_cores
    return max(1, min(n_jobs, n_tasks)) if n_tasks is not None else n_jobs


def pin(cores: set[int]) -> None:
    """Pin this process to ``cores`` and size torch's thread pool to match."""
    import torch

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    torch.set_num_threads(len(cores))


def _entry(
    cores: set[int], target: Callable[..., Any], kwargs: dict[str, Any], parent: int
) -> None:
    pin(cores)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    target(**kwargs)


def _watch_parent(parent: int) -> None:
    """End this worker when its parent is gone (killed without passing a signal on)."""
    # A SIGKILLed engine leaves its spawned workers training on the cores a restarted study
    # wants; their in-flight trials stay RUNNING and the next run fails them as stale (same
    # host, dead pid) and trains them again, so stopping here loses nothing that is stored.
    while os.getppid() == parent:
        time.sleep(PARENT_WATCH_S)
    os._exit(ORPHANED_EXIT)


def run_workers(
    n_jobs: int,
    target: Callable[..., Any],
    kwargs: dict[str, Any],
    *,
    poll: Callable[[], None] | None = None,
) -> list[int]:
    """Run ``target(**kwargs)`` in ``n_jobs`` pinned workers; call ``poll`` every second.

    ``n_jobs == 1`` runs in this process (unpinned: it may use every core) with ``poll`` on a
    thread. Returns the workers' exit codes (0 = clean). ``target`` must be a module-level
    function and ``kwargs`` picklable: workers are spawned, not forked, so no torch/optuna
    state or open storage handle is shared.
    """
    if n_jobs == 1:
        return [_run_here(target, kwargs, poll)]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_entry, args=(cores, target, kwargs, os.getpid()), name=f"archlab-worker-{i}"
        )
        for i, cores in enumerate(split_cores(n_jobs, usable_cores()))
    ]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            if poll is not None:
                poll()
            for p in procs:
                p.join(timeout=POLL_S / len(procs))
    finally:
        # Ctrl-C reaches the workers too (same process group); give them time to mark their
        # trials failed, then stop any that hang.
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    if poll is not None:
        poll()
    return [p.exitcode or 0 for p in procs]


def _run_here(
    target: Callable[..., Any], kwargs: dict[str, Any], poll: Callable[[], None] | None
) -> int:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(POLL_S):
            poll()

    thread = threading.Thread(target=loop, daemon=True) if poll is not None else None
    if thread is not None:
        thread.start()
    try:
        target(**kwargs)
    finally:
        stop.set()
        if thread is not None:
            thread.join()
    if poll is not None:
        poll()
    return 0
