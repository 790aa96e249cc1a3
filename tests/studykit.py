"""Helpers of the reliability, bad-input, PostgreSQL and security tests: tiny studies, CLI runs."""

from __future__ import annotations

import datetime
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import sqlalchemy
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

import archlab.study.progress
import archlab.study.storage
import archlab.study.trials
from archlab.study.engine import run_study
from archlab.study.optuna_compat import claim_waiting_trial
from archlab.study.plan import plan_cells
from archlab.study.storage import connect
from archlab.study.studyfile import load_study
from archlab.study.tables import RUN_COLUMNS
from archlab.study.trials import fail_stale, heartbeat
from archlab.train.runtime import threads

#: ``python -m archlab.cli``: the module entry point, so its error handling is tested too
ARCHLAB = [sys.executable, "-m", "archlab.cli"]
TIMEOUT_S = 180  # no single CLI call of these tests comes near this, even on a busy machine

# A quarter-width, half-depth net on 64 synthetic images: one epoch is two steps, well under a
# second per run on one thread (two threads on a busy 2-core machine run 20x slower). The scale
# keeps its SMOKE defaults otherwise (one epoch, no compile).
TINY = """\
name: {name}
title: {title}
description: {description}
base: {{width_mult: 0.25, depth_mult: 0.5}}
variants:
  one_factor:
{variants}
scales:
  smoke: {{seeds: {seeds}, dataset: "synthetic:64", val_size: 0, batch_size: 32, threads: 1}}
"""
CONV5 = "    - {conv5x5: 5x5}"
# lr 1e6 with a constant schedule: weights overflow within two steps (onecycle would start the
# lr at 1/25 of that and, on two steps, finish without diverging)
DIVERGE = "    - {name: diverge, recipe: {lr: 1.0e+6, schedule: constant}}"


def write_study(
    folder: Path,
    name: str,
    *,
    variants: tuple[str, ...] = (CONV5,),
    seeds: int = 1,
    title: str = "tiny",
    description: str = "a tiny study for tests",
) -> Path:
    """A study file ``folder/NAME.yaml`` of the tiny net: baseline plus ``variants``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    text = TINY.format(
        name=name,
        title=_quoted(title),
        description=_quoted(description),
        variants="\n".join(variants),
        seeds=seeds,
    )
    path.write_text(text)
    return path


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def one_torch_thread() -> Iterator[None]:
    """Body of an autouse fixture: one torch thread while a test module runs in-process."""
    # on a busy 2-core machine two OpenMP threads spin against each other: runs take 20x longer
    with threads(1):
        yield


def planned_keys(path: Path, scale: str = "smoke") -> set[str]:
    """Run keys of every planned cell of a study file."""
    return {c.key for c in plan_cells(load_study(path), scale)}


def env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: one torch thread (2-core CI), never download."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "ARCHLAB_NO_DOWNLOAD": "1", **extra}


def run_cli(args: list[str], *, timeout: float = TIMEOUT_S, **extra: str) -> tuple[int, str, str]:
    """``archlab ARGS`` as a subprocess: (exit code, stdout, stderr)."""
    p = subprocess.run(
        ARCHLAB + args, capture_output=True, text=True, timeout=timeout, env=env(**extra)
    )
    return p.returncode, p.stdout, p.stderr


def run_main(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``archlab ARGV`` in this process (pytest's capsys): (exit code, stdout, stderr)."""
    from archlab.cli import main

    try:
        rc = main(list(argv))
    except SystemExit as e:  # argparse errors
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


