"""What a plan costs before it runs: its run count (a huge one needs ``--yes``) and its wall time.

Per-run seconds come from the mean ``wall_time_s`` of the study's runs completed on this machine;
without any, from a rough prior: ROUGH_IMAGES_PER_S training images a second per worker (one
core, the mini model), times the recipe's images and epochs. Nothing is trained to measure.
"""

from __future__ import annotations

import functools
import math
import socket

import optuna
from optuna.trial import TrialState

from archlab.provenance import usable_cores
from archlab.study.errors import StudyError
from archlab.train.config import TrainConfig

__all__ = [
    "MAX_RUNS_WITHOUT_YES",
    "ROUGH_IMAGES_PER_S",
    "check_size",
    "duration",
    "estimate_line",
    "mean_wall_s",
    "per_run_s",
    "workers_for",
]

#: a plan of more runs than this needs ``--yes``
MAX_RUNS_WITHOUT_YES = 1000
#: a rough prior, not a measurement: the mini model trains at very roughly this many images a
#: second on one CPU core (fashion-mnist, 28 px, batch 64-128); wider nets, larger images or
#: evaluation make it slower, a GPU faster. Only used until the study has runs of its own here.
ROUGH_IMAGES_PER_S = 300.0


def check_size(runs: int, yes: bool, what: str = "runs") -> None:
    """One line (StudyError) if a plan of ``runs`` is too big to start without ``--yes``."""
    if runs > MAX_RUNS_WITHOUT_YES and not yes:
        raise StudyError(
            f"this plan has {runs:,} {what} (more than {MAX_RUNS_WITHOUT_YES:,}): "
            "pass --yes to run them"
        )


def workers_for(jobs: int, pending: int) -> int:
    """The local workers that will run ``pending`` runs (as cap_jobs, without its warning)."""
    return max(1, min(jobs, len(usable_cores()), pending))


def mean_wall_s(study: optuna.Study) -> float | None:
    """Mean wall time of the study's planned runs completed on this machine; None if none."""
    host = socket.gethostname()
    # only the current plan's runs: a journal also keeps runs of earlier recipes, which cost
    # something else
    planned = {c.get("key") for c in study.user_attrs.get("plan") or []}
    walls = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        wall = (a.get("result") or {}).get("wall_time_s")
        mine = (a.get("owner") or {}).get("host") == host and a.get("key") in planned
        if mine and wall and "reused_from" not in a:
            walls.append(float(wall))
    return sum(walls) / len(walls) if walls else None


@functools.lru_cache(maxsize=16)
def _train_images(dataset: str, resize: int | None) -> int:
    from archlab.train.data import load_dataset

    return len(load_dataset(dataset, resize=resize).train_y)


def rough_run_s(config: TrainConfig) -> float:
    """The prior's seconds for one run of ``config``: images x epochs / ROUGH_IMAGES_PER_S."""
    images = config.train_subset
    if images is None:
        images = _train_images(config.dataset, config.resize) - config.val_size
    return max(1, images) * config.epochs / ROUGH_IMAGES_PER_S


def per_run_s(study: optuna.Study, config: TrainConfig) -> tuple[float, bool]:
    """(seconds per run, whether measured here): measured runs first, else the rough prior."""
    measured = mean_wall_s(study)
    if measured is not None:
        return measured, True
    return rough_run_s(config), False


def duration(seconds: float) -> str:
    """``1h05m``, ``12m30s`` or ``40s``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def estimate_line(pending: int, jobs: int, seconds: float, measured: bool) -> str:
    """``about 12m30s with 2 workers (45 s/run measured here)``, or a rough one."""
    n = workers_for(jobs, pending)
    total = math.ceil(pending / n) * seconds
    source = (
        "measured here"
        if measured
        else f"rough: a prior of {ROUGH_IMAGES_PER_S:g} training images/s per worker"
    )
    per_run = f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"
    return (
        f"about {duration(total)} with {n} worker{'s' if n > 1 else ''} ({per_run} s/run, {source})"
    )
