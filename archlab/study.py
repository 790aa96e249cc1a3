"""The study engine: every run is an optuna trial; resume, dedup and workers come from storage.

Storage is an optuna journal file ``results/<study>/journal.log`` by default, or any optuna
storage URL (``postgresql://...``: many machines run ``archlab study run FILE --storage URL``
and share the queue). One optuna study per (study, scale), named ``<study>-<scale>``.

- Plan: each cell's content key (study_spec.run_key) is enqueued (``enqueue_trial`` with the
  resolved configuration as user attrs) unless a trial of that key is COMPLETE, RUNNING or
  WAITING. COMPLETE includes diverged runs (a result); FAIL ones are enqueued again.
- Work: a worker claims a WAITING trial (optuna's atomic WAITING -> RUNNING pop), trains it and
  tells the result. If two planners enqueued one key, the trial with the lowest number among the
  live ones runs and the others end PRUNED with a ``duplicate_of`` attr.
- Stale trials (their process died): RUNNING trials record host, pid and the pid's start time;
  one whose process is gone from this host is failed, so the next plan enqueues it again. With
  an RDB storage optuna's heartbeat also fails trials from dead processes on other hosts. A
  trial still without an owner GRACE_S after its claim (its worker died in between) is failed.
- A torn last line of a journal file (a write cut short) is dropped, saved aside, on opening.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

from archlab import __version__
from archlab.cli import register_user_error
from archlab.config import RunResult, TrainConfig
from archlab.parallel import cap_jobs, run_workers, usable_cores
from archlab.study_spec import (
    Cell,
    StudyDef,
    StudyFileError,
    data_shape,
    find_study_file,
    load_study,
    plan_cells,
    run_key,
    search_base,
)
from archlab.variants import ArchSpec, SpecError, field_names

__all__ = [
    "CURVE_COLUMNS",
    "PRINCIPLE_STUDIES",
    "RUN_COLUMNS",
    "TUNE_SPACE",
    "StudyOutcome",
    "collect",
    "mask_url",
    "open_storage",
    "principles_report",
    "run_study",
    "study_report",
    "study_status",
]

HEARTBEAT_S = 60  # RDB storages: a RUNNING trial records a heartbeat this often ...
GRACE_S = 300  # ... and is failed as stale after this long without one
CONNECT_TIMEOUT_S = 10  # PostgreSQL: give up on an unreachable server after this long
CREATE_TRIES = 3  # attempts to open an RDB storage whose tables another machine is creating
PRINCIPLE_STUDIES = (
    "principle1-bottleneck",
    "principle2-highdim",
    "principle3-reduction",
    "principle4-balance",
)
METRICS = ("test_top1", "test_top5", "test_nll", "test_ece", "val_top1")
_SPEC_FIELDS = field_names()
# Recipe fields as plain columns ("recipe_" only where a name collides with a spec field); the
# recipe's seed is the "seed" column itself.
_RECIPE_COLUMNS = {
    f: (f"recipe_{f}" if f in _SPEC_FIELDS else f) for f in TrainConfig().to_dict() if f != "seed"
}
RUN_COLUMNS = [
    "study",
    "variant",
    "is_baseline",
    "group",
    "seed",
    "status",
    "run_key",
    *_SPEC_FIELDS,
    *_RECIPE_COLUMNS.values(),
    "scale",
    "model",
    "macs",
    "params",
    *METRICS,
    "train_time_s",
    "images_per_s",
    "min_repr",
    "reliability",
    "error",
    "version",
    "commit",
    "trial_number",
]
CURVE_COLUMNS = [
    "run_key",
    "group",
    "variant",
    "seed",
    "epoch",
    "train_loss",
    "train_top1",
    "val_top1",
    "test_top1",
    "test_nll",
    "aux_top1",
    "wall_s",
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


# --- storage -------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """The storage URL with its password replaced by ``***`` (safe for logs and reports)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _scrub(text: str, url: str) -> str:
    """``text`` with any occurrence of the URL's password masked."""
    password = urllib.parse.urlsplit(url).password if "://" in url else None
    if password:
        text = text.replace(password, "***").replace(urllib.parse.quote(password), "***")
    return text


def default_storage(name: str, results_dir: str | Path = "results") -> str:
    """The journal file of a study: ``results/<name>/journal.log``."""
    return str(Path(results_dir) / name / "journal.log")


