"""One run as an optuna trial: its attrs, training it, its score, and failing trials left stale.

Stale trials (their process died): RUNNING trials record host, pid and the pid's start time;
one whose process is gone from this host is failed, so the next plan enqueues it again. With
an RDB storage optuna's heartbeat also fails trials from dead processes on other hosts. A
trial still without an owner GRACE_S after its claim (its worker died in between) is failed.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from archlab import __version__
from archlab.arch.spec import ArchSpec
from archlab.faults import pause_for_tests
from archlab.provenance import git_commit
from archlab.study.plan import config_shape, run_key
from archlab.study.storage import GRACE_S
from archlab.train.config import RunResult, TrainConfig

__all__ = [
    "COMPLETE",
    "FAILED",
    "FAILED_ELSEWHERE",
    "RunFailed",
    "cell_attrs",
    "complete_trial_of",
    "count_trials",
    "fail_stale",
    "heartbeat",
    "metric_attrs",
    "run_claimed",
    "score",
    "train_trial",
]


class RunFailed(Exception):
    """A run ended with status "failed" (its trial is FAIL and is retried next time)."""


def cell_attrs(model: str, spec: ArchSpec, config: TrainConfig, scale: str, label: str) -> dict:
    """The user attrs of a run's trial: its key and everything needed to train it."""
    return {
        "key": run_key(model, spec, config, scale),
        "model": model,
        "scale": scale,
        "label": label,
        "seed": config.seed,
        "spec": spec.to_dict(),
        "recipe": config.to_dict(),
    }


def train_trial(trial: optuna.Trial) -> RunResult:
    """Train the configuration in a trial's user attrs; store provenance, curve and result."""
    from archlab.train.trainer import train

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
        trial.set_user_attr("min_repr", _min_repr(attrs["model"], spec, config))
    for name, value in metric_attrs(result).items():
        trial.set_user_attr(name, value)
    trial.set_user_attr("result", result.to_dict())  # last: "result" marks a finished run
    if result.status == "failed":
        raise RunFailed(result.error)
    return result


#: Trial attrs of the run's own that a metric must not overwrite.
RESERVED_ATTRS = frozenset(
    {"key", "model", "scale", "label", "seed", "spec", "recipe", "owner", "version", "commit",
     "epoch", "min_repr", "result", "duplicate_of", "reused_from", "error"}
)  # fmt: skip


def metric_attrs(result: RunResult) -> dict[str, Any]:
    """A result's status, cost and scalar final metrics as flat trial attrs.

    ``result`` holds them too, nested in JSON that optuna-dashboard cuts at 1,024 characters
    (before the metrics); as attrs of their own they are sortable columns of its trial table.
    Non-finite values (a diverged run) are left out.
    """
    out: dict[str, Any] = {"status": result.status, "macs": result.macs, "params": result.params}
    for name, value in result.final.items():
        scalar = isinstance(value, int | float) and not isinstance(value, bool)
        if scalar and math.isfinite(value) and name not in RESERVED_ATTRS:
            out[name] = float(value)
    return out


def _min_repr(model: str, spec: ArchSpec, config: TrainConfig) -> float:
    """The network's narrowest representation relative to its input (principle 1)."""
    from archlab.arch.cost import complexity

    size, chans, classes = config_shape(config)
    cost = complexity(model, spec, input_size=size, in_chans=chans, num_classes=classes)
    return cost.min_repr


def score(result: RunResult, metric: str) -> float:
    """A run's objective value; diverged runs score 0 (a result, and optuna rejects NaN)."""
    value = result.final.get(metric, math.nan)
    return float(value) if result.status == "complete" and math.isfinite(value) else 0.0


def count_trials(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    """How many trials of the study are in one of ``states``."""
    return len(study.get_trials(deepcopy=False, states=states))


def complete_trial_of(study: optuna.Study, key: str, number: int) -> FrozenTrial | None:
    """A COMPLETE trial other than ``number`` that trained the run ``key``, if any."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number != number and t.user_attrs.get("key") == key and "result" in t.user_attrs:
            return t
    return None


# --- stale trials --------------------------------------------------------------------------------


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
def heartbeat(storage: BaseStorage, study: optuna.Study, number: int) -> Iterator[None]:
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
            try:
                storage.record_heartbeat(trial_id)
            except Exception as e:
                # A database hiccup must cost one beat, not all: a thread ended by it would leave
                # the run to be failed as stale and redone elsewhere while it still trains here.
                # The type only: a driver's message may hold the storage URL and its password.
                print(
                    f"archlab: warning: trial {number}: heartbeat not recorded "
                    f"({type(e).__name__}); next try in {interval} s",
                    file=sys.stderr,
                )
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


#: what ``run_claimed`` did with a claimed trial
COMPLETE, FAILED, FAILED_ELSEWHERE = "complete", "failed", "failed elsewhere"


def run_claimed(
    storage: BaseStorage, study: optuna.Study, trial: optuna.Trial, run: Callable[[], float]
) -> str:
    """Run a claimed trial under its heartbeat and tell optuna how it ended.

    Returns COMPLETE, FAILED (the run failed: FAIL told, retried next time) or FAILED_ELSEWHERE
    (another worker failed it as stale while it ran: this attempt is dropped, the next plan
    queues it again). Ctrl-C tells FAIL first, so the next run retries it.
    """
    try:
        # Beat before the owner is recorded, so no moment leaves a trial unseen by fail_stale.
        with heartbeat(storage, study, trial.number):
            value = run()
    except RunFailed:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return FAILED
    except optuna.exceptions.UpdateFinishedTrialError:
        return FAILED_ELSEWHERE
    except BaseException:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    told = study.tell(trial, [value], skip_if_finished=True)
    # failed elsewhere after its last attr was written
    return COMPLETE if told.state == TrialState.COMPLETE else FAILED_ELSEWHERE
