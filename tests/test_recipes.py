"""``archlab recipes``: presets over seeds, stored once, reported with mean and 95% CI."""

import json
from pathlib import Path

import pandas as pd
import pytest

from archlab import recipes
from archlab.analysis.stats import mean_ci
from archlab.parallel import usable_cores
from archlab.recipes import (
    RecipeError,
    load_run,
    pending,
    recipe_spec,
    result_path,
    run_recipes,
)
from archlab.report.plots import PNG_SIGNATURE
from tests.studykit import run_main

# Tiny synthetic runs: the machinery, not the accuracy, is under test here.
SYN = {"dataset": "synthetic", "train_subset": 128, "epochs": 0.25}


def fake_run(name: str, seed: int, top1: float, wall: float = 50.0) -> dict:
    """A stored RunResult of preset ``name`` as shipped, with a chosen test top-1."""
    return {
        "status": "complete",
        "model": "inception_mini",
        "spec": recipe_spec().to_dict(),
        "config": recipes.recipe_config(name, seed).to_dict(),
        "final": {"test_top1": top1, "test_top5": 99.0, "test_nll": 0.3, "test_ece": 0.01},
        "history": [],
        "macs": 1,
        "params": 1,
        "wall_time_s": wall,
    }


def store(folder: Path, name: str, seed: int, run: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = result_path(folder, name, seed)
    path.write_text(json.dumps(run))
    return path


def test_runs_missing_seeds_once_and_resumes(tmp_path: Path) -> None:
    res = tmp_path / "r"
    ran = run_recipes(["quick"], 2, res, overrides=SYN, progress=False)
    assert [(t.preset, t.seed) for t in ran] == [("quick", 0), ("quick", 1)]
    stamps = {p.name: p.stat().st_mtime_ns for p in res.iterdir()}
    assert sorted(stamps) == ["quick-seed0.json", "quick-seed1.json"]
    # a third seed: only it is trained; the stored two are untouched
    ran = run_recipes(["quick"], 3, res, overrides=SYN, progress=False)
    assert [(t.preset, t.seed) for t in ran] == [("quick", 2)]
    for name, stamp in stamps.items():
        assert (res / name).stat().st_mtime_ns == stamp
    assert run_recipes(["quick"], 3, res, overrides=SYN, progress=False) == []
    run = load_run(result_path(res, "quick", 1), "quick", 1, SYN)
    assert run is not None and run["config"]["seed"] == 1 and run["run_context"]["jobs"] == 1
    assert {"cpu_model", "cpu_flags", "usable_cores", "torch"} <= set(run["run_context"]["machine"])


def test_two_pinned_workers_share_the_queue(tmp_path: Path) -> None:
    ran = run_recipes(["quick", "full"], 1, tmp_path, jobs=2, overrides=SYN, progress=False)
    assert len(ran) == 2
    jobs = min(2, len(usable_cores()))  # capped on a one-core machine
    for t in ran:
        run = load_run(result_path(tmp_path, t.preset, t.seed), t.preset, t.seed, SYN)
        assert run is not None and run["run_context"]["jobs"] == jobs
        if jobs == 2:
            assert len(run["run_context"]["cores"]) == 1  # pinned to one core of the two


def test_longest_recipe_is_queued_first(tmp_path: Path) -> None:
    todo = pending(["quick", "full"], 2, tmp_path)
    assert [t.preset for t in todo] == ["full", "full", "quick", "quick"]


def test_failed_runs_are_measured_again_diverged_ones_are_results(tmp_path: Path) -> None:
    store(tmp_path, "quick", 0, {**fake_run("quick", 0, 80.0), "status": "failed"})
    diverged = {**fake_run("quick", 1, 0.0), "status": "diverged", "final": {}}
    store(tmp_path, "quick", 1, diverged)
    store(tmp_path, "quick", 2, fake_run("quick", 2, 87.0))
    assert [(t.preset, t.seed) for t in pending(["quick"], 3, tmp_path)] == [("quick", 0)]
    md = recipes.render(["quick"], 3, tmp_path, tmp_path / "o")["report.md"].read_text()
    assert "| quick | 1/3 (1 diverged) | 87.00 (1 run, no CI) |" in md


def test_a_run_of_another_recipe_is_refused(tmp_path: Path) -> None:
    path = store(tmp_path, "full", 0, fake_run("quick", 0, 87.0))  # quick's run under full's name
    with pytest.raises(RecipeError) as e:
        load_run(path, "full", 0)
    assert str(e.value).startswith(f"{path}: config.") and "'full'" in str(e.value)
    store(tmp_path, "quick", 1, fake_run("quick", 0, 87.0))  # seed 0's run under seed 1's name
    with pytest.raises(RecipeError, match="config.seed is 0"):
        load_run(result_path(tmp_path, "quick", 1), "quick", 1)


def test_report_gives_mean_ci_and_target_verdicts(tmp_path: Path) -> None:
    res, out = tmp_path / "r", tmp_path / "o"
    quick, full = [85.0, 87.0, 88.0], [92.0, 92.2, 92.4]
    for s in range(3):
        store(res, "quick", s, fake_run("quick", s, quick[s], wall=55.0 + s))
        store(res, "full", s, fake_run("full", s, full[s], wall=1800.0))
    paths = recipes.render(["quick", "full"], 3, res, out)
    md = paths["report.md"].read_text()
    m, lo, hi = mean_ci(quick)
    assert f"| quick | 3/3 | {m:.2f} [{lo:.2f}, {hi:.2f}] | ≥ 86 %: met (CI straddles it) |" in md
    assert "| full | 3/3 | 92.20 [" in md and "≥ 92.5 %: missed" in md
    assert "≤ 60 s: met (whole CI)" in md  # 55, 56, 57 s
    csv = pd.read_csv(paths["runs.csv"])
    assert list(csv["test_top1"]) == quick + full
    assert "<script" not in paths["report.html"].read_text()


def test_report_plots_learning_curves_from_histories(tmp_path: Path) -> None:
    for s in range(2):
        run = fake_run("full", s, 93.0)
        run["history"] = [
            {"epoch": e, "train_top1": 80.0 + e, "test_top1": 79.0 + e + s} for e in (1, 2, 3)
        ]
        store(tmp_path / "r", "full", s, run)
    paths = recipes.render(["full"], 2, tmp_path / "r", tmp_path / "o")
    assert paths["report.md"].read_text().count("](curves.png)") == 1
    assert (tmp_path / "o" / "curves.png").read_bytes().startswith(PNG_SIGNATURE)
    curve = pd.read_csv(paths["curves.csv"])
    assert len(curve) == 6 and list(curve[curve["seed"] == 1]["test_top1"]) == [81.0, 82.0, 83.0]


def test_report_counts_missing_seeds(tmp_path: Path) -> None:
    store(tmp_path, "quick", 0, fake_run("quick", 0, 86.5))
    md = recipes.render(["quick", "full"], 3, tmp_path, tmp_path / "o")["report.md"].read_text()
    assert "| quick | 1/3 | 86.50 (1 run, no CI) |" in md
    assert "| full | 0/3 | n/a | ≥ 92.5 %: not measured |" in md
    assert "curves.png" not in md  # one epoch is a point, not a curve


def test_cli_runs_and_reports_with_overrides_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--results", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--quiet"]
    sets = [f"--recipe={k}={v}" for k, v in SYN.items()]
    rc, out, err = run_main(capsys, "recipes", "--preset", "quick", "--seeds", "2", *sets, *args)
    assert rc == 0, err
    assert "trained 2 run(s)" in out
    md = (tmp_path / "o" / "report.md").read_text()
    assert "Recipe overrides:" in md and "| quick | 2/2 |" in md
    assert "| n/a |" in md  # no target verdict on an overridden recipe
    rc, out, _ = run_main(capsys, "recipes", "--preset", "quick", "--seeds", "2", *sets, *args)
    assert rc == 0 and "trained 0 run(s)" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--preset", "nope"], "--preset 'nope': unknown recipe; valid: quick, study, study-"),
        (["--seeds", "0"], "--seeds 0: need at least 1"),
        (["--jobs", "0"], "--jobs 0: need at least 1"),
        (["--recipe", "lr=abc"], "lr"),
        (["--recipe", "nokey=1"], "unknown recipe key 'nokey'"),
        (["--recipe", "lr=-1"], "lr"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    out_dir = tmp_path / "o"
    rc, out, err = run_main(
        capsys, "recipes", *argv, "--results", str(tmp_path / "r"), "--out", str(out_dir)
    )
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not out_dir.exists()


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", json.dumps({"status": "complete", "config": {}})],
)
def test_bad_stored_run_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    res = tmp_path / "r"
    res.mkdir()
    bad = result_path(res, "quick", 0)
    bad.write_text(content)
    rc, out, err = run_main(
        capsys, "recipes", "--report-only", "--results", str(res), "--out", str(tmp_path / "o")
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"archlab: error: {bad}: ")
    assert not (tmp_path / "o").exists()
