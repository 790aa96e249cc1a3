"""``--tune``: per-variant recipe tuning (TPE) on a validation split before a comparison runs.

Each variant gets its own optuna study ``<study>-<scale>-tune-<variant>`` over the same
TUNE_SPACE ranges (fair to every variant), scored on validation accuracy; the best values then
replace the study's recipe for that variant's cells.
"""

from __future__ import annotations

import itertools
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from archlab.arch.spec import ArchSpec
from archlab.parallel import cap_jobs
from archlab.provenance import usable_cores
from archlab.study.errors import StudyError, StudyFileError
from archlab.study.optuna_compat import claim_waiting_trial
from archlab.study.plan import Cell, plan_cells
from archlab.study.progress import run_with_progress
from archlab.study.schema import StudyDef
from archlab.study.storage import connect
from archlab.study.trials import (
    RunFailed,
    cell_attrs,
    count_trials,
    fail_stale,
    run_claimed,
    score,
    train_trial,
)
from archlab.train.config import TrainConfig

__all__ = [
    "TUNE_SPACE",
    "TUNE_VAL_FRACTION",
    "TuneTask",
    "enqueue_grid",
    "grid_of",
    "run_tune",
    "tune_tasks",
    "tune_work",
]

#: ``--tune`` search ranges: key -> (low, high, log scale). The same for every variant: fair.
TUNE_SPACE: dict[str, tuple[float, float, bool]] = {
    "lr": (1e-3, 1.0, True),
    "weight_decay": (1e-6, 1e-2, True),
    "label_smoothing": (0.0, 0.3, False),
    "momentum": (0.5, 0.99, False),
    "grad_clip": (0.5, 10.0, True),
}
TUNE_VAL_FRACTION = 0.1  # validation carved from train for --tune when the study sets none


@dataclass(frozen=True)
class TuneTask:
    """Tune one variant's recipe keys in its own optuna study."""

    study_name: str
    label: str
    model: str
    spec: dict[str, Any]
    recipe: dict[str, Any]
    keys: tuple[str, ...]
    trials: int
    scale: str
    #: the values to try of each key (a study file's ``tune_grid``); empty: TPE over TUNE_SPACE
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()


def _tpe() -> optuna.samplers.TPESampler:
    """TPE that lets parallel workers propose different points (constant liar)."""
    with warnings.catch_warnings():  # constant_liar: experimental since optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(constant_liar=True)


def enqueue_grid(url: str, task: TuneTask) -> int:
    """Queue each grid point of ``task`` that no finished, running or queued trial holds."""
    study, _ = connect(url, task.study_name, directions=["maximize"])
    fail_stale(study)
    keys = [k for k, _ in task.grid]
    held = set()
    for t in study.get_trials(deepcopy=False):
        if t.state != TrialState.FAIL:  # a failed point is queued again
            params = t.params or t.system_attrs.get("fixed_params", {})
            held.add(tuple(params.get(k) for k in keys))
    points = [p for p in itertools.product(*(v for _, v in task.grid)) if p not in held]
    for point in points:
        study.enqueue_trial(dict(zip(keys, point, strict=True)))
    return len(points)


def _grid_work(url: str, task: TuneTask) -> None:
    """Run the queued grid points of ``task`` until none is left: each point exactly once."""
    # claimed one by one (not optuna's optimize loop): two workers never take the same point
    study, storage = connect(url, task.study_name)
    objective = _objective(task)
    while (trial := claim_waiting_trial(study)) is not None:
        # a failed point (here or elsewhere) is queued again by the next run's enqueue_grid
        run_claimed(storage, study, trial, lambda t=trial: objective(t))


def tune_work(url: str, tasks: list[TuneTask]) -> None:
    """Worker loop of --tune: each task's grid points, or TPE trials up to its trial budget."""
    for task in tasks:
        if task.grid:
            _grid_work(url, task)
            continue
        study, _ = connect(url, task.study_name, directions=["maximize"], sampler=_tpe())
        fail_stale(study)
        done = count_trials(study, (TrialState.COMPLETE, TrialState.RUNNING))
        if done >= task.trials:
            continue
        study.optimize(
            _objective(task),
            n_trials=task.trials - done,
            callbacks=[optuna.study.MaxTrialsCallback(task.trials, states=(TrialState.COMPLETE,))],
            catch=(RunFailed,),
        )


def _objective(task: TuneTask) -> Callable[[optuna.Trial], float]:
    """The optuna objective of a task: the variant's validation accuracy at sampled values."""
    base = TrainConfig(**task.recipe)

    def objective(trial: optuna.Trial) -> float:
        values = {}
        grid = dict(task.grid)
        for k in task.keys:
            if k in grid:  # a queued grid trial carries its point as fixed params
                values[k] = trial.suggest_categorical(k, grid[k])
                continue
            lo, hi, log = TUNE_SPACE[k]
            values[k] = trial.suggest_float(k, lo, hi, log=log)
        config = base.replace(**values)
        attrs = cell_attrs(task.model, ArchSpec(**task.spec), config, task.scale, task.label)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        return score(train_trial(trial), "val_top1")

    return objective