def open_storage(url: str) -> BaseStorage:
    """An optuna storage: a journal file for a path, optuna's RDB storage for a URL."""
    if "://" not in url:
        return _open_journal(Path(url))
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # libpq waits out TCP's timeout (minutes) on an unreachable host: fail within seconds
        engine["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    import sqlalchemy.exc

    for attempt in range(1, CREATE_TRIES + 1):
        try:
            with warnings.catch_warnings():  # heartbeat_interval: experimental, printed otherwise
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            # Machines started together on a fresh database race to create optuna's tables;
            # the losers get a unique violation and find the tables made on the next try.
            if attempt == CREATE_TRIES:
                raise StudyFileError(_storage_error(url, e)) from None
            time.sleep(attempt)
        except Exception as e:
            raise StudyFileError(_storage_error(url, e)) from None
    raise AssertionError("unreachable")


def _storage_error(url: str, e: Exception) -> str:
    # driver errors may echo the URL: never let its password out
    return f"--storage {mask_url(url)}: cannot open: {_scrub(str(e), url).splitlines()[0]}"


def _open_journal(path: Path) -> JournalStorage:
    """The journal file storage, its torn last line (if any) dropped; one-line errors."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path))
        _drop_torn_tail(path)
        return JournalStorage(backend)
    except OSError as e:
        raise StudyError(f"{path}: cannot open the study journal: {e.strerror or e}") from None
    except ValueError as e:  # optuna's replay: an undecodable line before the last one
        raise StudyError(
            f"{path}: corrupt journal at line {_bad_line(path)} ({e}); the lines before it are "
            "intact: keep a copy, cut the file there and rerun to resume"
        ) from None


def _torn(path: Path) -> bool:
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _drop_torn_tail(path: Path) -> None:
    """Cut a torn last line (a write cut short by a crash or a full disk) off a journal."""
    # optuna skips such a line when reading but appends the next entry to it, which makes one
    # undecodable line that breaks every later read. Writers append under the journal's lock,
    # so under that lock whatever follows the last newline is a dead write.
    if not _torn(path):
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        if not _torn(path):
            return
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        kept = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        kept.write_bytes(data[keep:])
        with open(path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
    finally:
        lock.release()
    print(
        f"archlab: warning: {path}: dropped a torn last entry ({len(data) - keep} bytes, saved "
        f"to {kept.name}) left by an interrupted write; every complete entry is kept",
        file=sys.stderr,
    )


def _bad_line(path: Path) -> int:
    """The number of the first line of a journal that is not a JSON entry."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                json.loads(line)
            except ValueError:
                return number
    return 0


def _study_name(name: str, scale: str) -> str:
    return f"{name}-{scale}"


class StudyError(ValueError):
    """A study cannot proceed (unknown study in the storage, tuning found nothing, ...)."""


register_user_error(StudyError)


def pause_for_tests(phase: str) -> None:
    """Tests only: ``ARCHLAB_TEST_PAUSE=PHASE:SECONDS`` announces PHASE and sleeps there."""
    # Crash tests SIGKILL a study at a chosen point (train, export, render); unset, a no-op.
    name, _, seconds = os.environ.get("ARCHLAB_TEST_PAUSE", "").partition(":")
    if name == phase:
        print(f"archlab: test pause at {phase}", file=sys.stderr, flush=True)
        time.sleep(float(seconds or 0))


def _connect(
    url: str,
    study_name: str,
    *,
    directions: Sequence[str] | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> tuple[optuna.Study, BaseStorage]:
    """(study, its storage): created when ``directions`` are given, else it must exist."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    if directions is not None:
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            directions=list(directions),
            sampler=sampler,
            load_if_exists=True,
        )
        return study, storage
    try:
        return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler), storage
    except KeyError:
        known = sorted(s.study_name for s in storage.get_all_studies())
        raise StudyError(
            f"no study {study_name!r} in {mask_url(url)}; stored: {', '.join(known) or '(none)'}"
        ) from None


# --- provenance and stale trials -----------------------------------------------------------------


def git_commit() -> str:
    """Short commit of the archlab checkout, or "unknown" outside one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def machine() -> str:
    """One line describing this machine for reports."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {len(usable_cores())} cores{gpu}, torch {torch.__version__}"


def _pid_start(pid: int) -> str:
    """A process's start time in clock ticks since boot ("" where /proc is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ")" may hold spaces


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _pid_start(pid)}


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the process that owns a trial still runs (it ran on this host)."""
    pid = int(owner["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # The pid exists; a different start time means the pid was reused by another process.
    return not owner.get("start") or _pid_start(pid) in ("", owner["start"])


def fail_stale(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose process is gone, or ownerless for GRACE_S; return numbers."""
    with warnings.catch_warnings():  # experimental since optuna 2.9, unchanged since
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB storages: optuna's heartbeat, any host
    host, failed, now = socket.gethostname(), [], datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("owner")
        if owner:
            stale = owner.get("host") == host and not _alive(owner)
        else:  # claimed, then killed before it could record its owner (a few milliseconds)
            started = t.datetime_start
            stale = started is not None and (now - started).total_seconds() > GRACE_S
        if stale:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(t.number)
    return failed


@contextlib.contextmanager
def _heartbeat(storage: BaseStorage, study: optuna.Study, number: int) -> Iterator[None]:
    """Record optuna's heartbeat of a trial while it trains (study.optimize does this itself)."""
    interval = storage.get_heartbeat_interval() if isinstance(storage, RDBStorage) else None
    if not interval:
        yield
        return
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- one run as a trial --------------------------------------------------------------------------


class RunFailed(Exception):
    """A run ended with status "failed" (its trial is FAIL and is retried next time)."""


def _cell_attrs(model: str, spec: ArchSpec, config: TrainConfig, scale: str, label: str) -> dict:
    return {
        "key": run_key(model, spec, config, scale),
        "model": model,
        "scale": scale,
        "label": label,
        "seed": config.seed,
        "spec": spec.to_dict(),
        "recipe": config.to_dict(),
    }


def _train_trial(trial: optuna.Trial) -> RunResult:
    """Train the configuration in a trial's user attrs; store provenance, curve and result."""
    from archlab.measure import complexity
    from archlab.train import train

    attrs = trial.user_attrs
    trial.set_user_attr("owner", _owner())
    trial.set_user_attr("version", __version__)
    trial.set_user_attr("commit", git_commit())
    spec, config = ArchSpec(**attrs["spec"]), TrainConfig(**attrs["recipe"])
    curve = len(trial.study.directions) == 1  # optuna keeps intermediate values single-objective
    step = 0

    def on_epoch(m: dict[str, Any]) -> None:
        nonlocal step
        step += 1
        trial.set_user_attr("epoch", m.get("epoch", step))
        if curve and isinstance(m.get("test_top1"), float) and math.isfinite(m["test_top1"]):
            trial.report(m["test_top1"], step)

    pause_for_tests("train")
    try:
        result = train(spec, config, model=attrs["model"], progress=False, on_epoch=on_epoch)
    except Exception as e:  # a bug or bad data: record it, let the study go on
        result = RunResult("failed", spec.to_dict(), config.to_dict(), attrs["model"])
        result.error = f"{type(e).__name__}: {e}"
    with contextlib.suppress(Exception):  # a diagnostic column; never fail a run over it
        # inside: missing data must fail this run (recorded above), not kill the worker
        size, chans, classes = data_shape(config.dataset, config.resize)
        cost = complexity(
            attrs["model"], spec, input_size=size, in_chans=chans, num_classes=classes
        )
        trial.set_user_attr("min_repr", cost.min_repr)
    trial.set_user_attr("result", result.to_dict())
    if result.status == "failed":
        raise RunFailed(result.error)
    return result


def _score(result: RunResult, metric: str) -> float:
    """A run's objective value; diverged runs score 0 (a result, and optuna rejects NaN)."""
    value = result.final.get(metric, math.nan)
    return float(value) if result.status == "complete" and math.isfinite(value) else 0.0


# --- comparison studies: plan and workers --------------------------------------------------------


def _enqueue(study: optuna.Study, cells: Sequence[Cell]) -> list[str]:
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
            attrs = _cell_attrs(cell.model, cell.spec, cell.config, cell.scale, cell.variant)
            study.enqueue_trial({}, user_attrs=attrs)
    return pending


def _claim(study: optuna.Study) -> optuna.Trial | None:
    """The next enqueued trial, now RUNNING and ours; None when the queue is empty."""
    # Study.ask() would create a fresh, unplanned trial on an empty queue; a comparison runs
    # only enqueued cells, so use the same atomic WAITING -> RUNNING pop without the fallback.
    trial_id = study._pop_waiting_trial_id()
    return None if trial_id is None else optuna.Trial(study, trial_id)


def _duplicate_of(study: optuna.Study, number: int, key: str) -> int | None:
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
    study, storage = _connect(url, study_name)
    fail_stale(study)
    while (trial := _claim(study)) is not None:
        dup = _duplicate_of(study, trial.number, trial.user_attrs["key"])
        if dup is not None:  # two planners enqueued this cell; the lower trial runs it
            trial.set_user_attr("duplicate_of", dup)
            study.tell(trial, state=TrialState.PRUNED)
            continue
        try:
            # Beat before the owner is recorded, so no moment leaves a trial unseen by fail_stale.
            with _heartbeat(storage, study, trial.number):
                result = _train_trial(trial)
        except RunFailed:
            study.tell(trial, state=TrialState.FAIL)
            continue
        except BaseException:  # Ctrl-C: mark it failed now so the next run retries it
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        study.tell(trial, [_score(result, "test_top1")])


# --- search studies (NSGA-II) --------------------------------------------------------------------


def _search_sampler(study_def: StudyDef, trials: int) -> optuna.samplers.NSGAIISampler:
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


def search_work(url: str, study_name: str, file: str, scale: str, overrides: list[str]) -> None:
    """Worker loop of a search: NSGA-II trials until the study has its trial budget."""
    study_def = load_study(file)
    base_spec, base_cfg, trials, seeds = search_base(study_def, scale, overrides)
    assert study_def.search is not None
    objective_metric = study_def.search.objective
    study, _ = _connect(url, study_name, sampler=_search_sampler(study_def, trials))
    fail_stale(study)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = _sample_spec(trial, study_def, base_spec)
        config = base_cfg.replace(seed=seeds[0])
        # A searched network differs on many axes: "trial N" reads better than all of them.
        label = "baseline" if spec == base_spec else f"trial {trial.number}"
        attrs = _cell_attrs(study_def.model, spec, config, scale, label)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        prior = _complete_result(study, attrs["key"], trial.number)
        if prior is not None:  # the sampler proposed a configuration already trained
            trial.set_user_attr("reused_from", prior.number)
            trial.set_user_attr("result", prior.user_attrs["result"])
            return tuple(prior.values)
        result = _train_trial(trial)
        return _score(result, objective_metric), float(result.macs)

    done = _count(study, (TrialState.COMPLETE, TrialState.RUNNING))
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


def _complete_result(study: optuna.Study, key: str, number: int) -> FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number != number and t.user_attrs.get("key") == key and "result" in t.user_attrs:
            return t
    return None


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _enqueue_search_baseline(study: optuna.Study, study_def: StudyDef, base: ArchSpec) -> None:
    """Start the search from the study's base network, so the front is judged against it."""
    assert study_def.search is not None
    if not study.get_trials(deepcopy=False):
        names = [*study_def.search.axes, *study_def.search.knobs]
        study.enqueue_trial({k: getattr(base, k) for k in names})


# --- --tune: per-variant recipe tuning on the validation split -----------------------------------


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


def _tpe() -> optuna.samplers.TPESampler:
    """TPE that lets parallel workers propose different points (constant liar)."""
    with warnings.catch_warnings():  # constant_liar: experimental since optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(constant_liar=True)


def tune_work(url: str, tasks: list[TuneTask]) -> None:
    """Worker loop of --tune: TPE trials of each task until it has its trial budget."""
    for task in tasks:
        study, _ = _connect(
            url,
            task.study_name,
            directions=["maximize"],
            sampler=_tpe(),
        )
        fail_stale(study)
        done = _count(study, (TrialState.COMPLETE, TrialState.RUNNING))
        if done >= task.trials:
            continue
        base = TrainConfig(**task.recipe)

        def objective(
            trial: optuna.Trial, task: TuneTask = task, base: TrainConfig = base
        ) -> float:
            values = {}
            for k in task.keys:
                lo, hi, log = TUNE_SPACE[k]
                values[k] = trial.suggest_float(k, lo, hi, log=log)
            config = base.replace(**values)
            attrs = _cell_attrs(task.model, ArchSpec(**task.spec), config, task.scale, task.label)
            for k, v in attrs.items():
                trial.set_user_attr(k, v)
            return _score(_train_trial(trial), "val_top1")

        study.optimize(
            objective,
            n_trials=task.trials - done,
            callbacks=[optuna.study.MaxTrialsCallback(task.trials, states=(TrialState.COMPLETE,))],
            catch=(RunFailed,),
        )


def _tune_tasks(
    study_def: StudyDef, cells: Sequence[Cell], scale: str, keys: Sequence[str], trials: int
) -> list[TuneTask]:
    """One task per variant: its first seed's recipe with a validation split to score on."""
    unknown = [k for k in keys if k not in TUNE_SPACE]
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
            )
        )
    return tasks


