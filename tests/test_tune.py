"""A study file's ``tune_grid``: every variant tries each grid point on validation, then runs at
its best (archlab.study.tune)."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from archlab.study.optuna_compat import claim_waiting_trial
from archlab.study.storage import connect
from archlab.study.tune import TuneTask, enqueue_grid
from tests.studykit import run_cli, trials

GRID_STUDY = """\
name: grid
variants:
  one_factor:
    - {conv5x5: 5x5}
base: {width_mult: 0.25, depth_mult: 0.5}
scales:
  smoke:
    seeds: 2
    dataset: "synthetic:64"
    batch_size: 32
    val_size: 0
    threads: 1
    tune_grid: {lr: [0.01, 0.3]}
"""


def test_each_variant_tries_every_grid_point_and_runs_at_its_best(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID_STUDY)
    url = str(tmp_path / "journal.log")
    code, _, err = run_cli(
        ["study", "run", str(path), "--scale", "smoke", "--storage", url, "--no-report"]
        + ["--results", str(tmp_path), "--jobs", "2"]  # two workers never take one point twice
    )
    assert code == 0, err
    assert "grid lr in [0.01, 0.3]" in err
    assert "grid [smoke] tuning: 4/4 runs" in err  # the tuning runs' progress is shown
    best = {}
    for variant in ("baseline", "conv5x5=5x5"):
        tuned = [t for t in trials(url, f"grid-smoke-tune-{variant}")]
        assert sorted(t.params["lr"] for t in tuned) == [0.01, 0.3]  # each point once
        assert all(t.state == TrialState.COMPLETE for t in tuned)
        assert all(t.user_attrs["recipe"]["val_size"] > 0 for t in tuned)  # scored on validation
        top = max(tuned, key=lambda t: t.value)
        best[variant] = top.params["lr"]
    runs = [t for t in trials(url, "grid-smoke") if t.state == TrialState.COMPLETE]
    assert len(runs) == 4
    for t in runs:
        assert t.user_attrs["recipe"]["lr"] == best[t.user_attrs["label"]]
        assert t.user_attrs["recipe"]["val_size"] == 0  # the study's own runs: no split carved
    # resumed: nothing is tuned or trained again
    code, _, err = run_cli(
        ["study", "run", str(path), "--scale", "smoke", "--storage", url, "--no-report"]
        + ["--results", str(tmp_path)]
    )
    assert code == 0, err
    assert "tuning: " not in err  # every point was tuned already: no tuning run is started
    assert len(trials(url, "grid-smoke")) == 4
    assert len(trials(url, "grid-smoke-tune-baseline")) == 2


def test_enqueue_grid_queues_only_the_points_no_trial_holds(tmp_path: Path) -> None:
    task = TuneTask(
        "t-smoke-tune-baseline", "baseline", "inception_mini", {}, {}, ("lr",), 3, "smoke",
        (("lr", (0.05, 0.1, 0.2)),),
    )  # fmt: skip
    url = str(tmp_path / "journal.log")
    assert enqueue_grid(url, task) == 3
    assert enqueue_grid(url, task) == 0  # queued already
    study, _ = connect(url, task.study_name)
    first = claim_waiting_trial(study)
    assert first is not None
    study.tell(first, state=TrialState.FAIL)
    assert enqueue_grid(url, task) == 1  # a failed point is queued again
    queued = [t.system_attrs["fixed_params"]["lr"] for t in study.get_trials()]
    assert sorted(queued) == [0.05, 0.05, 0.1, 0.2]
