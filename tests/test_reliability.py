"""Studies lose nothing: SIGKILL in every phase, concurrent workers, divergence, disk trouble."""

from __future__ import annotations

import errno
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

import archlab.study.compare
import archlab.study.engine
import archlab.study.progress
import archlab.study.tables
import archlab.study.trials
import archlab.train.trainer
from archlab.cli import main
from archlab.study.engine import run_study
from archlab.study.optuna_compat import claim_waiting_trial
from archlab.study.storage import connect
from archlab.study.trials import heartbeat
from tests.studykit import (
    CONV5,
    DIVERGE,
    Proc,
    assert_each_once,
    check_dead_foreign_run_is_rerun_once,
    check_live_foreign_run_is_left_alone,
    check_runs_csv,
    complete_by_key,
    one_torch_thread,
    plan_only,
    planned_keys,
    run_cli,
    short_heartbeat,
    storage_of,
    tree,
    trials,
    write_study,
)

# (phase, which arrival at it to kill): "train" pauses as a claimed run starts training,
# "export" between writing runs.csv and curves.csv, "render" between report.md and report.html;
# "random" kills at a random moment: up to 0.8 s after the first run starts (claiming, training,
# telling, claiming the next), or, once nothing is left to train, 1-4 s after the start
# (planning, exporting, rendering). With 9 runs the train rounds always find work, even on a
# machine fast enough to finish three runs in a random round.
ROUNDS = [
    ("train", 1),
    ("random", 0),
    ("train", 2),
    ("train", 1),
    ("random", 0),
    ("train", 1),
    ("train", 2),
    ("export", 1),
    ("render", 1),
    ("random", 0),
    ("export", 1),
    ("render", 1),
    ("random", 0),
]
SNAPSHOT_KEYS = ("number", "datetime_complete", "values")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from one_torch_thread()


def _study_args(path: Path, tmp: Path, *extra: str) -> list[str]:
    results, reports = str(tmp / "results"), str(tmp / "reports")
    return ["study", "run", str(path), "--scale", "smoke", "--results", results, "--reports",
            reports, *extra]  # fmt: skip


def _snapshot(t: FrozenTrial) -> tuple[Any, ...]:
    """What must never change once a run is complete (a recompute changes all of it)."""
    return (*(getattr(t, k) for k in SNAPSHOT_KEYS), t.user_attrs["result"]["final"])


def _check_state(tmp: Path, name: str, keys: set[str], seen: dict[str, tuple]) -> None:
    """After a kill: no run done twice, done runs unchanged, every file whole and parseable."""
    done = complete_by_key(trials(str(tmp / "results" / name / "journal.log"), f"{name}-smoke"))
    assert all(len(v) == 1 for v in done.values()), "a run was completed twice"
    assert set(done) <= keys
    for key, (t,) in done.items():
        assert seen.setdefault(key, _snapshot(t)) == _snapshot(t), "a finished run was redone"
    assert set(seen) == set(done), "a finished run was lost"
    out = tmp / "results" / name
    if (out / "runs.csv").exists():
        runs = check_runs_csv(out / "runs.csv", keys, complete=False)
        assert set(runs["run_key"]) <= set(done) | set(runs.loc[runs.status == "failed", "run_key"])
    if (out / "curves.csv").exists():
        assert set(pd.read_csv(out / "curves.csv")["run_key"]) <= keys
    page = tmp / "reports" / name / "report.html"
    if page.exists():  # written atomically: whole or absent, never cut off
        assert page.read_text().rstrip().endswith("</html>")


