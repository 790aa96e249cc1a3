"""The study engine: optuna trials, resume, dedup across workers, status, tables, reports."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import archlab.train.trainer
from archlab.arch.spec import ArchSpec
from archlab.cli import main
from archlab.parallel import run_workers, usable_cores
from archlab.report.principles import evidence_of
from archlab.study.compare import enqueue, work
from archlab.study.engine import PRINCIPLE_STUDIES, run_study, study_report, study_status
from archlab.study.errors import StudyFileError
from archlab.study.optuna_compat import claim_waiting_trial
from archlab.study.plan import plan_cells, resolve_scale, run_key
from archlab.study.storage import connect, mask_url, open_storage
from archlab.study.studyfile import load_study
from archlab.study.tables import CURVE_COLUMNS, RUN_COLUMNS
from archlab.study.trials import cell_attrs
from archlab.train.config import TrainConfig

EVIDENCE = ("agrees", "disagrees", "inconclusive", "equivalent", "smaller than claimed")
STUDIES = sorted(Path(__file__).resolve().parents[1].joinpath("studies").glob("*.yaml"))
TINY = """
name: tiny
claims: [conv5x5_cost]
variants:
  one_factor:
    - {conv5x5: 5x5}
scales:
  smoke: {seeds: 2}
"""


def tiny(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"results_dir": tmp_path / "results", "reports_dir": tmp_path / "reports"}


def trials_of(tmp_path: Path, name: str = "tiny-smoke") -> list[optuna.trial.FrozenTrial]:
    url = str(tmp_path / "results" / "tiny" / "journal.log")
    return optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()


class CountingTrain:
    """Stands in for the trainer's train: records each run's key, can interrupt after N runs."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.keys, self.stop_after = real, [], None

    def __call__(self, spec: ArchSpec, config: TrainConfig, **kw: Any) -> Any:
        if self.stop_after is not None and len(self.keys) >= self.stop_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during this run
        self.keys.append(run_key(kw["model"], spec, config, "smoke"))
        return self.real(spec, config, **kw)


@pytest.fixture
def counting_train(monkeypatch: pytest.MonkeyPatch) -> CountingTrain:
    counter = CountingTrain(archlab.train.trainer.train)
    monkeypatch.setattr(archlab.train.trainer, "train", counter)
    return counter


