"""The study engine's entry points: run a study, its status, its report, the principles page.

Every run is an optuna trial; resume, dedup and workers come from the storage (storage.py).
``run_study`` checks every input first (the plan's size before any cell is made, the pinned
numerics), then hands a comparison to compare.py (``--tune`` to tune.py; ``--until-decided`` to
decide.py) or a search to search.py, then writes the tables (tables.py) and the report.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from archlab import __version__
from archlab.provenance import cpu_flags, cpu_model, git_commit
from archlab.study.compare import run_compare
from archlab.study.decide import (
    UntilDecided,
    all_seeds,
    check_evaluator,
    plan_looks,
    run_until_decided,
)
from archlab.study.errors import StudyError, StudyFileError
from archlab.study.estimate import check_size
from archlab.study.numerics import choose_numerics
from archlab.study.plan import config_shape, outline, plan_cells, search_base
from archlab.study.schema import StudyDef
from archlab.study.search import run_search
from archlab.study.storage import (
    connect,
    default_storage,
    is_url,
    mask_url,
    open_storage,
    stored_attrs,
    study_name,
)
from archlab.study.studyfile import find_study_file, load_study
from archlab.study.tables import collect, export
from archlab.study.tune import tune_tasks
from archlab.train.config import TrainConfig

__all__ = [
    "PRINCIPLE_STUDIES",
    "StudyOutcome",
    "principles_report",
    "run_study",
    "study_report",
    "study_status",
]

PRINCIPLE_STUDIES = (
    "principle1-bottleneck",
    "principle2-highdim",
    "principle3-reduction",
    "principle4-balance",
)


@dataclass
class StudyOutcome:
    """What ``run_study`` did and where its results are."""

    study: str
    scale: str
    storage: str  # masked
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    worker_exit_codes: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every run finished (complete or diverged) and every worker exited cleanly."""
        # >=: parallel search workers may finish a trial or two beyond the budget
        return self.counts.get("done", 0) >= self.total and not any(self.worker_exit_codes)


def run_study(
    file: str | Path,
    *,
    scale: str = "quick",
    jobs: int = 1,
    storage: str | None = None,
    overrides: Sequence[str] = (),
    tune: Sequence[str] = (),
    tune_trials: int = 8,
    results_dir: str | Path = "results",
    reports_dir: str | Path = "reports",
    render: bool = True,
    until_decided: UntilDecided | None = None,
    yes: bool = False,
    numerics: str = "check",
) -> StudyOutcome:
    """Run (or resume) a study: plan, enqueue, work with ``jobs`` local workers, export, report.

    ``until_decided``: add seeds round by round until the claims are decided (decide.py);
    ``yes``: allow a plan of more than MAX_RUNS_WITHOUT_YES runs; ``numerics``: ``check`` or
    ``pinned`` (numerics.py).
    """
    study_def = load_study(file)
    url = storage or default_storage(study_def.name, results_dir)
    name = study_name(study_def.name, scale)
    outputs = [Path(results_dir) / study_def.name]
    if render:
        outputs.append(Path(reports_dir) / study_def.name)
    request = {"overrides": list(overrides), "tune": list(tune), "tune_trials": tune_trials}
    plan = _preflight(study_def, scale, jobs, request, url, name, until_decided, yes, numerics)
    _check_outputs(outputs)
    print(f"{study_def.name} [{scale}]: storage {mask_url(url)}", file=sys.stderr)
    if plan and plan.get("numerics"):
        # what the runs compute with, once, so a log says which kind of machine made them
        nx = plan["numerics"]
        print(
            f"{study_def.name} [{scale}]: numerics {nx['device']} {nx['precision']} on "
            f"{cpu_model()} ({', '.join(cpu_flags()) or 'no AVX-512/AMX flags'}), "
            f"{jobs} worker(s), tuned kernels",
            file=sys.stderr,
        )
    if study_def.kind == "search":
        codes = run_search(study_def, url, name, scale, jobs, list(overrides), plan["numerics"])
    elif until_decided is not None:
        codes = run_until_decided(
            study_def,
            url,
            name,
            scale,
            jobs,
            plan,
            until_decided,
            on_round=lambda s: _write_outputs(
                s, study_def.name, url, results_dir, reports_dir, render
            ),
        )
    else:
        codes = run_compare(
            study_def,
            url,
            name,
            scale,
            jobs,
            list(overrides),
            list(tune),
            tune_trials,
            plan["numerics"],
        )
    study, _ = connect(url, name)
    files = _write_outputs(study, study_def.name, url, results_dir, reports_dir, render)
    counts = _counts(study)
    total = counts.pop("total")
    return StudyOutcome(study_def.name, scale, mask_url(url), total, counts, files, codes)