def test_sigkill_in_every_phase_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    path = write_study(tmp_path, "crash", variants=(CONV5, DIVERGE), seeds=3)
    keys = planned_keys(path)
    args = _study_args(path, tmp_path)
    rng = random.Random(1512)  # random-ish kill times, the same on every CI run
    kills: Counter[str] = Counter()
    seen: dict[str, tuple] = {}
    for phase, nth in ROUNDS:
        if phase == "random":
            deadline, after_start = rng.uniform(1.0, 4.0), rng.uniform(0.0, 0.8)
            proc = Proc(args, ARCHLAB_TEST_PAUSE="train:0")  # announces each run, no wait
            try:
                if proc.wait_line("test pause at train", timeout=deadline):
                    time.sleep(after_start)
            except TimeoutError:  # nothing started training by then: kill it where it is
                pass
            killed = proc.kill()
        else:
            # the pause holds at every arrival: short when an earlier arrival must pass on
            proc = Proc(args, ARCHLAB_TEST_PAUSE=f"{phase}:{120 if nth == 1 else 1}")
            killed = proc.wait_line(f"test pause at {phase}", nth) and proc.kill()
        rc, _, err = proc.finish()
        if killed:
            kills[phase] += 1
        else:  # it got to the end first: then it must have ended well
            assert rc == 0 and "Traceback" not in err, err
        _check_state(tmp_path, "crash", keys, seen)
    assert sum(kills.values()) >= 10, kills
    assert kills["train"] == 5 and kills["export"] == 2 and kills["render"] == 2, kills

    # A random kill in the few milliseconds between claiming a run and recording its owner
    # leaves that run RUNNING without an owner; the engine fails such a run GRACE_S (5 min)
    # after its claim and runs it again. Rare; when it happens, skip the wait.
    url = str(tmp_path / "results" / "crash" / "journal.log")
    running = [t for t in trials(url, "crash-smoke") if t.state == TrialState.RUNNING]
    assert all("owner" not in t.user_attrs for t in running)  # the others were failed
    if running:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(archlab.study.trials, "GRACE_S", 0)
            dirs = {"results_dir": tmp_path / "results", "reports_dir": tmp_path / "reports"}
            assert run_study(path, scale="smoke", **dirs).ok
        # that run finished here: record it, so the last run below must not redo it either
        _check_state(tmp_path, "crash", keys, seen)

    # One more run finishes the job; every run was finished before, so it trains nothing.
    rc, out, err = run_cli(args, ARCHLAB_TEST_PAUSE="train:0")
    assert rc == 0 and "Traceback" not in err, err
    assert "test pause at train" not in err and f"{len(keys)}/{len(keys)} runs done" in out
    ts = trials(url, "crash-smoke")
    assert_each_once(ts, keys)
    assert {k: _snapshot(v[0]) for k, v in complete_by_key(ts).items()} == seen
    runs = check_runs_csv(tmp_path / "results" / "crash" / "runs.csv", keys, complete=True)
    assert set(runs.loc[runs.variant == "diverge", "status"]) == {"diverged"}
    md = (tmp_path / "reports" / "crash" / "report.md").read_text()
    assert "diverge" in md and "diverge" in (tmp_path / "reports/crash/report.html").read_text()


def test_three_workers_started_together_share_one_journal(tmp_path: Path) -> None:
    path = write_study(tmp_path, "trio", variants=(CONV5, DIVERGE), seeds=2)
    keys = planned_keys(path)
    # a second's pause as each run starts: every worker gets to work before the queue is empty
    args = _study_args(path, tmp_path, "--no-report")
    procs = [Proc(args, ARCHLAB_TEST_PAUSE="train:1") for _ in range(3)]
    ends = [p.finish() for p in procs]
    for rc, _, err in ends:  # 1: "done here, but runs are still going elsewhere"
        assert rc in (0, 1) and "Traceback" not in err, err
    assert any(rc == 0 for rc, _, _ in ends)
    ts = trials(str(tmp_path / "results" / "trio" / "journal.log"), "trio-smoke")
    assert_each_once(ts, keys)
    # three planners may each enqueue a cell: the extra trials were pruned, never trained
    extra = [t for t in ts if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.PRUNED and "duplicate_of" in t.user_attrs for t in extra)
    assert all("result" not in t.user_attrs for t in extra)
    owners = {t.user_attrs["owner"]["pid"] for t in ts if t.state == TrialState.COMPLETE}
    assert len(owners) >= 2  # the queue was shared
    # an early finisher may have exported before the last run ended: re-export, then all rows
    assert main(["study", "report", str(path), "--results", str(tmp_path / "results"),
                 "--reports", str(tmp_path / "reports")]) == 0  # fmt: skip
    check_runs_csv(tmp_path / "results" / "trio" / "runs.csv", keys, complete=True)


# --- one finished study, reused ------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny study with a diverging variant, run to the end with its report by the CLI."""
    # a subprocess, so the runs' owner process is gone afterwards, as after any real run
    tmp = tmp_path_factory.mktemp("finished")
    path = write_study(tmp / "studies", "fin", variants=(CONV5, DIVERGE))
    rc, out, err = run_cli(_study_args(path, tmp))
    assert rc == 0, err
    return {"tmp": tmp, "path": path, "out": out, "keys": planned_keys(path)}