def _train_size(dataset: str) -> int:
    from archlab.data import load_dataset

    return len(load_dataset(dataset, val_size=0, seed=0).train_y)


def _tuned_values(url: str, tasks: Sequence[TuneTask]) -> dict[str, dict[str, Any]]:
    """Best values of each tuning study, by variant label."""
    out = {}
    for task in tasks:
        study, _ = _connect(url, task.study_name)
        if not _count(study, (TrialState.COMPLETE,)):
            raise StudyError(f"tuning {task.label!r}: no trial completed; see {task.study_name}")
        out[task.label] = dict(study.best_params)
    return out


# --- progress ------------------------------------------------------------------------------------


class _Progress:
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


def _poller(
    url: str, study_name: str, keys: set[str] | None, first: int, progress: _Progress
) -> Callable[[], None]:
    """A function that reads the storage and updates ``progress`` (keys None: any trial)."""
    study, _ = _connect(url, study_name)

    def poll() -> None:
        done: set[Any] = set()
        running = []
        for t in study.get_trials(deepcopy=False):
            a = t.user_attrs
            if "duplicate_of" in a or (keys is not None and a.get("key") not in keys):
                continue
            new = t.number >= first or (keys is not None and t.state == TrialState.COMPLETE)
            if new and t.state in (TrialState.COMPLETE, TrialState.FAIL):
                done.add(a.get("key") if keys is not None else t.number)
            elif t.state == TrialState.RUNNING and "epoch" in a:
                epochs = math.ceil(a["recipe"]["epochs"])
                running.append(f"{a['label']} s{a['seed']} epoch {a['epoch']:g}/{epochs}")
        progress.update(len(done), running)

    return poll


