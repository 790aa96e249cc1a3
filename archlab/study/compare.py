"""Comparison studies: enqueue each planned cell once, and workers that claim and run them.

- Plan: each cell's content key (plan.run_key) is enqueued (``enqueue_trial`` with the resolved
  configuration as user attrs) unless a trial of that key is COMPLETE, RUNNING or WAITING.
  COMPLETE includes diverged runs (a result); FAIL ones are enqueued again. Cells are enqueued
  seed-major (every variant's first seed before any second one), so a study stopped early has
  whole seeds, paired across variants. The plan line says what is left and how long it takes.
- Work: a worker claims a WAITING trial (optuna's atomic WAITING -> RUNNING pop), trains it and
  tells the result. If two planners enqueued one key, the trial with the lowest number among the
  live ones runs and the others end PRUNED with a ``duplicate_of`` attr.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from archlab.parallel import cap_jobs
from archlab.provenance import usable_cores
from archlab.study.estimate import estimate_line, per_run_s
from archlab.study.meta import plan_record, study_meta
from archlab.study.optuna_compat import claim_waiting_trial
from archlab.study.plan import Cell, plan_cells
from archlab.study.progress import run_with_progress
from archlab.study.schema import StudyDef
from archlab.study.storage import connect
from archlab.study.trials import (
    FAILED_ELSEWHERE,
    cell_attrs,
    fail_stale,
    run_claimed,
    score,
    train_trial,
)
from archlab.study.tune import grid_of, run_tune

__all__ = [
    "duplicate_of",
    "enqueue",
    "open_compare",
    "run_cells",
    "run_compare",
    "seed_major",
    "unfinished",
    "work",
]


def enqueue(study: optuna.Study, cells: Sequence[Cell]) -> list[str]:
    """Enqueue every cell lacking a COMPLETE, RUNNING or WAITING trial; return unfinished keys."""
    live = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    states: dict[str, set[TrialState]] = {}
    for t in study.get_trials(deepcopy=False):
        if "duplicate_of" not in t.user_attrs:
            states.setdefault(t.user_attrs.get("key", ""), set()).add(t.state)
    pending = []
    for cell in cells:
        key = cell.key
        if TrialState.COMPLETE in states.get(key, set()) or key in pending:
            continue
        pending.append(key)
        if not states.get(key, set()) & set(live):
            attrs = cell_attrs(cell.model, cell.spec, cell.config, cell.scale, cell.variant)
            study.enqueue_trial({}, user_attrs=attrs)
    return pending


def duplicate_of(study: optuna.Study, number: int, key: str) -> int | None:
    """Another trial of the same key that is done, or live with a lower number."""
    for t in study.get_trials(deepcopy=False):
        if t.number == number or t.user_attrs.get("key") != key:
            continue
        if t.state == TrialState.COMPLETE:
            return t.number
        if t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number < number:
            return t.number
    return None


def work(url: str, study_name: str) -> None:
    """Worker loop of a comparison: claim enqueued trials and run them until none are left."""
    study, storage = connect(url, study_name)
    fail_stale(study)
    while (trial := claim_waiting_trial(study)) is not None:
        dup = duplicate_of(study, trial.number, trial.user_attrs["key"])
        if dup is not None:  # two planners enqueued this cell; the lower trial runs it
            trial.set_user_attr("duplicate_of", dup)
            study.tell(trial, state=TrialState.PRUNED)
            continue
        outcome = run_claimed(
            storage, study, trial, lambda t=trial: score(train_trial(t), "test_top1")
        )
        if outcome == FAILED_ELSEWHERE:
            _failed_elsewhere(trial.number)


def _failed_elsewhere(number: int) -> None:
    """Say that a worker's trial was failed as stale by another one while it trained."""
    # Its heartbeat stopped for the grace period (a suspended machine, a database out of reach):
    # another worker failed it, and the next plan enqueues the run again. This attempt is not
    # recorded, so the run still ends done once; the worker goes on to the next run.
    print(
        f"archlab: warning: trial {number} was failed as stale by another worker while it "
        "trained here (no heartbeat for the grace period); dropped, the next plan reruns it",
        file=sys.stderr,
    )