def _preflight(
    study_def: StudyDef,
    scale: str,
    jobs: int,
    request: dict[str, Any],
    url: str,
    name: str,
    until: UntilDecided | None,
    yes: bool,
    numerics: str,
) -> dict[str, Any]:
    """Check every input and the storage before the first line or file; the plan to run.

    Bad input must exit with its one line and change nothing: no journal, no folder, no trial.
    The plan's size is counted before any cell is made, so an absurd one ends at once.
    """
    if jobs < 1:
        raise StudyError(f"--jobs {jobs}: need at least 1")
    overrides = request["overrides"]
    if study_def.kind == "search":
        if until is not None:
            raise StudyError(
                f"--until-decided: {study_def.name} is a search study; only comparisons add seeds"
            )
        config = _check_search(study_def, scale, overrides, yes, url)
        # a search pins its numerics like a comparison: its trials' keys hold resolved values
        pinned = stored_attrs(url, name).get("numerics")
        return {**request, "numerics": choose_numerics(pinned, config, numerics)}
    if until is not None:
        until.check()
    plan = {**request, **_sized(study_def, scale, overrides, until, yes, url, name, numerics)}
    cells = plan_cells(study_def, scale, overrides, numerics=plan["numerics"])
    if request["tune"]:
        tune_tasks(study_def, cells, scale, request["tune"], request["tune_trials"])
    _check_data(c.config for c in cells)
    return plan


def _sized(
    study_def: StudyDef,
    scale: str,
    overrides: Sequence[str],
    until: UntilDecided | None,
    yes: bool,
    url: str,
    name: str,
    numerics: str,
) -> dict[str, Any]:
    """A comparison's size checked (before expanding it), its numerics and looks chosen."""
    shape = outline(study_def, scale, overrides)
    n0 = len(shape.seeds)
    most = n0
    if until is not None:  # K from the flags and the scale, before the storage is read
        most = max(n0, plan_looks(study_def, scale, n0, until.max_seeds, None)[-1])
    check_size(shape.variants * most, yes)
    stored = stored_attrs(url, name)
    plan: dict[str, Any] = {"seeds": shape.seeds, "looks": None}
    plan["numerics"] = choose_numerics(stored.get("numerics"), shape.config, numerics)
    if until is not None:
        looks = plan_looks(study_def, scale, n0, until.max_seeds, stored.get("looks"))
        check_size(shape.variants * max(n0, looks[-1]), yes)
        all_seeds(shape.seeds, looks[-1])
        if study_def.claims:
            check_evaluator()
        plan["looks"] = looks
    return plan


def _check_search(
    study_def: StudyDef, scale: str, overrides: Sequence[str], yes: bool, url: str
) -> TrainConfig:
    """A search's objective, trial budget, dataset and storage; its base recipe."""
    _, config, trials, _ = search_base(study_def, scale, overrides)
    assert study_def.search is not None
    if study_def.search.objective == "val_top1" and config.val_size == 0:
        raise StudyFileError(
            f"{study_def.path}: search.objective: val_top1 needs recipe.val_size > 0 "
            f"(scale {scale} has none); or choose test_top1"
        )
    check_size(trials, yes, "trials")
    _check_data([config])
    if is_url(url):
        open_storage(url)
    return config