def test_interrupted_study_resumes_without_recomputing(
    tmp_path: Path, counting_train: CountingTrain
) -> None:
    path = tiny(tmp_path)
    counting_train.stop_after = 2
    with pytest.raises(KeyboardInterrupt):
        run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    first = list(counting_train.keys)
    assert len(first) == 2
    status = study_status("tiny", results_dir=tmp_path / "results")["smoke"]
    assert status == {
        "total": 4,
        "done": 2,
        "diverged": 0,
        "running": 0,
        "waiting": 1,
        "failed": 1,  # the interrupted run: failed now, retried next time
        "remaining": 2,
    }
    done_before = {t.number for t in trials_of(tmp_path) if t.state == TrialState.COMPLETE}

    counting_train.keys.clear()
    counting_train.stop_after = None
    outcome = run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    assert outcome.ok and outcome.counts["done"] == 4
    assert len(counting_train.keys) == 2 and not set(counting_train.keys) & set(first)
    trials = trials_of(tmp_path)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert done_before <= {t.number for t in complete}  # earlier results kept, not redone
    assert len({t.user_attrs["key"] for t in complete}) == len(complete) == 4

    runs = pd.read_csv(tmp_path / "results" / "tiny" / "runs.csv")
    assert list(runs.columns) == RUN_COLUMNS and len(runs) == 4
    assert not runs.duplicated(["variant", "seed"]).any()
    assert set(runs["status"]) == {"complete"} and runs["run_key"].is_unique
    assert runs["test_top1"].notna().all() and (runs["macs"] > 0).all()
    curves = pd.read_csv(tmp_path / "results" / "tiny" / "curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS and set(curves["run_key"]) == set(runs["run_key"])

    counting_train.keys.clear()
    run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    assert counting_train.keys == []  # a finished study trains nothing


def test_killed_worker_leaves_a_stale_trial_that_is_rerun(tmp_path: Path) -> None:
    path = tiny(tmp_path, TINY.replace("seeds: 2", "seeds: 1"))
    cmd = [sys.executable, "-m", "archlab.cli", "study", "run", str(path), "--scale", "smoke"]
    cmd += ["--no-report", "--results", str(tmp_path / "results")]
    env = {**os.environ, "ARCHLAB_TEST_PAUSE": "train:60"}  # hold the first run mid-training
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if b"test pause at train" in line:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no chance to mark its trial failed
        proc.wait()
    killed = [t for t in trials_of(tmp_path) if t.state == TrialState.RUNNING]
    assert len(killed) == 1 and killed[0].user_attrs["owner"]["pid"] == proc.pid

    outcome = run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    assert outcome.ok
    trials = {t.number: t for t in trials_of(tmp_path)}
    assert trials[killed[0].number].state == TrialState.FAIL
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    keys = sorted(c.key for c in plan_cells(load_study(path), "smoke"))
    assert sorted(t.user_attrs["key"] for t in complete) == keys


def test_optuna_still_has_the_private_pop_we_use() -> None:
    # optuna_compat.claim_waiting_trial calls optuna's private Study._pop_waiting_trial_id (no
    # public call claims only an enqueued trial): this fails first if optuna changes it.
    pop = getattr(optuna.Study, "_pop_waiting_trial_id", None)
    assert callable(pop), "optuna removed Study._pop_waiting_trial_id: see study/optuna_compat.py"
    assert list(inspect.signature(pop).parameters) == ["self"]
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.enqueue_trial({}, user_attrs={"key": "a"})
    study.enqueue_trial({}, user_attrs={"key": "b"})
    claimed = [claim_waiting_trial(study), claim_waiting_trial(study)]
    assert [t.user_attrs["key"] for t in claimed if t is not None] == ["a", "b"]
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 2
    assert claim_waiting_trial(study) is None  # an empty queue: nothing claimed ...
    assert len(study.get_trials()) == 2  # ... and, unlike Study.ask(), no trial created


@pytest.mark.skipif(len(usable_cores()) < 2, reason="needs 2 cores")
def test_two_workers_share_one_queue_without_duplicate_runs(tmp_path: Path) -> None:
    cells = plan_cells(load_study(tiny(tmp_path)), "smoke")
    url, name = str(tmp_path / "journal.log"), "tiny-smoke"
    study, _ = connect(url, name, directions=["maximize"])
    assert len(enqueue(study, cells)) == 4
    assert enqueue(study, cells) == [c.key for c in cells]  # a second plan enqueues nothing
    for c in cells:  # ... but two machines planning at the same instant can both enqueue
        study.enqueue_trial({}, user_attrs=cell_attrs(c.model, c.spec, c.config, "smoke", "x"))

    assert run_workers(2, work, {"url": url, "study_name": name}) == [0, 0]
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert sorted(t.user_attrs["key"] for t in complete) == sorted(c.key for c in cells)
    assert len(pruned) == 4 and all("duplicate_of" in t.user_attrs for t in pruned)
    assert len(trials) == 8


def test_rdb_storage_runs_and_password_never_shows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    path = tiny(tmp_path, TINY.replace("seeds: 2", "seeds: 1"))
    outcome = run_study(path, scale="smoke", storage=url, render=False, **dirs(tmp_path))
    assert outcome.ok and outcome.total == 2
    assert study_status("tiny", storage=url)["smoke"]["done"] == 2

    secret = "postgresql://alice:hunter2@127.0.0.1:1/archlab"
    assert mask_url(secret) == "postgresql://alice:***@127.0.0.1:1/archlab"
    with pytest.raises(StudyFileError) as err:
        open_storage(secret)
    assert "hunter2" not in str(err.value) and "alice:***@" in str(err.value)


def test_tuned_recipe_values_are_used_and_recorded(tmp_path: Path) -> None:
    # 100 validation images: all ten classes, so a working score is never 0 by bad luck
    scale = 'seeds: 1, dataset: "synthetic:200", val_size: 100'
    path = tiny(tmp_path, TINY.replace("seeds: 2", scale))
    run_study(path, scale="smoke", tune=["lr"], tune_trials=2, render=False, **dirs(tmp_path))
    runs = pd.read_csv(tmp_path / "results" / "tiny" / "runs.csv")
    url = str(tmp_path / "results" / "tiny" / "journal.log")
    for variant, lr in zip(runs["variant"], runs["lr"], strict=True):
        tuned = optuna.load_study(
            study_name=f"tiny-smoke-tune-{variant}", storage=open_storage(url)
        )
        assert lr == pytest.approx(tuned.best_params["lr"])
        done = tuned.get_trials(states=(TrialState.COMPLETE,))
        assert len(done) >= 2
        # each trial's score is its own validation top-1 (a diverged or failed run scores 0)
        for t in done:
            result = t.user_attrs["result"]
            assert result["status"] == "complete", result["error"]
            assert t.user_attrs["recipe"]["val_size"] == 100
            assert t.value == pytest.approx(result["final"]["val_top1"])
        best = tuned.best_trial
        assert 0 < best.value <= 100
        assert best.value == max(t.value for t in done)


def test_status_and_report_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tiny(tmp_path, TINY.replace("seeds: 2", "seeds: 1"))
    results, reports = str(tmp_path / "results"), str(tmp_path / "reports")
    assert main(["study", "run", str(path), "--scale", "smoke", "--results", results,
                 "--reports", reports]) == 0  # fmt: skip
    assert "tiny [smoke]: 2/2 runs done" in capsys.readouterr().out
    assert main(["study", "status", str(path), "--results", results]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "scale", "total", "done", "diverged", "running", "waiting", "failed", "remaining"
    ]  # fmt: skip
    assert lines[1].split() == ["smoke", "2", "2", "0", "0", "0", "0", "0"]
    (tmp_path / "reports" / "tiny" / "report.md").unlink()
    files = study_report("tiny", results_dir=results, reports_dir=reports)
    assert files["report.md"].exists() and files["report.html"].exists()
    assert main(["study", "status", "nope", "--results", results]) == 2


# --- every study file, at the smoke scale -------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dirs(tmp_path_factory.mktemp("smoke"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_study_file_runs_at_smoke_scale(path: Path, smoke_dirs: dict[str, Path]) -> None:
    outcome = run_study(path, scale="smoke", **smoke_dirs)
    assert outcome.ok, outcome
    runs = pd.read_csv(outcome.files["runs.csv"])
    # ok counts a diverged run as finished; no smoke recipe is meant to diverge, so every run
    # must have trained and scored (a study whose runs all diverged would pass `ok`)
    assert len(runs) == outcome.total and outcome.counts.get("diverged", 0) == 0
    bad = runs[runs["status"] != "complete"]
    assert bad.empty, bad[["variant", "status", "error"]].to_string()
    assert runs["test_top1"].between(0, 100).all(), runs["test_top1"]
    assert (runs["variant"] == "baseline").sum() == runs["seed"].nunique()
    assert outcome.files["report.html"].exists()
    kind = load_study(path).kind
    if kind == "principle1":
        assert runs["min_repr"].between(0, 1, inclusive="right").all()
    if kind in ("principle2", "principle4"):
        assert len(pd.read_csv(outcome.files["curves.csv"])) >= len(runs)


def test_two_search_workers_stop_at_the_trial_budget(tmp_path: Path, capsys: Any) -> None:
    # A trial still running in one worker when the other reaches the budget must count,
    # or the search measures more trials than asked (it did: 21 of 20).
    path = Path(__file__).resolve().parents[1] / "studies" / "search.yaml"
    outcome = run_study(path, scale="smoke", jobs=2, **dirs(tmp_path))
    assert outcome.ok, outcome
    trials = resolve_scale(load_study(path), "smoke")["trials"]
    # the progress reaches its total: the baseline, queued before the workers start, counts
    assert f"search [smoke]: {trials}/{trials} runs" in capsys.readouterr().err
    url = str(tmp_path / "results" / "search" / "journal.log")
    study = optuna.load_study(study_name="search-smoke", storage=open_storage(url))
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == trials


def test_a_finished_search_with_a_reused_trial_has_nothing_left(tmp_path: Path) -> None:
    """A trial the sampler proposed twice reuses its run yet counts against the trial budget."""
    from archlab.study.storage import study_name

    url = str(tmp_path / "search" / "journal.log")
    study, _ = connect(url, study_name("search", "quick"), directions=["maximize", "minimize"])
    study.set_user_attr("meta", {"study": "search", "scale": "quick", "trials": 2})
    attrs = cell_attrs("inception_mini", ArchSpec(), TrainConfig(), "quick", "baseline")
    for extra in ({}, {"reused_from": 0}):
        trial = study.ask()
        for k, v in {**attrs, **extra}.items():
            trial.set_user_attr(k, v)
        study.tell(trial, [90.0, 1.0])
    counts = study_status("search", results_dir=tmp_path)["quick"]
    assert (counts["total"], counts["done"], counts["remaining"]) == (2, 2, 0)


def test_principles_page_gathers_the_principle_studies(smoke_dirs: dict[str, Path]) -> None:
    studies = Path(__file__).resolve().parents[1] / "studies"
    for name in PRINCIPLE_STUDIES:  # run by the smoke tests above; here when this test runs alone
        if not (smoke_dirs["results_dir"] / name / "journal.log").exists():
            assert run_study(studies / f"{name}.yaml", scale="smoke", render=False, **smoke_dirs).ok
    files = study_report(
        "principles",
        scale="smoke",
        results_dir=smoke_dirs["results_dir"],
        reports_dir=smoke_dirs["reports_dir"],
    )
    text = files["report.md"].read_text()
    found = [s for s in text.split("\n## ") if s.startswith("Princ")]
    literal = [s for s in found if "as worded" in s.splitlines()[0]]  # principle4-literal's rows
    assert len(literal) == 1
    assert evidence_of(literal[0].split("Verdict: ", 1)[1].splitlines()[0]) in EVIDENCE
    sections = {int(s[len("Principle ")]): s for s in found if s not in literal}
    assert sorted(sections) == [1, 2, 3, 4]
    for n, section in sections.items():
        # every principle has stored runs: its verdict must come from them, never "not run"
        verdict = next(line for line in section.splitlines() if line.startswith("Verdict: "))
        assert "not run" not in verdict, f"principle {n} has runs but shows: {verdict}"
        assert evidence_of(verdict[len("Verdict: ") :]) in EVIDENCE, verdict
        assert f"principle{n}.png" in section  # its plot, drawn from the runs


def test_runs_stored_before_a_field_existed_read_as_its_default() -> None:
    """A run whose spec/recipe predate squeeze_*, upsample, split_seed, swa_start reads as one
    with their defaults."""
    from archlab.study.tables import collect

    study = optuna.create_study()
    study.set_user_attr("meta", {"study": "old-and-new"})
    new = cell_attrs("inception_mini", ArchSpec(), TrainConfig(), "quick", "baseline")
    old = {
        **new,
        "spec": {k: v for k, v in new["spec"].items() if not k.startswith(("squeeze", "stem_s"))},
        "recipe": {
            k: v
            for k, v in new["recipe"].items()
            if k not in ("upsample", "split_seed", "swa_start")
        },
    }
    for attrs in (old, new):
        trial = study.ask()
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        study.tell(trial, 0.0)
    runs, _, _ = collect(study)
    added = ["squeeze_at", "squeeze_ratio", "stem_stride", "upsample", "split_seed", "swa_start"]
    assert runs[added].iloc[0].equals(runs[added].iloc[1]), runs[added]
    assert runs.loc[0, "squeeze_at"] == "none" and runs.loc[0, "squeeze_ratio"] == 1.0
