"""Many machines on one PostgreSQL study: every run once, killed workers rerun, status anywhere."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.pgserver import PASSWORD
from tests.studykit import (
    CONV5,
    DIVERGE,
    Proc,
    assert_each_once,
    check_dead_foreign_run_is_rerun_once,
    check_live_foreign_run_is_left_alone,
    check_runs_csv,
    planned_keys,
    run_cli,
    short_heartbeat,
    trials,
    write_study,
)


def _machine(path: Path, url: str, root: Path, *extra: str) -> list[str]:
    """`study run` as one machine runs it: the shared storage, its own results and reports."""
    dirs = ["--results", str(root / "results"), "--reports", str(root / "reports")]
    return ["study", "run", str(path), "--scale", "smoke", "--storage", url, *dirs, *extra]


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(f":{PASSWORD}@", "@")).geturl()


def test_two_machines_on_postgres_finish_every_run_once(postgres_url: str, tmp_path: Path) -> None:
    path = write_study(tmp_path, "pgduo", variants=(CONV5, DIVERGE), seeds=2)
    keys = planned_keys(path)
    # a second's pause as each run starts: both machines get to work before the queue is empty
    procs = [
        Proc(
            _machine(path, postgres_url, tmp_path / m, "--no-report"), ARCHLAB_TEST_PAUSE="train:1"
        )
        for m in ("a", "b")
    ]
    ends = [p.finish() for p in procs]
    for rc, _, err in ends:  # 1: this machine is done, the other one still runs
        assert rc in (0, 1) and "Traceback" not in err, err
    ts = trials(postgres_url, "pgduo-smoke")
    assert_each_once(ts, keys)
    extra = [t for t in ts if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.PRUNED and "duplicate_of" in t.user_attrs for t in extra)
    # both machines trained: the queue was shared, not run twice over
    owners = {t.user_attrs["owner"]["pid"] for t in ts if t.state == TrialState.COMPLETE}
    assert len(owners) == 2

    # a third machine watches and reports, its password from PGPASSWORD rather than the URL
    bare = _without_password(postgres_url)
    assert PASSWORD not in bare
    rc, out, err = run_cli(["study", "status", str(path), "--storage", bare], PGPASSWORD=PASSWORD)
    assert rc == 0, err
    assert out.splitlines()[1].split() == ["smoke", "6", "6", "2", "0", "0", "0", "0"]
    rc, out, err = run_cli(
        ["study", "report", str(path), "--storage", bare, "--results",
         str(tmp_path / "c" / "results"), "--reports", str(tmp_path / "c" / "reports")],
        PGPASSWORD=PASSWORD,
    )  # fmt: skip
    assert rc == 0, err
    runs = check_runs_csv(tmp_path / "c/results/pgduo/runs.csv", keys, complete=True)
    assert (runs["status"] == "diverged").sum() == 2
    assert (tmp_path / "c/reports/pgduo/report.html").exists()


def test_killed_machine_on_postgres_is_rerun(postgres_url: str, tmp_path: Path) -> None:
    path = write_study(tmp_path, "pgkill")
    keys = planned_keys(path)
    proc = Proc(
        _machine(path, postgres_url, tmp_path, "--no-report"), ARCHLAB_TEST_PAUSE="train:120"
    )
    assert proc.wait_line("test pause at train") and proc.kill()
    proc.finish()
    (running,) = [t for t in trials(postgres_url, "pgkill-smoke") if t.state == TrialState.RUNNING]

    rc, out, err = run_cli(_machine(path, postgres_url, tmp_path, "--no-report"))
    assert rc == 0 and "2/2 runs done" in out, err
    ts = trials(postgres_url, "pgkill-smoke")
    assert ts[running.number].state == TrialState.FAIL
    assert_each_once(ts, keys)


def test_run_of_a_dead_machine_fails_by_its_old_heartbeat_and_reruns_once_on_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_heartbeat(monkeypatch)
    check_dead_foreign_run_is_rerun_once(postgres_url, tmp_path, "pggone")


def test_run_of_a_live_machine_with_a_fresh_heartbeat_is_left_alone_on_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_heartbeat(monkeypatch)
    check_live_foreign_run_is_left_alone(postgres_url, tmp_path, "pgalive")