def _run_with_progress(
    jobs: int,
    target: Callable[..., Any],
    kwargs: dict[str, Any],
    *,
    url: str,
    study_name: str,
    total: int,
    keys: set[str] | None,
    desc: str,
) -> list[int]:
    study, _ = _connect(url, study_name)
    first = len(study.get_trials(deepcopy=False))
    progress = _Progress(total, desc)
    try:
        return run_workers(
            jobs, target, kwargs, poll=_poller(url, study_name, keys, first, progress)
        )
    finally:
        progress.close()


# --- results tables ------------------------------------------------------------------------------


def _nan(value: Any) -> Any:
    return math.nan if value is None else value


def _row(meta: dict[str, Any], cell: dict[str, Any], t: FrozenTrial) -> dict[str, Any]:
    a = t.user_attrs
    res = a.get("result") or {}
    final = res.get("final") or {}
    failed = t.state != TrialState.COMPLETE
    row: dict[str, Any] = {
        "study": meta["study"],
        "variant": cell["variant"],
        "is_baseline": bool(cell["is_baseline"]),
        "group": cell["group"],
        "seed": a["seed"],
        "status": "failed" if failed else res.get("status", "complete"),
        "run_key": a["key"],
    }
    row.update({k: a["spec"].get(k) for k in _SPEC_FIELDS})
    row.update({col: a["recipe"].get(f) for f, col in _RECIPE_COLUMNS.items()})
    row.update(
        scale=a["scale"],
        model=a["model"],
        macs=_nan(res.get("macs") or None),
        params=_nan(res.get("params") or None),
        **{m: _nan(final.get(m)) for m in (*METRICS, "train_time_s", "images_per_s")},
        min_repr=_nan(a.get("min_repr")),
        reliability=json.dumps(final["reliability"]) if "reliability" in final else "",
        error=res.get("error") or a.get("error", "") or ("interrupted" if failed else ""),
        version=a.get("version", ""),
        commit=a.get("commit", ""),
        trial_number=t.number,
    )
    return row