def _check_data(configs: Iterable[TrainConfig]) -> None:
    """Load each dataset once: a missing or corrupt one is a DataError now, not N failed runs."""
    for config in configs:
        config_shape(config)  # cached per (dataset, resize, upsample): each loads once


def _check_outputs(outputs: Sequence[Path]) -> None:
    for folder in outputs:
        _check_writable(folder)


def _check_writable(folder: Path) -> None:
    """Make ``folder`` and probe that a file can be written there; one line if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".archlab-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StudyError(f"{folder}: cannot write there: {e.strerror or e}") from None


def _write_outputs(
    study: optuna.Study,
    name: str,
    url: str,
    results_dir: str | Path,
    reports_dir: str | Path,
    render: bool,
) -> dict[str, Path]:
    """Export runs.csv / curves.csv and render the report; a failed write is one line."""
    runs, curves, meta = collect(study)
    try:
        files = export(runs, curves, Path(results_dir) / name)
        if render:
            files.update(_render(runs, curves, meta, Path(reports_dir) / name))
    except OSError as e:  # full disk, folder made read-only: the runs themselves are safe
        raise StudyError(
            f"{e.filename or results_dir}: cannot write: {e.strerror or e}; every finished run "
            f"is kept in {mask_url(url)}: `archlab study report {name}` writes them once fixed"
        ) from None
    return files


def _render(runs: pd.DataFrame, curves: pd.DataFrame, meta: dict[str, Any], out: Path) -> dict:
    from archlab.report.study import render_report

    if runs.empty:
        print(f"archlab: no finished runs yet: no report written to {out}", file=sys.stderr)
        return {}
    meta = {**meta, "baseline": "baseline" if "baseline" in set(runs["variant"]) else None}
    return render_report(runs, curves, meta, out)


# --- status --------------------------------------------------------------------------------------


def _trials_by_run(study: optuna.Study) -> tuple[int, list[str], dict[str, list[FrozenTrial]]]:
    """(planned total, run ids, each run's trials): a search's runs are its trials."""
    trials = study.get_trials(deepcopy=False)
    plan = study.user_attrs.get("plan")
    if plan is None:  # search: every trial is its own run
        # a trial the sampler proposed again reuses the stored run but counts against the trial
        # budget like any other, so it is done here too (else a finished search shows 1 to run)
        live = [t for t in trials if "key" in t.user_attrs]
        keys = [str(t.number) for t in live]
        total = int((study.user_attrs.get("meta") or {}).get("trials", len(keys)))
        return total, keys, {str(t.number): [t] for t in live}
    keys = list(dict.fromkeys(c["key"] for c in plan))
    by_key: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        if "duplicate_of" not in t.user_attrs:
            by_key.setdefault(t.user_attrs.get("key", ""), []).append(t)
    return len(keys), keys, by_key


def _counts(study: optuna.Study) -> dict[str, int]:
    """total / done / diverged / running / waiting / failed / remaining, by planned run."""
    total, keys, by_key = _trials_by_run(study)
    counts = dict.fromkeys(("done", "diverged", "running", "waiting", "failed"), 0)
    for k in keys:
        states = {t.state for t in by_key.get(k, [])}
        if TrialState.COMPLETE in states:
            counts["done"] += 1
            counts["diverged"] += any(
                (t.user_attrs.get("result") or {}).get("status") == "diverged"
                for t in by_key[k]
                if t.state == TrialState.COMPLETE
            )
        elif TrialState.RUNNING in states:
            counts["running"] += 1
        elif TrialState.WAITING in states:
            counts["waiting"] += 1
        elif TrialState.FAIL in states:
            counts["failed"] += 1
    counts["remaining"] = max(0, total - counts["done"])
    return {"total": total, **counts}


def _stored(
    name_or_file: str, scale: str | None, storage: str | None, results_dir: str | Path
) -> tuple[str, str, list[str]]:
    """(study name, storage URL, scales to show) of a stored study; one line if none."""
    name = name_or_file
    if Path(name_or_file).suffix in (".yaml", ".yml"):
        name = load_study(find_study_file(name_or_file)).name
    url = storage or default_storage(name, results_dir)
    if not is_url(url) and not Path(url).exists():  # opening it would create an empty one
        raise StudyError(f"{name}: no results yet ({url} does not exist)")
    scales = [scale] if scale else _scales_in(url, name)
    if not scales:
        raise StudyError(f"{name}: nothing stored in {mask_url(url)}")
    return name, url, scales


def _scales_in(url: str, name: str) -> list[str]:
    """Scales of a study present in a storage, most recently planned first."""
    storage = open_storage(url)
    found = []
    for s in storage.get_all_studies():
        meta = s.user_attrs.get("meta") or {}
        if meta.get("study") == name and s.study_name == study_name(name, meta.get("scale", "")):
            found.append((meta.get("planned_at", 0), meta["scale"]))
    return [scale for _, scale in sorted(found, reverse=True)]


def study_status(
    name_or_file: str,
    *,
    scale: str | None = None,
    storage: str | None = None,
    results_dir: str | Path = "results",
) -> dict[str, dict[str, int]]:
    """Per scale: total / done / diverged / running / waiting / failed / remaining runs."""
    name, url, scales = _stored(name_or_file, scale, storage, results_dir)
    return {s: _counts(connect(url, study_name(name, s))[0]) for s in scales}


# --- reports -------------------------------------------------------------------------------------


def study_report(
    name_or_file: str,
    *,
    scale: str | None = None,
    storage: str | None = None,
    results_dir: str | Path = "results",
    reports_dir: str | Path = "reports",
) -> dict[str, Path]:
    """Re-export runs.csv / curves.csv from the storage and re-render the report."""
    if name_or_file == "principles":
        return principles_report(
            scale=scale or "quick",
            storage=storage,
            results_dir=results_dir,
            reports_dir=reports_dir,
        )
    name, url, scales = _stored(name_or_file, scale, storage, results_dir)
    study, _ = connect(url, study_name(name, scales[0]))
    return _write_outputs(study, name, url, results_dir, reports_dir, render=True)


def principles_report(
    *,
    scale: str = "quick",
    storage: str | None = None,
    results_dir: str | Path = "results",
    reports_dir: str | Path = "reports",
) -> dict[str, Path]:
    """``reports/principles/``: the four principle studies' verdicts on one page."""
    from archlab.report.principles import literal_section, render_principles

    out = Path(reports_dir) / "principles"
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"scale": scale, "version": __version__, "commit": git_commit()}
    sections = [
        _principle_section(name, scale, storage, results_dir, out, meta)
        for name in PRINCIPLE_STUDIES
    ]
    literal = literal_section(Path(reports_dir))
    return render_principles([*sections, *([literal] if literal else [])], meta, out)