def _copy(finished: dict[str, Any], tmp_path: Path) -> tuple[Path, list[str]]:
    """A private copy of the finished study's results: (results root, CLI args to rerun it)."""
    shutil.copytree(finished["tmp"] / "results", tmp_path / "results")
    args = ["study", "run", str(finished["path"]), "--scale", "smoke", "--results",
            str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]  # fmt: skip
    return tmp_path / "results", args


def test_diverged_run_ends_diverged_and_the_report_says_so(finished: dict[str, Any]) -> None:
    assert "fin [smoke]: 3/3 runs done (1 diverged), 0 failed" in finished["out"]
    runs = check_runs_csv(finished["tmp"] / "results/fin/runs.csv", finished["keys"], complete=True)
    status = dict(zip(runs["variant"], runs["status"], strict=True))
    assert status == {"baseline": "complete", "conv5x5=5x5": "complete", "diverge": "diverged"}
    bad = runs[runs.variant == "diverge"].iloc[0]
    assert "non-finite" in bad["error"] or "nan" in bad["error"]
    md = (finished["tmp"] / "reports/fin/report.md").read_text().splitlines()
    assert any(line.startswith("| variant | runs (complete/diverged/failed) |") for line in md)
    assert next(line for line in md if line.startswith("| diverge |")).startswith(
        "| diverge | 1 (0/1/0) | n/a |"
    )