def seed_major(cells: Sequence[Cell]) -> list[Cell]:
    """Cells ordered seed by seed (every variant's first seed, then its second, ...)."""
    order = {seed: i for i, seed in enumerate(dict.fromkeys(c.seed for c in cells))}
    return sorted(cells, key=lambda c: order[c.seed])  # stable: variants keep their order


def unfinished(study: optuna.Study, cells: Sequence[Cell]) -> list[Cell]:
    """The cells without a COMPLETE trial (what running them would still train)."""
    done = {
        t.user_attrs.get("key")
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    return [c for c in cells if c.key not in done]


def open_compare(
    study_def: StudyDef,
    url: str,
    name: str,
    scale: str,
    jobs: int,
    overrides: list[str],
    tune: list[str],
    tune_trials: int,
    numerics: dict[str, Any],
    seeds: Sequence[int] | None = None,
) -> tuple[optuna.Study, list[Cell]]:
    """Tune (if asked), plan the cells with ``numerics``, create the study and pin them there."""
    tuned = None
    grid = grid_of(study_def, scale)
    if tune:
        tuned = run_tune(study_def, url, scale, jobs, overrides, tune, tune_trials, numerics)
    elif grid:  # the study file's own choice: each variant's values picked on validation
        points = math.prod(len(v) for v in grid.values())
        tuned = run_tune(study_def, url, scale, jobs, overrides, list(grid), points, numerics, grid)
    cells = plan_cells(study_def, scale, overrides, tuned=tuned, numerics=numerics, seeds=seeds)
    study, _ = connect(url, name, directions=["maximize"])
    if "numerics" not in study.user_attrs:  # pinned at the first plan, kept by every later one
        study.set_user_attr("numerics", numerics)
    return study, cells


def run_cells(
    study_def: StudyDef,
    study: optuna.Study,
    url: str,
    scale: str,
    jobs: int,
    cells: Sequence[Cell],
    desc: str = "",
) -> list[int]:
    """Record ``cells`` as the plan, enqueue them seed by seed, say what it costs, run them."""
    cells = seed_major(cells)
    name, desc = study.study_name, desc or f"{study_def.name} [{scale}]"
    base = next(c for c in cells if c.is_baseline and not c.group)
    seeds = sorted({c.seed for c in cells})
    study.set_user_attr("meta", study_meta(study_def, scale, base.spec, base.config, seeds))
    study.set_user_attr("plan", plan_record(cells))
    fail_stale(study)
    pending = enqueue(study, cells)
    line = f"{desc}: {len(cells)} runs, {len(cells) - len(pending)} done, {len(pending)} to run"
    if pending:
        seconds, measured = per_run_s(study, base.config)
        line += "; " + estimate_line(len(pending), jobs, seconds, measured)
    print(line, file=sys.stderr, flush=True)
    if not pending:
        return []
    n = cap_jobs(jobs, len(usable_cores()), len(pending))
    return run_with_progress(
        n,
        work,
        {"url": url, "study_name": name},
        url=url,
        study_names=[name],
        total=len(pending),
        keys=set(pending),
        desc=desc,
    )


def run_compare(
    study_def: StudyDef,
    url: str,
    name: str,
    scale: str,
    jobs: int,
    overrides: list[str],
    tune: list[str],
    tune_trials: int,
    numerics: dict[str, Any],
) -> list[int]:
    """Tune (if asked), plan, enqueue and run a comparison with local workers; exit codes."""
    study, cells = open_compare(
        study_def, url, name, scale, jobs, overrides, tune, tune_trials, numerics
    )
    return run_cells(study_def, study, url, scale, jobs, cells)