def _curve_rows(cell: dict[str, Any], t: FrozenTrial) -> list[dict[str, Any]]:
    history = (t.user_attrs.get("result") or {}).get("history") or []
    base = {"run_key": t.user_attrs["key"], "group": cell["group"], "variant": cell["variant"]}
    return [
        {**base, "seed": t.user_attrs["seed"], **{c: _nan(h.get(c)) for c in CURVE_COLUMNS[4:]}}
        for h in history
    ]


def _search_cells(trials: Sequence[FrozenTrial]) -> list[tuple[dict[str, Any], FrozenTrial]]:
    """One cell per trial that trained (not pruned, not a reuse of an earlier trial)."""
    out = []
    for t in trials:
        a = t.user_attrs
        if (
            t.state in (TrialState.COMPLETE, TrialState.FAIL)
            and "key" in a
            and "reused_from" not in a
        ):
            label = a["label"]
            out.append(({"group": "", "variant": label, "is_baseline": label == "baseline"}, t))
    return out


def _plan_cells(
    plan: list[dict[str, Any]], trials: Sequence[FrozenTrial]
) -> list[tuple[dict, FrozenTrial]]:
    """Each planned cell with its trial: the COMPLETE one, else the latest failed attempt."""
    best: dict[str, FrozenTrial] = {}
    for t in trials:
        key = t.user_attrs.get("key")
        if key is None or "duplicate_of" in t.user_attrs:
            continue
        prev = best.get(key)
        if t.state == TrialState.COMPLETE:
            if prev is None or prev.state != TrialState.COMPLETE:
                best[key] = t
        elif t.state == TrialState.FAIL and (prev is None or prev.state == TrialState.FAIL):
            best[key] = t
    return [(cell, best[cell["key"]]) for cell in plan if cell["key"] in best]