class Proc:
    """A CLI subprocess whose stderr lines can be waited for; killed with its process group."""

    def __init__(self, args: list[str], **extra: str) -> None:
        self.p = subprocess.Popen(
            ARCHLAB + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(**extra),
            start_new_session=True,  # a group of its own: a kill takes spawned workers too
        )
        self.err_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._out: list[str] = []
        self._readers = [
            threading.Thread(target=self._pump, args=(self.p.stderr, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.p.stdout, False), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _pump(self, stream: Any, is_err: bool) -> None:
        for line in stream:
            if is_err:
                self.err_lines.append(line)
                self._lines.put(line)
            else:
                self._out.append(line)
        if is_err:
            self._lines.put(None)

    def wait_line(self, text: str, count: int = 1, timeout: float = TIMEOUT_S) -> bool:
        """Until the ``count``-th stderr line containing ``text``; False if the process ended."""
        deadline, seen = time.monotonic() + timeout, 0
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {text!r} line within {timeout} s") from None
            if line is None:
                return False
            seen += text in line
            if seen >= count:
                return True

    def kill(self) -> bool:
        """SIGKILL the whole process group; False if it had already exited."""
        if self.p.poll() is not None:
            return False
        os.killpg(self.p.pid, signal.SIGKILL)
        return True

    def finish(self, timeout: float = TIMEOUT_S) -> tuple[int, str, str]:
        """Wait for the end: (exit code, stdout, stderr)."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.p.wait()
            raise
        for t in self._readers:
            t.join(timeout=10)
        return rc, "".join(self._out), "".join(self.err_lines)


def storage_of(url: str) -> BaseStorage:
    """A plain optuna storage for inspection (no repair, no heartbeat: read what is there)."""
    if "://" in url:
        return RDBStorage(url)
    return JournalStorage(JournalFileBackend(url))


def trials(url: str, study_name: str) -> list[FrozenTrial]:
    """Every trial of a study; [] when the storage or the study does not exist yet."""
    if "://" not in url and not Path(url).exists():
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=study_name, storage=storage_of(url)).get_trials()
    except KeyError:
        return []


def complete_by_key(ts: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """COMPLETE trials grouped by run key (duplicates pruned by the engine excluded)."""
    out: dict[str, list[FrozenTrial]] = {}
    for t in ts:
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
            out.setdefault(t.user_attrs["key"], []).append(t)
    return out


def assert_each_once(ts: list[FrozenTrial], keys: set[str]) -> None:
    """Every planned key has exactly one COMPLETE trial, and nothing else completed."""
    done = complete_by_key(ts)
    twice = {k: len(v) for k, v in done.items() if len(v) != 1}
    assert not twice, f"runs finished more than once: {twice}"
    assert set(done) == keys, f"missing {keys - set(done)}, unplanned {set(done) - keys}"


def check_runs_csv(path: Path, keys: set[str], *, complete: bool) -> pd.DataFrame:
    """runs.csv parses, has the run columns, one row per run key; all planned if ``complete``."""
    runs = pd.read_csv(path)
    assert list(runs.columns) == RUN_COLUMNS
    assert runs["run_key"].is_unique, runs["run_key"].value_counts()
    assert set(runs["run_key"]) <= keys
    assert set(runs["status"]) <= {"complete", "diverged", "failed"}
    if complete:
        assert len(runs) == len(keys) and set(runs["run_key"]) == keys
        assert set(runs["status"]) <= {"complete", "diverged"}
    return runs


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with (size, mtime_ns): equal snapshots = nothing changed."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# --- a run left RUNNING by a worker on another machine -------------------------------------------

FOREIGN_HOST = "another-machine.invalid"  # never this host's name: its pids mean nothing here
SHORT_HEARTBEAT_S = 1  # what short_heartbeat() sets: beat every second ...
SHORT_GRACE_S = 10  # ... stale after 10 s without one (far above a busy machine's stalls)


def short_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storages opened from now on beat every second and call a run stale after SHORT_GRACE_S."""
    monkeypatch.setattr(archlab.study.storage, "HEARTBEAT_S", SHORT_HEARTBEAT_S)
    monkeypatch.setattr(archlab.study.storage, "GRACE_S", SHORT_GRACE_S)
    monkeypatch.setattr(archlab.study.trials, "GRACE_S", SHORT_GRACE_S)


def plan_only(path: Path, url: str, tmp: Path) -> None:
    """Plan and enqueue a study's runs in ``url`` without training any."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(archlab.study.progress, "run_workers", lambda *a, **k: [0])
        run_study(path, scale="smoke", storage=url, results_dir=tmp / "results", render=False)


def claim_as_foreign_worker(url: str, name: str, *, pid: int, heartbeat_age_s: float) -> int:
    """Claim the next enqueued run as a worker on FOREIGN_HOST; its trial's number.

    The owner attr names that host and ``pid``; its one heartbeat is ``heartbeat_age_s`` old
    by the database's own clock (the clock optuna's stale check reads), so no test waits.
    """
    storage = storage_of(url)
    assert isinstance(storage, RDBStorage)
    study = optuna.load_study(study_name=name, storage=storage)
    trial = claim_waiting_trial(study)
    assert trial is not None, "nothing enqueued to claim"
    trial.set_user_attr("owner", {"host": FOREIGN_HOST, "pid": pid, "start": "1"})
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(name), trial.number
    )
    storage.record_heartbeat(trial_id)
    if heartbeat_age_s:
        meta = sqlalchemy.MetaData()
        table = sqlalchemy.Table("trial_heartbeats", meta, autoload_with=storage.engine)
        where = table.c.trial_id == trial_id
        with storage.engine.begin() as conn:
            beat = conn.execute(sqlalchemy.select(table.c.heartbeat).where(where)).scalar_one()
            age = datetime.timedelta(seconds=heartbeat_age_s)
            conn.execute(table.update().where(where).values(heartbeat=beat - age))
    return trial.number


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _run(path: Path, url: str, tmp: Path) -> Any:
    return run_study(path, scale="smoke", storage=url, results_dir=tmp / "results", render=False)


def check_dead_foreign_run_is_rerun_once(url: str, tmp: Path, name: str) -> None:
    """A run claimed on FOREIGN_HOST, its heartbeat past the grace: failed, then run here once."""
    path = write_study(tmp, name)
    keys, study_name = planned_keys(path), f"{name}-smoke"
    plan_only(path, url, tmp)
    # its pid is alive here (this test's): only the old heartbeat says that its owner is gone
    age = SHORT_GRACE_S + 60
    number = claim_as_foreign_worker(url, study_name, pid=os.getpid(), heartbeat_age_s=age)
    key = trials(url, study_name)[number].user_attrs["key"]

    outcome = _run(path, url, tmp)
    assert outcome.ok, outcome.counts
    ts = trials(url, study_name)
    assert ts[number].state == TrialState.FAIL
    assert_each_once(ts, keys)
    # enqueued again once and trained once: the failed trial, then one COMPLETE one
    ours = [(t.number, t.state) for t in ts if t.user_attrs.get("key") == key]
    assert ours[0] == (number, TrialState.FAIL) and [s for _, s in ours[1:]] == [
        TrialState.COMPLETE
    ]
    assert _run(path, url, tmp).ok and len(trials(url, study_name)) == len(ts)  # nothing more


def check_live_foreign_run_is_left_alone(url: str, tmp: Path, name: str) -> None:
    """A run claimed on FOREIGN_HOST that keeps beating: never failed, never run here too."""
    path = write_study(tmp, name)
    study_name = f"{name}-smoke"
    plan_only(path, url, tmp)
    # its pid is dead here: only the host in its owner says that the pid is another machine's
    number = claim_as_foreign_worker(url, study_name, pid=dead_pid(), heartbeat_age_s=0)
    study, storage = connect(url, study_name)
    assert fail_stale(study) == []
    assert trials(url, study_name)[number].state == TrialState.RUNNING

    with heartbeat(storage, study, number):  # the foreign worker beats on while this one works
        outcome = _run(path, url, tmp)
    assert (outcome.counts["done"], outcome.counts["running"]) == (1, 1), outcome.counts
    ts = trials(url, study_name)
    assert ts[number].state == TrialState.RUNNING
    key = ts[number].user_attrs["key"]
    assert [t.number for t in ts if t.user_attrs.get("key") == key] == [number]  # not enqueued