def _principle_section(
    name: str,
    scale: str,
    storage: str | None,
    results_dir: str | Path,
    out: Path,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """One principle study's section: its verdict and plot, or how to run it; fills ``meta``."""
    from archlab.analysis.claims import get_claim
    from archlab.report.principles import principle_of

    n = int(name[len("principle")])
    section: dict[str, Any] = {
        "principle": n,
        "title": name,
        "statement": get_claim(f"principle{n}").text,
    }
    url = storage or default_storage(name, results_dir)
    runs, smeta = pd.DataFrame(), {}
    if is_url(url) or Path(url).exists():
        stored = {s.study_name for s in open_storage(url).get_all_studies()}
        # only a study never run at this scale is "not run"; any other error is the page's
        if study_name(name, scale) in stored:
            runs, curves, smeta = collect(connect(url, study_name(name, scale))[0])
            section["title"] = smeta.get("title", name)
            meta.setdefault("dataset", smeta.get("dataset"))
            meta.setdefault("machine", smeta.get("machine"))
    if runs.empty:
        section["verdict"] = f"not run (archlab study run studies/{name}.yaml --scale {scale})"
    else:
        # as the study's own report reads it: its design (looks) decides the analysis's form
        rendered = principle_of(f"principle{n}", runs, curves, out, smeta)
        assert rendered is not None  # a principleN study
        section.update(rendered._asdict())
    return section