def collect(study: optuna.Study) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(runs, curves, meta) of a study from its storage: plan, meta and results all live there."""
    meta = dict(study.user_attrs.get("meta") or {})
    trials = study.get_trials(deepcopy=False)
    plan = study.user_attrs.get("plan")
    pairs = _plan_cells(plan, trials) if plan is not None else _search_cells(trials)
    runs = pd.DataFrame([_row(meta, c, t) for c, t in pairs], columns=RUN_COLUMNS)
    curves = pd.DataFrame([r for c, t in pairs for r in _curve_rows(c, t)], columns=CURVE_COLUMNS)
    return runs, curves, meta


def export(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Write runs.csv and curves.csv atomically."""
    from archlab.plots import write_atomic

    files = {"runs.csv": write_atomic(out_dir / "runs.csv", runs.to_csv(index=False))}
    pause_for_tests("export")
    files["curves.csv"] = write_atomic(out_dir / "curves.csv", curves.to_csv(index=False))
    return files


def _render(runs: pd.DataFrame, curves: pd.DataFrame, meta: dict[str, Any], out: Path) -> dict:
    from archlab.report import render_report

    if runs.empty:
        print(f"archlab: no finished runs yet: no report written to {out}", file=sys.stderr)
        return {}
    meta = {**meta, "baseline": "baseline" if "baseline" in set(runs["variant"]) else None}
    return render_report(runs, curves, meta, out)


# --- the public entry points ---------------------------------------------------------------------


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


def _preflight(
    study_def: StudyDef,
    scale: str,
    jobs: int,
    overrides: Sequence[str],
    tune: Sequence[str],
    tune_trials: int,
    url: str,
    outputs: Sequence[Path],
) -> None:
    """Check every input, the storage and the output folders before the first line or file."""
    # Bad input must exit with its one line and change nothing: no journal, no folder, no trial.
    if jobs < 1:
        raise StudyError(f"--jobs {jobs}: need at least 1")
    if study_def.kind == "search":
        configs = [search_base(study_def, scale, overrides)[1]]
        assert study_def.search is not None
        if study_def.search.objective == "val_top1" and configs[0].val_size == 0:
            raise StudyFileError(
                f"{study_def.path}: search.objective: val_top1 needs recipe.val_size > 0 "
                f"(scale {scale} has none); or choose test_top1"
            )
    else:
        cells = plan_cells(study_def, scale, overrides)
        if tune:
            _tune_tasks(study_def, cells, scale, tune, tune_trials)
        configs = [c.config for c in cells]
    for dataset, resize in dict.fromkeys((c.dataset, c.resize) for c in configs):
        data_shape(dataset, resize)  # a missing or corrupt dataset: DataError now, not N failures
    if "://" in url:
        open_storage(url)
    for folder in outputs:
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


