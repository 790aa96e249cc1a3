"""Showing a study's progress while its workers run: runs done/total, running epochs, an ETA.

The parent process polls the storage about once a second (the workers write every state there)
and shows a tqdm bar on a terminal, else a plain line at least every 30 s while epochs advance.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

from optuna.trial import TrialState

from archlab.parallel import run_workers
from archlab.study.storage import connect

__all__ = ["Progress", "count_progress", "finished_before", "run_with_progress"]


class Progress:
    """Runs done/total, the running runs' epochs and an ETA: tqdm on a TTY, else plain lines."""

    PLAIN_EVERY_S = 30.0  # a plain line at least this often while epochs advance

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.total, self.desc, self.t0 = total, desc, time.monotonic()
        self.tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr) if self.tty else None
        self.last: tuple[int, str] = (-1, "")
        self.last_print = 0.0

    def update(self, done: int, running: list[str]) -> None:
        """Show the state; called about once a second."""
        now_text = "; ".join(running)
        if self.bar is not None:
            self.bar.set_postfix_str(now_text[:100], refresh=False)
            self.bar.update(done - self.bar.n)  # update(), not n =: tqdm's ETA needs the rate
            self.bar.refresh()
            return
        now = time.monotonic()
        if (done, now_text) == self.last or (
            done == self.last[0] and now - self.last_print < self.PLAIN_EVERY_S
        ):
            return
        elapsed = now - self.t0
        eta = f", eta {_duration(elapsed / done * (self.total - done))}" if done else ""
        line = f"{self.desc}: {done}/{self.total} runs, {_duration(elapsed)}{eta}"
        print(line + (f" | {now_text}" if now_text else ""), file=sys.stderr, flush=True)
        self.last, self.last_print = (done, now_text), now

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def finished_before(studies: list[Any]) -> set[tuple[int, int]]:
    """(study index, trial number) of every trial already finished: not counted as progress."""
    return {
        (i, t.number)
        for i, s in enumerate(studies)
        for t in s.get_trials(deepcopy=False)
        if t.state.is_finished()
    }


def count_progress(
    trials: list[list[Any]], before: set[tuple[int, int]], keys: set[str] | None
) -> tuple[int, list[str]]:
    """Runs finished since the start and the running runs' texts, over several studies' trials.

    A run is counted once it ends (complete or failed) unless it had ended before the start;
    with ``keys`` only trials of those planned keys count, each key once (a rerun of a failed
    key is the same run); duplicates of an already stored run never count.
    """
    done: set[Any] = set()
    running = []
    for i, study_trials in enumerate(trials):
        for t in study_trials:
            a = t.user_attrs
            if "duplicate_of" in a or (keys is not None and a.get("key") not in keys):
                continue
            if t.state in (TrialState.COMPLETE, TrialState.FAIL):
                if (i, t.number) not in before:
                    done.add(a.get("key") if keys is not None else (i, t.number))
            elif t.state == TrialState.RUNNING and "epoch" in a:
                running.append(_running_text(a))
    return len(done), running


def _running_text(attrs: dict[str, Any]) -> str:
    """How far a running run is, from its user attrs: ``label sSEED epoch E/N``."""
    epochs = math.ceil(attrs["recipe"]["epochs"])
    return f"{attrs['label']} s{attrs['seed']} epoch {attrs['epoch']:g}/{epochs}"


def run_with_progress(
    jobs: int,
    target: Callable[..., Any],
    kwargs: dict[str, Any],
    *,
    url: str,
    study_names: list[str],
    total: int,
    desc: str,
    keys: set[str] | None = None,
) -> list[int]:
    """``run_workers(jobs, target, kwargs)`` while showing the runs finished; exit codes.

    ``total`` runs are expected over the named studies (tuning keeps one per variant): the
    planned ``keys`` of a comparison, or (``keys`` None) any trial that ends after the start.
    """
    studies = [connect(url, n)[0] for n in study_names]
    before = finished_before(studies)
    progress = Progress(total, desc)

    def poll() -> None:
        trials = [s.get_trials(deepcopy=False) for s in studies]
        progress.update(*count_progress(trials, before, keys))

    try:
        return run_workers(jobs, target, kwargs, poll=poll)
    finally:
        progress.close()
