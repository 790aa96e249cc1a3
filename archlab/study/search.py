"""Search studies: NSGA-II over architecture axes and knobs, maximizing accuracy, minimizing MACs.

The first trial is the study's base network (enqueued), so the Pareto front is judged against
it. Invalid points are pruned, a point already trained is reused rather than retrained, and the
trial budget counts running trials too, so parallel workers stop at it.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from archlab.arch.spec import ArchSpec, SpecError
from archlab.parallel import cap_jobs
from archlab.provenance import usable_cores
from archlab.study.estimate import estimate_line, per_run_s
from archlab.study.meta import study_meta
from archlab.study.plan import search_base
from archlab.study.progress import run_with_progress
from archlab.study.schema import StudyDef
from archlab.study.storage import connect
from archlab.study.studyfile import load_study
from archlab.study.trials import (
    RunFailed,
    cell_attrs,
    complete_trial_of,
    count_trials,
    fail_stale,
    score,
    train_trial,
)

__all__ = ["run_search", "search_work"]


def _sampler(study_def: StudyDef, trials: int) -> optuna.samplers.NSGAIISampler:
    assert study_def.search is not None
    population = study_def.search.population or max(2, min(50, trials // 3))
    return optuna.samplers.NSGAIISampler(population_size=population)


def _sample_spec(trial: optuna.Trial, study_def: StudyDef, base: ArchSpec) -> ArchSpec:
    assert study_def.search is not None
    changes: dict[str, Any] = {
        a: trial.suggest_categorical(a, list(opts)) for a, opts in study_def.search.axes.items()
    }
    with warnings.catch_warnings():  # the enqueued base network may lie outside a knob's range
        warnings.simplefilter("ignore", UserWarning)
        for k, (lo, hi) in study_def.search.knobs.items():
            if k == "n":
                changes[k] = trial.suggest_int(k, int(lo), int(hi), step=2)  # n is odd
            else:
                changes[k] = trial.suggest_float(k, float(lo), float(hi))
    try:
        return base.replace(**changes)
    except SpecError as e:  # e.g. 2x2x2 with n != 3: not a network; let the sampler move on
        trial.set_user_attr("error", str(e))
        raise optuna.TrialPruned(str(e)) from None


def search_work(
    url: str,
    study_name: str,
    file: str,
    scale: str,
    overrides: list[str],
    numerics: dict[str, Any],
) -> None:
    """Worker loop of a search: NSGA-II trials until the study has its trial budget."""
    study_def = load_study(file)
    base_spec, base_cfg, trials, seeds = search_base(study_def, scale, overrides, numerics)
    assert study_def.search is not None
    objective_metric = study_def.search.objective
    study, _ = connect(url, study_name, sampler=_sampler(study_def, trials))
    fail_stale(study)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = _sample_spec(trial, study_def, base_spec)
        config = base_cfg.replace(seed=seeds[0])
        # A searched network differs on many axes: "trial N" reads better than all of them.
        label = "baseline" if spec == base_spec else f"trial {trial.number}"
        attrs = cell_attrs(study_def.model, spec, config, scale, label)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        prior = complete_trial_of(study, attrs["key"], trial.number)
        if prior is not None:  # the sampler proposed a configuration already trained
            trial.set_user_attr("reused_from", prior.number)
            trial.set_user_attr("result", prior.user_attrs["result"])
            return tuple(prior.values)
        result = train_trial(trial)
        return score(result, objective_metric), float(result.macs)

    done = count_trials(study, (TrialState.COMPLETE, TrialState.RUNNING))
    if done < trials:
        study.optimize(
            objective,
            # pruned (invalid) and failed trials do not count: allow some, but not forever
            n_trials=3 * (trials - done),
            # Running trials count too: with only COMPLETE, a second worker's trial still in
            # flight when the first reaches the budget overshoots it (21 of 20 were measured).
            callbacks=[
                optuna.study.MaxTrialsCallback(
                    trials, states=(TrialState.COMPLETE, TrialState.RUNNING)
                )
            ],
            catch=(RunFailed,),
        )


def _enqueue_baseline(study: optuna.Study, study_def: StudyDef, base: ArchSpec) -> None:
    """Start the search from the study's base network, so the front is judged against it."""
    assert study_def.search is not None
    if not study.get_trials(deepcopy=False):
        names = [*study_def.search.axes, *study_def.search.knobs]
        study.enqueue_trial({k: getattr(base, k) for k in names})


def run_search(
    study_def: StudyDef,
    url: str,
    name: str,
    scale: str,
    jobs: int,
    overrides: list[str],
    numerics: dict[str, Any],
) -> list[int]:
    """Create or resume the search and run it with local workers; their exit codes.

    ``numerics`` (``archlab.study.numerics.choose_numerics``) are pinned at a new search's first
    plan; a search begun before searches pinned them keeps its trials as they were keyed.
    """
    base_spec, base_cfg, trials, seeds = search_base(study_def, scale, overrides, numerics)
    assert study_def.search is not None  # run_study's preflight checked the objective
    study, _ = connect(
        url, name, directions=["maximize", "minimize"], sampler=_sampler(study_def, trials)
    )
    with warnings.catch_warnings():  # experimental since optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([study_def.search.objective, "macs"])
    meta = study_meta(study_def, scale, base_spec, base_cfg, seeds[:1])
    study.set_user_attr("meta", {**meta, "trials": trials})
    if not study.get_trials(deepcopy=False) and "numerics" not in study.user_attrs:
        study.set_user_attr("numerics", numerics)
    fail_stale(study)
    _enqueue_baseline(study, study_def, base_spec)
    remaining = trials - count_trials(study, (TrialState.COMPLETE,))
    line = f"{study_def.name} [{scale}]: NSGA-II, {trials} trials, {max(remaining, 0)} to run"
    if remaining > 0:
        seconds, measured = per_run_s(study, base_cfg)
        line += "; " + estimate_line(remaining, jobs, seconds, measured)
    print(line, file=sys.stderr, flush=True)
    if remaining <= 0:
        return []
    n = cap_jobs(jobs, len(usable_cores()), remaining)
    kwargs = {
        "url": url,
        "study_name": name,
        "file": str(study_def.path),
        "scale": scale,
        "overrides": overrides,
        "numerics": numerics,
    }
    return run_with_progress(
        n,
        search_work,
        kwargs,
        url=url,
        study_names=[name],
        total=remaining,
        desc=f"{study_def.name} [{scale}]",
    )