def _meta(
    study_def: StudyDef, scale: str, spec: ArchSpec, config: TrainConfig, seeds: Sequence[int]
) -> dict[str, Any]:
    return {
        "study": study_def.name,
        "title": study_def.title,
        "description": study_def.description,
        "kind": study_def.kind,
        "model": study_def.model,
        "dataset": config.dataset,
        "scale": scale,
        "seeds": list(seeds),
        "recipe": {k: v for k, v in config.to_dict().items() if k != "seed"},
        "baseline": "baseline",
        "base_spec": spec.to_dict(),
        "groups": {g.name: g.description for g in study_def.groups if g.name},
        "iso_macs": vars(study_def.iso_macs) if study_def.iso_macs else None,
        "claims": list(study_def.claims),
        "version": __version__,
        "commit": git_commit(),
        "machine": machine(),
        "planned_at": time.time(),
    }


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
) -> StudyOutcome:
    """Run (or resume) a study: plan, enqueue, work with ``jobs`` local workers, export, report."""
    study_def = load_study(file)
    url = storage or default_storage(study_def.name, results_dir)
    name = _study_name(study_def.name, scale)
    outputs = [Path(results_dir) / study_def.name]
    if render:
        outputs.append(Path(reports_dir) / study_def.name)
    _preflight(study_def, scale, jobs, overrides, tune, tune_trials, url, outputs)
    print(f"{study_def.name} [{scale}]: storage {mask_url(url)}", file=sys.stderr)
    if study_def.kind == "search":
        codes = _run_search(study_def, url, name, scale, jobs, list(overrides))
    else:
        codes = _run_compare(
            study_def, url, name, scale, jobs, list(overrides), list(tune), tune_trials
        )
    study, _ = _connect(url, name)
    files = _write_outputs(study, study_def.name, url, results_dir, reports_dir, render)
    counts = _counts(study)
    total = counts.pop("total")
    return StudyOutcome(study_def.name, scale, mask_url(url), total, counts, files, codes)


def _run_compare(
    study_def: StudyDef,
    url: str,
    name: str,
    scale: str,
    jobs: int,
    overrides: list[str],
    tune: list[str],
    tune_trials: int,
) -> list[int]:
    tuned = None
    if tune:
        tuned = _run_tune(study_def, url, scale, jobs, overrides, tune, tune_trials)
    cells = plan_cells(study_def, scale, overrides, tuned=tuned)
    study, _ = _connect(url, name, directions=["maximize"])
    study.set_user_attr("meta", _meta(study_def, scale, *_base_of(cells), _seeds(cells)))
    study.set_user_attr(
        "plan",
        [
            {"group": c.group, "variant": c.variant, "is_baseline": c.is_baseline, "key": c.key}
            for c in cells
        ],
    )
    fail_stale(study)
    pending = _enqueue(study, cells)
    print(
        f"{study_def.name} [{scale}]: {len(cells)} runs, {len(cells) - len(pending)} done, "
        f"{len(pending)} to run",
        file=sys.stderr,
    )
    if not pending:
        return []
    n = cap_jobs(jobs, len(usable_cores()), len(pending))
    return _run_with_progress(
        n,
        work,
        {"url": url, "study_name": name},
        url=url,
        study_name=name,
        total=len(pending),
        keys=set(pending),
        desc=f"{study_def.name} [{scale}]",
    )


def _base_of(cells: Sequence[Cell]) -> tuple[ArchSpec, TrainConfig]:
    base = next(c for c in cells if c.is_baseline and not c.group)
    return base.spec, base.config


def _seeds(cells: Sequence[Cell]) -> list[int]:
    return sorted({c.seed for c in cells})


def _run_tune(
    study_def: StudyDef,
    url: str,
    scale: str,
    jobs: int,
    overrides: list[str],
    keys: list[str],
    trials: int,
) -> dict[str, dict[str, Any]]:
    cells = plan_cells(study_def, scale, overrides)
    tasks = _tune_tasks(study_def, cells, scale, keys, trials)
    print(
        f"{study_def.name} [{scale}]: tuning {', '.join(keys)} of {len(tasks)} variants, "
        f"{trials} trials each, on {tasks[0].recipe['val_size']} validation images",
        file=sys.stderr,
    )
    n = cap_jobs(jobs, len(usable_cores()), trials)
    codes = run_workers(n, tune_work, {"url": url, "tasks": tasks})
    if any(codes):
        raise StudyError(f"tuning workers exited with codes {codes}")
    tuned = _tuned_values(url, tasks)
    for label, values in tuned.items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        print(f"  tuned {label}: {shown}", file=sys.stderr)
    return tuned


def _run_search(
    study_def: StudyDef, url: str, name: str, scale: str, jobs: int, overrides: list[str]
) -> list[int]:
    base_spec, base_cfg, trials, seeds = search_base(study_def, scale, overrides)
    assert study_def.search is not None  # run_study's _preflight checked the objective
    study, _ = _connect(
        url, name, directions=["maximize", "minimize"], sampler=_search_sampler(study_def, trials)
    )
    with warnings.catch_warnings():  # experimental since optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([study_def.search.objective, "macs"])
    meta = _meta(study_def, scale, base_spec, base_cfg, seeds[:1])
    study.set_user_attr("meta", {**meta, "trials": trials})
    fail_stale(study)
    _enqueue_search_baseline(study, study_def, base_spec)
    remaining = trials - _count(study, (TrialState.COMPLETE,))
    print(
        f"{study_def.name} [{scale}]: NSGA-II, {trials} trials, {max(remaining, 0)} to run",
        file=sys.stderr,
    )
    if remaining <= 0:
        return []
    n = cap_jobs(jobs, len(usable_cores()), remaining)
    kwargs = {
        "url": url,
        "study_name": name,
        "file": str(study_def.path),
        "scale": scale,
        "overrides": overrides,
    }
    return _run_with_progress(
        n,
        search_work,
        kwargs,
        url=url,
        study_name=name,
        total=remaining,
        keys=None,
        desc=f"{study_def.name} [{scale}]",
    )