def test_same_study_twice_from_scratch_gives_identical_metrics(
    finished: dict[str, Any], tmp_path: Path
) -> None:
    rc, _, err = run_cli(_study_args(finished["path"], tmp_path, "--no-report"))
    assert rc == 0, err
    cols = ["run_key", "variant", "status", "macs", "params", "test_top1", "test_top5",
            "test_nll", "test_ece", "min_repr"]  # fmt: skip
    first, second = (
        pd.read_csv(f).sort_values("run_key")[cols].reset_index(drop=True)
        for f in (finished["tmp"] / "results/fin/runs.csv", tmp_path / "results/fin/runs.csv")
    )
    assert first["test_nll"].notna().sum() == 2  # two real results, one diverged
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    curve_cols = ["run_key", "epoch", "train_loss", "train_top1", "test_top1", "test_nll"]
    c1, c2 = (
        pd.read_csv(f).sort_values(["run_key", "epoch"])[curve_cols].reset_index(drop=True)
        for f in (finished["tmp"] / "results/fin/curves.csv", tmp_path / "results/fin/curves.csv")
    )
    pd.testing.assert_frame_equal(c1, c2, check_exact=True)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archlab: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_results_dir_that_cannot_be_made_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, "nodir")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    rc = main(["study", "run", str(path), "--scale", "smoke", "--results", str(blocker / "res")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and str(blocker / "res" / "nodir") in line and "Not a directory" in line
    assert blocker.read_text() == "not a folder\n"


def test_read_only_results_dir_is_one_line_and_exit_2(
    finished: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results, args = _copy(finished, tmp_path)
    out = results / "fin"
    out.chmod(0o555)
    try:
        probe = out / ".probe"
        try:
            probe.write_text("")
        except PermissionError:
            pass
        else:  # root ignores the mode bits (CI runs as root): the OS answers EACCES as it
            probe.unlink()  # would for anyone else, at the engine's write probe
            real = tempfile.mkstemp

            def read_only(*a: Any, dir: str | Path | None = None, **kw: Any) -> tuple[int, str]:
                if dir is not None and Path(dir) == out:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
                return real(*a, dir=dir, **kw)

            monkeypatch.setattr(archlab.study.engine.tempfile, "mkstemp", read_only)
        before = tree(results)
        rc = main(args)
        line = _one_error_line(capsys.readouterr().err)
        assert rc == 2 and str(out) in line and "Permission denied" in line
        assert tree(results) == before
    finally:
        out.chmod(0o755)


def test_failed_write_after_training_is_one_line_and_keeps_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_study(tmp_path, "full")
    real = archlab.study.tables.write_atomic

    def disk_full(p: Path, data: bytes | str) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(p.parent))

    monkeypatch.setattr(archlab.study.tables, "write_atomic", disk_full)
    args = ["study", "run", str(path), "--scale", "smoke", "--results", str(tmp_path / "results"),
            "--reports", str(tmp_path / "reports")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]  # after the usual progress lines
    assert "Traceback" not in err and line.startswith("archlab: error: ")
    assert "No space left on device" in line and "journal.log" in line
    ts = trials(str(tmp_path / "results" / "full" / "journal.log"), "full-smoke")
    assert len(complete_by_key(ts)) == 2  # the runs themselves were kept

    monkeypatch.setattr(archlab.study.tables, "write_atomic", real)
    assert main([*args, "--no-report"]) == 0
    assert "2 runs, 2 done, 0 to run" in capsys.readouterr().err  # nothing trained again
    check_runs_csv(tmp_path / "results" / "full" / "runs.csv", planned_keys(path), complete=True)


def test_truncated_runs_csv_is_rewritten_whole_from_the_storage(
    finished: dict[str, Any], tmp_path: Path
) -> None:
    results, args = _copy(finished, tmp_path)
    runs_csv = results / "fin" / "runs.csv"
    whole = runs_csv.read_bytes()
    cut = whole.rfind(b"\n", 0, len(whole) - 1) + 40  # 40 bytes into the last row
    runs_csv.write_bytes(whole[:cut])
    rc, out, err = run_cli([*args, "--no-report"], ARCHLAB_TEST_PAUSE="train:0")
    assert rc == 0 and "Traceback" not in err and "test pause at train" not in err, err
    assert runs_csv.read_bytes() == whole


def test_journal_cut_mid_line_keeps_every_complete_entry(
    finished: dict[str, Any], tmp_path: Path
) -> None:
    results, args = _copy(finished, tmp_path)
    journal = results / "fin" / "journal.log"
    url, keys = str(journal), finished["keys"]
    before = {k: v[0].number for k, v in complete_by_key(trials(url, "fin-smoke")).items()}
    data = journal.read_bytes()
    # cut inside the entry that completed the last trial: that trial's result is lost
    last_tell = data.rfind(b'"state":1')
    journal.write_bytes(data[:last_tell])
    intact = {k: v[0].number for k, v in complete_by_key(trials(url, "fin-smoke")).items()}
    assert len(intact) == len(keys) - 1 and intact.items() <= before.items()

    rc, out, err = run_cli([*args, "--no-report"], ARCHLAB_TEST_PAUSE="train:0")
    assert rc == 0 and "Traceback" not in err, err
    assert "dropped a torn last entry" in err and err.count("test pause at train") == 1
    ts = trials(url, "fin-smoke")
    assert_each_once(ts, keys)
    after = {k: v[0].number for k, v in complete_by_key(ts).items()}
    assert intact.items() <= after.items()  # the complete ones were kept, not redone
    check_runs_csv(results / "fin" / "runs.csv", keys, complete=True)
    assert len(list((results / "fin").glob("journal.log.torn-*"))) == 1
    assert journal.read_bytes().endswith(b"\n")  # whole entries only: optuna read it all above


def test_run_claimed_by_a_worker_that_died_at_once_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_study(tmp_path, "orphan")
    dirs = {"results_dir": tmp_path / "results", "render": False}
    url = str(tmp_path / "results" / "orphan" / "journal.log")
    # plan only: enqueue the cells, then claim one as a worker killed right after its claim
    # (before it recorded its owner) would leave it
    monkeypatch.setattr(archlab.study.progress, "run_workers", lambda *a, **k: [0])
    run_study(path, scale="smoke", **dirs)
    study, _ = connect(url, "orphan-smoke")
    orphan = claim_waiting_trial(study)
    assert orphan is not None and "owner" not in study.trials[orphan.number].user_attrs
    monkeypatch.undo()

    monkeypatch.setattr(archlab.study.trials, "GRACE_S", 3600)  # a claim this young may be alive
    assert not run_study(path, scale="smoke", **dirs).ok  # not stolen from a live worker
    monkeypatch.setattr(archlab.study.trials, "GRACE_S", 0)  # long past: its worker is gone
    outcome = run_study(path, scale="smoke", **dirs)
    assert outcome.ok
    ts = trials(url, "orphan-smoke")
    assert ts[orphan.number].state == TrialState.FAIL
    assert_each_once(ts, planned_keys(path))


def test_journal_corrupt_in_the_middle_is_one_clear_line(
    finished: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, _ = _copy(finished, tmp_path)
    journal = results / "fin" / "journal.log"
    lines = journal.read_bytes().split(b"\n")
    lines[5:7] = [lines[5][:20] + lines[6]]  # a cut entry with the next one written onto it
    journal.write_bytes(b"\n".join(lines))
    rc = main(["study", "status", str(finished["path"]), "--results", str(results)])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and f"{journal}: corrupt journal at line 6" in line
    assert "the lines before it are intact" in line


def test_run_of_a_dead_machine_fails_by_its_old_heartbeat_and_reruns_once_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_heartbeat(monkeypatch)
    check_dead_foreign_run_is_rerun_once(f"sqlite:///{tmp_path / 'studies.db'}", tmp_path, "gone")


def test_run_of_a_live_machine_with_a_fresh_heartbeat_is_left_alone_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_heartbeat(monkeypatch)
    check_live_foreign_run_is_left_alone(f"sqlite:///{tmp_path / 'studies.db'}", tmp_path, "alive")


def test_heartbeat_beats_on_after_a_beat_the_database_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a dead heartbeat thread would let other machines fail a run that still trains, and redo it
    study, storage = connect(f"sqlite:///{tmp_path / 'hb.db'}", "hb", directions=["maximize"])
    study.enqueue_trial({})
    trial = claim_waiting_trial(study)  # as a worker claims a run (ask() warns with a heartbeat)
    assert trial is not None
    monkeypatch.setattr(storage, "get_heartbeat_interval", lambda: 0.01)  # no test waits a second
    real, calls, beats = storage.record_heartbeat, [], threading.Event()

    def flaky(trial_id: int) -> None:
        calls.append(trial_id)
        if len(calls) == 1:  # a server restart, a dropped connection
            raise sqlalchemy.exc.OperationalError("UPDATE trial_heartbeats", {}, OSError("gone"))
        real(trial_id)
        if len(calls) == 3:
            beats.set()

    monkeypatch.setattr(storage, "record_heartbeat", flaky)
    with heartbeat(storage, study, trial.number):
        assert beats.wait(timeout=30), f"{len(calls)} beat(s), then the heartbeat stopped"
    err = capsys.readouterr().err
    assert f"trial {trial.number}: heartbeat not recorded (OperationalError)" in err


@pytest.mark.parametrize("when", ["as it starts", "after its result"])
def test_run_failed_as_stale_by_another_machine_while_it_trains_is_dropped_here(
    when: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # This machine stalled past the grace (suspended, its database gone for minutes): another
    # one failed its run as stale and runs it again. Its worker drops the attempt and goes on.
    path, url = write_study(tmp_path, "stalled"), f"sqlite:///{tmp_path / 'studies.db'}"
    plan_only(path, url, tmp_path)
    failed: list[int] = []

    def fail_it_elsewhere() -> None:
        if not failed:  # the first run only: the other machine's stale check fails it
            other = optuna.load_study(study_name="stalled-smoke", storage=storage_of(url))
            (running,) = other.get_trials(states=(TrialState.RUNNING,))
            other.tell(running.number, state=TrialState.FAIL)
            failed.append(running.number)

    if when == "as it starts":  # its next attr write finds the trial failed
        real_train = archlab.train.trainer.train

        def train(*args: Any, **kwargs: Any) -> Any:
            fail_it_elsewhere()
            return real_train(*args, **kwargs)

        monkeypatch.setattr(archlab.train.trainer, "train", train)
    else:  # every attr written: the final tell finds it failed
        real_train_trial = archlab.study.compare.train_trial

        def train_trial(trial: optuna.Trial) -> Any:
            result = real_train_trial(trial)
            fail_it_elsewhere()
            return result

        monkeypatch.setattr(archlab.study.compare, "train_trial", train_trial)
    dirs = {"storage": url, "results_dir": tmp_path / "results", "render": False}
    outcome = run_study(path, scale="smoke", **dirs)
    err = capsys.readouterr().err
    assert f"trial {failed[0]} was failed as stale by another worker" in err, err
    assert (outcome.counts["done"], outcome.counts["failed"]) == (1, 1)  # it went on to the next
    assert trials(url, "stalled-smoke")[failed[0]].state == TrialState.FAIL
    assert run_study(path, scale="smoke", **dirs).ok  # the next pass runs it, once
    assert_each_once(trials(url, "stalled-smoke"), planned_keys(path))