def tune_tasks(
    study_def: StudyDef,
    cells: Sequence[Cell],
    scale: str,
    keys: Sequence[str],
    trials: int,
    grid: dict[str, list[Any]] | None = None,
) -> list[TuneTask]:
    """One task per variant: its first seed's recipe with a validation split to score on."""
    unknown = [k for k in keys if k not in TUNE_SPACE and k not in (grid or {})]
    if unknown:
        raise StudyFileError(f"--tune {unknown[0]!r}: not tunable; valid: {', '.join(TUNE_SPACE)}")
    if trials < 1:
        raise StudyFileError(f"--trials {trials}: need at least 1")
    tasks, seen = [], set()
    for c in cells:
        if c.variant in seen:
            continue
        seen.add(c.variant)
        config = c.config
        if config.val_size == 0:
            n = config.train_subset or _train_size(config.dataset)
            config = config.replace(val_size=max(10, round(TUNE_VAL_FRACTION * n)))
        tasks.append(
            TuneTask(
                f"{study_def.name}-{scale}-tune-{c.variant}",
                c.variant,
                c.model,
                c.spec.to_dict(),
                config.to_dict(),
                tuple(keys),
                trials,
                scale,
                tuple((k, tuple(v)) for k, v in (grid or {}).items()),
            )
        )
    return tasks


def grid_of(study_def: StudyDef, scale: str) -> dict[str, list[Any]]:
    """The scale's ``tune_grid`` (empty if none): values tried per variant before it runs."""
    return dict(study_def.scales.get(scale, {}).get("tune_grid") or {})


def _train_size(dataset: str) -> int:
    from archlab.train.data import load_dataset

    return len(load_dataset(dataset, val_size=0, seed=0).train_y)


def _pending(url: str, task: TuneTask) -> int:
    """Tuning runs ``task`` still has to do: its queued grid points, or TPE trials to its budget."""
    # created here if new (as the workers would), so the progress display can read it
    study, _ = connect(url, task.study_name, directions=["maximize"])
    if task.grid:
        return count_trials(study, (TrialState.WAITING,))
    return max(0, task.trials - count_trials(study, (TrialState.COMPLETE, TrialState.RUNNING)))


def _tuned_values(url: str, tasks: Sequence[TuneTask]) -> dict[str, dict[str, Any]]:
    """Best values of each tuning study, by variant label."""
    out = {}
    for task in tasks:
        study, _ = connect(url, task.study_name)
        if not count_trials(study, (TrialState.COMPLETE,)):
            raise StudyError(f"tuning {task.label!r}: no trial completed; see {task.study_name}")
        out[task.label] = dict(study.best_params)
    return out


def run_tune(
    study_def: StudyDef,
    url: str,
    scale: str,
    jobs: int,
    overrides: list[str],
    keys: list[str],
    trials: int,
    numerics: dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Tune ``keys`` of every variant with local workers; the tuned values by variant label.

    ``numerics``: the study's pinned device and precision (default: this machine's). ``grid``:
    try exactly these values (every point once per variant) instead of TPE's samples.
    """
    cells = plan_cells(study_def, scale, overrides, numerics=numerics)
    tasks = tune_tasks(study_def, cells, scale, keys, trials, grid)
    how = "grid " + ", ".join(f"{k} in {v}" for k, v in grid.items()) if grid else "TPE"
    print(
        f"{study_def.name} [{scale}]: tuning {', '.join(keys)} of {len(tasks)} variants, "
        f"{trials} trials each ({how}), on {tasks[0].recipe['val_size']} validation images",
        file=sys.stderr,
    )
    for task in tasks if grid else ():
        enqueue_grid(url, task)
    total = sum(_pending(url, t) for t in tasks)
    n = cap_jobs(jobs, len(usable_cores()), total)
    # tuning can take longer than a round of the study: show its runs as they finish
    codes = (
        run_with_progress(
            n,
            tune_work,
            {"url": url, "tasks": tasks},
            url=url,
            study_names=[t.study_name for t in tasks],
            total=total,
            desc=f"{study_def.name} [{scale}] tuning",
        )
        if total
        else []
    )
    if any(codes):
        raise StudyError(f"tuning workers exited with codes {codes}")
    tuned = _tuned_values(url, tasks)
    for label, values in tuned.items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        print(f"  tuned {label}: {shown}", file=sys.stderr)
    return tuned