def _counts(study: optuna.Study) -> dict[str, int]:
    """total / done / diverged / running / waiting / failed / remaining, by planned run."""
    trials = study.get_trials(deepcopy=False)
    plan = study.user_attrs.get("plan")
    if plan is None:  # search: every trial is its own run
        live = [t for t in trials if "key" in t.user_attrs and "reused_from" not in t.user_attrs]
        keys = [str(t.number) for t in live]
        by_key = {str(t.number): [t] for t in live}
        total = int((study.user_attrs.get("meta") or {}).get("trials", len(keys)))
    else:
        keys = list(dict.fromkeys(c["key"] for c in plan))
        by_key = {}
        for t in trials:
            if "duplicate_of" not in t.user_attrs:
                by_key.setdefault(t.user_attrs.get("key", ""), []).append(t)
        total = len(keys)
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


def _study_name_of(name_or_file: str) -> str:
    """A study's name from its file (if one is given or found) or the name itself."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml"):
        return load_study(find_study_file(name_or_file)).name
    return name_or_file


def _scales_in(url: str, name: str) -> list[str]:
    """Scales of a study present in a storage, most recently planned first."""
    storage = open_storage(url)
    found = []
    for s in storage.get_all_studies():
        meta = s.user_attrs.get("meta") or {}
        if meta.get("study") == name and s.study_name == _study_name(name, meta.get("scale", "")):
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
    name = _study_name_of(name_or_file)
    url = storage or default_storage(name, results_dir)
    if "://" not in url and not Path(url).exists():
        raise StudyError(f"{name}: no results yet ({url} does not exist)")
    scales = [scale] if scale else _scales_in(url, name)
    if not scales:
        raise StudyError(f"{name}: nothing stored in {mask_url(url)}")
    return {s: _counts(_connect(url, _study_name(name, s))[0]) for s in scales}


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
    name = _study_name_of(name_or_file)
    url = storage or default_storage(name, results_dir)
    if "://" not in url and not Path(url).exists():  # opening it would create an empty one
        raise StudyError(f"{name}: no results yet ({url} does not exist)")
    scales = [scale] if scale else _scales_in(url, name)
    if not scales:
        raise StudyError(f"{name}: nothing stored in {mask_url(url)}")
    study, _ = _connect(url, _study_name(name, scales[0]))
    return _write_outputs(study, name, url, results_dir, reports_dir, render=True)


def principles_report(
    *,
    scale: str = "quick",
    storage: str | None = None,
    results_dir: str | Path = "results",
    reports_dir: str | Path = "reports",
) -> dict[str, Path]:
    """``reports/principles/``: the four principle studies' verdicts on one page."""
    from archlab import report
    from archlab.claims import get_claim

    out = Path(reports_dir) / "principles"
    out.mkdir(parents=True, exist_ok=True)
    sections: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"scale": scale, "version": __version__, "commit": git_commit()}
    for name in PRINCIPLE_STUDIES:
        n = int(name[len("principle")])
        section: dict[str, Any] = {
            "principle": n,
            "title": name,
            "statement": get_claim(f"principle{n}").text,
        }
        url = storage or default_storage(name, results_dir)
        runs = pd.DataFrame()
        if "://" in url or Path(url).exists():
            with contextlib.suppress(StudyError):
                runs, curves, smeta = collect(_connect(url, _study_name(name, scale))[0])
                section["title"] = smeta.get("title", name)
                meta.setdefault("dataset", smeta.get("dataset"))
                meta.setdefault("machine", smeta.get("machine"))
        if runs.empty:
            section["verdict"] = f"not run (archlab study run studies/{name}.yaml --scale {scale})"
        else:
            fn = getattr(report, f"principle{n}")
            plot, verdict, detail = fn(runs, curves, out) if n == 2 else fn(runs, out)
            section.update(plot=plot, verdict=verdict, detail=detail)
        sections.append(section)
    return report.render_principles(sections, meta, out)
