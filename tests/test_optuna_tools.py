"""optuna's own tools read a study's storage: optuna.load_study and optuna-dashboard.

A tiny study is stored for real (``run_study``: plan, enqueue, claim, tell) with the trainer
faked, in a journal file (the default storage) and, where a server starts, in PostgreSQL. Then
plain optuna loads it and optuna-dashboard serves it (its WSGI app, and its command line on the
journal path the README gives); every finished run must name its cell, its seed and its metrics.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import optuna_dashboard
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

import archlab.train.trainer
from archlab.arch.spec import ArchSpec
from archlab.study.engine import run_study
from archlab.train.config import RunResult, TrainConfig

# a baseline, one variant and a group with its own baseline, on 2 seeds: 4 cells x 2 seeds
STUDY = """
name: {name}
claims: [conv5x5_acc]
variants:
  one_factor:
    - {{conv5x5: 5x5}}
groups:
  n3:
    description: n = 3
    base: {{n: 3, conv_nxn: nxn}}
    variants:
      one_factor:
        - {{conv_nxn: 1xn_nx1}}
scales:
  smoke: {{seeds: 2, dataset: "synthetic:64", val_size: 0, batch_size: 32}}
"""
METRICS = ("test_top1", "test_top5", "test_nll", "test_ece", "images_per_s", "train_time_s")


def fake_train(spec: ArchSpec, config: TrainConfig, **kw: Any) -> RunResult:
    """A result at once, distinct per cell and seed; one epoch reported as the curve."""
    top1 = 80.0 + config.seed + (1.5 if spec.conv5x5 == "5x5" else 0.0) + spec.n / 10
    kw["on_epoch"]({"epoch": 1.0, "test_top1": top1})
    final = {
        "test_top1": top1,
        "test_top5": 99.0,
        "test_nll": 0.5,
        "test_ece": 0.02,
        "images_per_s": 300.0,
        "train_time_s": 1.0,
        "aux_top1": float("nan"),  # not finite: stays in result only
        "reliability": {"bin_conf": [0.5], "bin_acc": [0.5], "bin_count": [1]},  # not a scalar
    }
    history = [{"epoch": 1.0, "test_top1": top1}]
    return RunResult(
        "complete", spec.to_dict(), config.to_dict(), kw["model"], final, history,
        macs=40_000_000 + 1000 * spec.n, params=285_430, wall_time_s=1.0,
    )  # fmt: skip


def store(tmp_path: Path, name: str, storage: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the tiny study ``name`` into ``storage`` (None: its journal file) with the fake."""
    monkeypatch.setattr(archlab.train.trainer, "train", fake_train)
    path = tmp_path / f"{name}.yaml"
    path.write_text(STUDY.format(name=name))
    run_study(
        path, scale="smoke", storage=storage, render=False,
        results_dir=tmp_path / "results", reports_dir=tmp_path / "reports",
    )  # fmt: skip


def check_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every finished trial names its cell (label; group via the plan), seed and metrics."""
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 8  # 4 cells x 2 seeds
    cells = {c["key"]: c for c in study.user_attrs["plan"]}
    seen = set()
    for t in done:
        a = t.user_attrs
        cell = cells[a["key"]]
        assert a["label"] == cell["variant"] and isinstance(a["seed"], int)
        seen.add((cell["group"], cell["variant"], a["seed"]))
        final = a["result"]["final"]
        for m in METRICS:
            assert a[m] == final[m]
        assert t.value == a["test_top1"] and t.intermediate_values == {1: a["test_top1"]}
        assert a["status"] == "complete" and a["macs"] > 0 and a["params"] == 285_430
        assert "aux_top1" not in a and "reliability" not in a  # NaN and nested stay in result
    assert seen == {
        (g, v, s)
        for g, v in (
            ("", "baseline"),
            ("", "conv5x5=5x5"),
            ("n3", "conv_nxn=nxn,n=3"),
            ("n3", "n=3"),
        )
        for s in (0, 1)
    }
    return done


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # no request lines on stderr
        pass


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        return json.load(r)


@pytest.fixture
def dashboard() -> Iterator[Any]:
    """Serve optuna-dashboard's WSGI app for a storage on a free port: start(storage) -> URL."""
    servers = []

    def start(storage: str) -> str:
        server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage), handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def check_dashboard(base: str, study_name: str, trials: list[FrozenTrial]) -> None:
    """The study list and the study's detail show every trial with its attrs and values."""
    studies = get_json(f"{base}/api/studies")["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == study_name]
    assert {a["key"] for a in summary["user_attrs"]} >= {"meta", "plan"}
    detail = get_json(f"{base}/api/studies/{summary['study_id']}")
    assert detail["name"] == study_name and detail["has_intermediate_values"]
    shown = {t["number"]: t for t in detail["trials"]}
    for t in trials:
        row = shown[t.number]
        assert row["state"] == "Complete" and row["values"] == [t.value]
        attrs = {a["key"]: a["value"] for a in row["user_attrs"]}
        assert attrs["label"] == t.user_attrs["label"]
        assert attrs["seed"] == str(t.user_attrs["seed"])
        for m in ("test_top1", "test_nll", "macs", "params"):
            assert float(attrs[m]) == t.user_attrs[m]
    columns = {c["key"]: c["sortable"] for c in detail["union_user_attrs"]}
    assert all(columns[m] for m in ("seed", "test_top1", "test_nll", "macs", "params"))


def test_journal_study_loads_in_optuna_and_optuna_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dashboard: Any
) -> None:
    store(tmp_path, "dash", None, monkeypatch)
    journal = tmp_path / "results" / "dash" / "journal.log"
    storage = JournalStorage(JournalFileBackend(str(journal)))  # plain optuna, no archlab code
    trials = check_trials(optuna.load_study(study_name="dash-smoke", storage=storage))
    before = journal.read_bytes()
    # the dashboard opens the path itself, as `optuna-dashboard results/NAME/journal.log` does
    check_dashboard(dashboard(str(journal)), "dash-smoke", trials)
    assert journal.read_bytes() == before  # browsing writes nothing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_command_serves_a_journal_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's command: `optuna-dashboard results/NAME/journal.log` (no URL, no flag)."""
    store(tmp_path, "dashcli", None, monkeypatch)
    journal = tmp_path / "results" / "dashcli" / "journal.log"
    command = Path(sys.executable).with_name("optuna-dashboard")
    port = _free_port()
    proc = subprocess.Popen(
        [str(command), str(journal), "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "optuna-dashboard did not answer in 60 s"
                time.sleep(0.2)
        assert [s["study_name"] for s in studies] == ["dashcli-smoke"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_postgres_study_loads_in_optuna_and_optuna_dashboard(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dashboard: Any
) -> None:
    store(tmp_path, "pgdash", postgres_url, monkeypatch)
    storage = optuna.storages.RDBStorage(postgres_url)
    trials = check_trials(optuna.load_study(study_name="pgdash-smoke", storage=storage))
    check_dashboard(dashboard(postgres_url), "pgdash-smoke", trials)
