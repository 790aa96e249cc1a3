"""Studies that decide: --until-decided rounds, the plan line and size check, pinned numerics.

Training and the claim verdicts are faked (a run "trains" in microseconds, a verdict comes from a
script), so the round loop, the storage and the CLI are tested in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

import archlab.study.decide
import archlab.study.engine
import archlab.train.runtime
import archlab.train.trainer
from archlab.arch.spec import ArchSpec
from archlab.study.compare import seed_major
from archlab.study.decide import (
    EVERY_CELL,
    UntilDecided,
    grow,
    open_comparisons,
    plan_looks,
    principle_open,
    stopped_rows,
)
from archlab.study.engine import run_study
from archlab.study.errors import StudyError
from archlab.study.plan import plan_cells, run_key
from archlab.study.storage import open_storage
from archlab.study.studyfile import load_study
from archlab.train.config import RunResult, TrainConfig
from tests.studykit import run_main

# baseline plus two variants at the smoke scale, two seeds: two comparisons with the baseline
STUDY = """
name: dec
claims: [conv5x5_acc, stem_7x7]
variants:
  one_factor:
    - {conv5x5: 5x5}
    - {stem: 7x7}
scales:
  smoke: {seeds: 2, dataset: "synthetic:64", val_size: 0, batch_size: 32}
"""
C5, STEM, BASE = "conv5x5=5x5", "stem=7x7", "baseline"


def write(tmp_path: Path, text: str = STUDY) -> Path:
    path = tmp_path / "dec.yaml"
    path.write_text(text)
    return path


def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"results_dir": tmp_path / "results", "reports_dir": tmp_path / "reports"}


def stored(tmp_path: Path) -> optuna.Study:
    url = str(tmp_path / "results" / "dec" / "journal.log")
    return optuna.load_study(study_name="dec-smoke", storage=open_storage(url))


class FakeTrain:
    """Stands in for the trainer: records (variant, seed) of each run, returns a result at once."""

    def __init__(self, wall_s: float = 2.0) -> None:
        self.runs: list[tuple[str, int]] = []
        self.configs: list[TrainConfig] = []
        self.wall_s = wall_s

    def __call__(self, spec: ArchSpec, config: TrainConfig, **kw: Any) -> RunResult:
        label = C5 if spec.conv5x5 == "5x5" else STEM if spec.stem == "7x7" else BASE
        self.runs.append((label, config.seed))
        self.configs.append(config)
        final = {"test_top1": 80.0 + config.seed, "val_top1": 80.0, "test_nll": 0.5}
        history = [{"epoch": 1.0, "train_loss": 1.0, "test_top1": final["test_top1"]}]
        return RunResult(
            "complete", spec.to_dict(), config.to_dict(), kw["model"], final, history,
            macs=1000, params=10, wall_time_s=self.wall_s,
        )  # fmt: skip

    def seeds(self, label: str) -> list[int]:
        return sorted(s for v, s in self.runs if v == label)


class FakeVerdicts:
    """The claim table from a rule: (variant, baseline) is open while ``open_while(n)`` holds,
    n being the variant's seeds in the runs table; records every call's looks and seeds."""

    def __init__(self, tmp_path: Path, open_while: Callable[[str, int], bool]) -> None:
        self.tmp_path, self.open_while = tmp_path, open_while
        self.calls: list[dict[str, Any]] = []
        self.looks: list[int] = []  # the looks of the call being answered, for open_while

    def __call__(
        self,
        claim_ids: Any,
        runs: pd.DataFrame,
        curves: Any,
        looks: Any,
        stopped: Any = (),
        method: str = "planned",
    ) -> pd.DataFrame:
        seeds = runs.groupby("variant")["seed"].nunique().to_dict()
        attrs = stored(self.tmp_path).user_attrs
        self.looks = list(looks)
        self.calls.append({"looks": list(looks), "seeds": seeds, "stored_looks": attrs["looks"]})
        self.calls[-1]["csv"] = (self.tmp_path / "results" / "dec" / "runs.csv").exists()
        self.calls[-1]["stopped"] = list(stopped)
        self.calls[-1]["method"] = method
        kept = {e["comparison"]: e for e in stopped}
        rows = []
        for v in (C5, STEM):
            label, n = f"{v} vs {BASE}", seeds.get(v, 0)
            if label in kept:  # judged as it stopped, as evaluate_claims does
                n, looks = kept[label]["n"], kept[label]["looks"]
            decided = label in kept or not self.open_while(v, n)
            rows.append({
                "claim": "x",
                "kind": "accuracy",
                "comparison": label,
                "variant": v,
                "baseline": BASE,
                "evidence": "agrees" if decided else "inconclusive",
                "look": looks.index(n) + 1 if decided and n in looks else 0,
            })  # fmt: skip
        rows.append({"claim": "y", "kind": "cost", "variant": STEM, "baseline": BASE,
                     "evidence": "inconclusive"})  # fmt: skip
        return pd.DataFrame(rows)


@pytest.fixture
def fake_train(monkeypatch: pytest.MonkeyPatch) -> FakeTrain:
    fake = FakeTrain()
    monkeypatch.setattr(archlab.train.trainer, "train", fake)
    return fake


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., FakeVerdicts]:
    monkeypatch.setattr(archlab.study.engine, "check_evaluator", lambda: None)

    def install(open_while: Callable[[str, int], bool]) -> FakeVerdicts:
        fake = FakeVerdicts(tmp_path, open_while)
        monkeypatch.setattr(archlab.study.decide, "evaluate", fake)
        return fake

    return install


def until(tmp_path: Path, **kw: Any) -> Any:
    return run_study(
        write(tmp_path), scale="smoke", render=False, until_decided=UntilDecided(**kw),
        **dirs(tmp_path),
    )  # fmt: skip


# --- the round loop ------------------------------------------------------------------------------


def test_rounds_add_seeds_only_to_the_open_pair_until_decided(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts], capfd: Any
) -> None:
    fake = verdicts(lambda v, n: v == C5 and n < 4)  # conv5x5 is decided at 4 seeds
    outcome = until(tmp_path)
    assert outcome.ok
    assert fake_train.seeds(C5) == fake_train.seeds(BASE) == [0, 1, 2, 3]
    assert fake_train.seeds(STEM) == [0, 1]
    # round robin: seed 0 of every cell, then seed 1, ...
    assert fake_train.runs[:6] == [(BASE, 0), (C5, 0), (STEM, 0), (BASE, 1), (C5, 1), (STEM, 1)]
    assert [c["seeds"][C5] for c in fake.calls] == [2, 3, 4]
    # the looks were stored before the first verdict, and passed to it
    assert all(c["looks"] == c["stored_looks"] == list(range(2, 11)) for c in fake.calls)
    assert [c["csv"] for c in fake.calls] == [False, True, True]  # provisional tables per round
    attrs = stored(tmp_path).user_attrs
    rounds = attrs["until_decided"]["rounds"]
    assert [(r["round"], r["seeds"], r["open"]) for r in rounds] == [
        (1, 2, [[C5, BASE]]),
        (2, 3, [[C5, BASE]]),
        (3, 4, []),
    ]
    assert attrs["until_decided"]["max_seeds"] == 10 and attrs["until_decided"]["budget_min"] == 20
    assert "decided" in attrs["until_decided"]["stopped"]
    assert len(pd.read_csv(outcome.files["runs.csv"])) == 10
    err = capfd.readouterr().err
    assert "until decided: looks at 2..10 seeds, at most 30 runs, a budget of 20 min" in err
    assert "dec [smoke] round 1: 6 runs, 0 done, 6 to run; about " in err
    assert "dec [smoke]: round 2: 3 seeds, 1 open comparison, " in err
    assert "round 3: 4 seeds, 0 open comparisons" in err

    fake_train.runs.clear()  # resumed: nothing retrained, the stored looks reused
    assert until(tmp_path).ok and fake_train.runs == []
    assert stored(tmp_path).user_attrs["looks"] == list(range(2, 11))


def test_a_resumed_look_judged_anew_records_what_is_open_now(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts]
) -> None:
    """Rules that changed between invocations: the same look's record says what is open now."""
    verdicts(lambda v, n: False)  # decided at the first look
    until(tmp_path, max_seeds=3)
    first = stored(tmp_path).user_attrs["until_decided"]["rounds"]
    assert [(r["seeds"], r["open"]) for r in first] == [(2, [])]
    verdicts(lambda v, n: v == C5 and n < 3)  # newer rules: open at 2 seeds, decided at 3
    until(tmp_path, max_seeds=3)
    rounds = stored(tmp_path).user_attrs["until_decided"]["rounds"]
    assert [(r["seeds"], r["open"]) for r in rounds] == [(2, [[C5, BASE]]), (3, [])]
    assert rounds[0]["elapsed_s"] == first[0]["elapsed_s"]  # when it was taken: kept


def test_rounds_stop_at_max_seeds_and_a_larger_k_extends_the_looks(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts], capfd: Any
) -> None:
    verdicts(lambda v, n: v == C5)  # never decided
    until(tmp_path, max_seeds=3)
    assert fake_train.seeds(C5) == [0, 1, 2] and fake_train.seeds(STEM) == [0, 1]
    attrs = stored(tmp_path).user_attrs
    assert attrs["looks"] == [2, 3] and "3 seeds reached" in attrs["until_decided"]["stopped"]

    fake_train.runs.clear()  # a smaller K later keeps the planned looks; a larger one extends
    until(tmp_path, max_seeds=2)
    assert fake_train.runs == [] and stored(tmp_path).user_attrs["looks"] == [2, 3]
    capfd.readouterr()
    until(tmp_path, max_seeds=5)
    assert sorted(fake_train.runs) == [(BASE, 3), (BASE, 4), (C5, 3), (C5, 4)]
    # extending a plan after its looks were taken is a redesign: said once, with its cost
    err = capfd.readouterr().err
    assert err.count("note: extending the planned looks from 3 to 5 seeds once begun") == 1
    assert "false-positive rate above 5%" in err
    attrs = stored(tmp_path).user_attrs
    assert attrs["looks"] == [2, 3, 4, 5]
    assert attrs["until_decided"]["extended"] == [{"from": 3, "to": 5}]
    # each resume first looks again at the seeds it has: recorded once, not per invocation
    assert [r["seeds"] for r in attrs["until_decided"]["rounds"]] == [2, 3, 4, 5]


def test_rows_decided_before_a_plan_grows_keep_their_stop_and_get_no_more_seeds(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts]
) -> None:
    # conv5x5 decides at 3 seeds under looks 2..3, but judged over a longer plan it would
    # re-open (alpha spread over more looks): once stopped it must stay stopped
    fake = verdicts(lambda v, n: v == STEM or (v == C5 and (n < 3 or fake.looks[-1] > 3)))
    until(tmp_path, max_seeds=3)
    assert fake_train.seeds(C5) == [0, 1, 2] and fake_train.seeds(STEM) == [0, 1, 2]
    assert "stopped_rows" not in stored(tmp_path).user_attrs["until_decided"]

    fake_train.runs.clear()
    until(tmp_path, max_seeds=5)
    record = stored(tmp_path).user_attrs["until_decided"]
    kept = {"claim": "x", "comparison": f"{C5} vs {BASE}", "looks": [2, 3], "n": 3}
    assert record["stopped_rows"] == [kept]
    assert all(c["stopped"] == [kept] for c in fake.calls if c["looks"] == [2, 3, 4, 5])
    # only the open pair (stem vs baseline) grew; conv5x5 kept its 3 seeds
    assert sorted(fake_train.runs) == [(BASE, 3), (BASE, 4), (STEM, 3), (STEM, 4)]
    assert "5 seeds reached with 1 comparison open" in record["stopped"]

    fake_train.runs.clear()  # a second extension keeps the first stop and adds none twice
    until(tmp_path, max_seeds=6)
    assert stored(tmp_path).user_attrs["until_decided"]["stopped_rows"] == [kept]
    assert sorted(fake_train.runs) == [(BASE, 5), (STEM, 5)]


def test_an_anytime_study_grows_to_its_k_at_no_cost_and_cannot_switch_back(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts], capfd: Any
) -> None:
    fake = verdicts(lambda v, n: v == C5)  # never decided
    until(tmp_path, max_seeds=3)  # planned looks first
    assert stored(tmp_path).user_attrs["until_decided"]["method"] == "planned"
    assert all(c["method"] == "planned" for c in fake.calls)
    capfd.readouterr()

    # the scale switches to anytime-valid verdicts with a larger max_seeds of its own
    write(tmp_path, STUDY.replace("batch_size: 32}", "batch_size: 32, max_seeds: 5,\n"
                                  "          sequential: anytime}"))  # fmt: skip
    fake_train.runs.clear()
    assert run_study(
        tmp_path / "dec.yaml", scale="smoke", render=False, until_decided=UntilDecided(),
        **dirs(tmp_path),
    ).ok  # fmt: skip
    err = capfd.readouterr().err
    assert "judging the verdicts anytime-valid from now on" in err
    assert "until decided: anytime-valid, up to 5 seeds, at most 15 runs" in err
    assert "false-positive rate" not in err  # growing an anytime plan costs nothing
    record = stored(tmp_path).user_attrs["until_decided"]
    assert record["method"] == "anytime" and record["switched"] == {"from": "planned", "seeds": 3}
    assert stored(tmp_path).user_attrs["looks"] == [2, 3, 4, 5]  # the scale's K, no flag needed
    assert sorted(fake_train.runs) == [(BASE, 3), (BASE, 4), (C5, 3), (C5, 4)]
    assert fake.calls[-1]["method"] == "anytime" and fake.calls[-1]["stopped"] == []

    # back to planned looks after the data: refused in one line
    write(tmp_path)
    with pytest.raises(StudyError, match="verdicts are already anytime-valid"):
        until(tmp_path)


def test_a_redesigned_study_starts_a_new_record_of_rounds(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts]
) -> None:
    verdicts(lambda v, n: v == C5 and n < 3)
    until(tmp_path)
    first = stored(tmp_path).user_attrs["until_decided"]
    assert [r["seeds"] for r in first["rounds"]] == [2, 3]
    # a new variant: another design; its runs of the old cells are kept, its rounds start over
    redesigned = write(
        tmp_path, STUDY.replace("    - {stem: 7x7}", "    - {stem: 7x7}\n    - {n: 5}")
    )
    fake_train.runs.clear()
    run_study(
        redesigned, scale="smoke", render=False, until_decided=UntilDecided(), **dirs(tmp_path)
    )
    # only the new cell trains: two runs, both of n=5 (nothing of the old design retrained)
    assert len(fake_train.runs) == 2
    done = stored(tmp_path).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["seed"] for t in done if t.user_attrs["label"] == "n=5") == [0, 1]
    record = stored(tmp_path).user_attrs["until_decided"]
    assert record["plan"] != first["plan"]
    assert [(r["round"], r["seeds"]) for r in record["rounds"]] == [(1, 3)]


def test_rounds_stop_before_a_round_that_would_overrun_the_budget(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts]
) -> None:
    verdicts(lambda v, n: v == C5)
    fake_train.wall_s = 600.0  # runs "take" 10 minutes: a round of two would end past 5
    until(tmp_path, budget_min=5)
    assert len(fake_train.runs) == 6  # round 1 only
    stop = stored(tmp_path).user_attrs["until_decided"]["stopped"]
    assert stop.startswith("budget: the next round (~20m00s) would end past 5 min")


def test_a_study_without_accuracy_claims_is_decided_after_round_one(
    tmp_path: Path, fake_train: FakeTrain, verdicts: Callable[..., FakeVerdicts]
) -> None:
    verdicts(lambda v, n: True)
    path = write(tmp_path, STUDY.replace("claims: [conv5x5_acc, stem_7x7]\n", ""))
    run_study(path, scale="smoke", render=False, until_decided=UntilDecided(), **dirs(tmp_path))
    assert len(fake_train.runs) == 6
    assert len(stored(tmp_path).user_attrs["until_decided"]["rounds"]) == 1


def test_open_comparisons_grow_and_looks(tmp_path: Path) -> None:
    table = pd.DataFrame(
        [
            ["a", "accuracy", "v1", "baseline", "inconclusive"],
            ["a", "accuracy", "v2", "baseline", "agrees"],
            ["b", "cost", "v3", "baseline", "inconclusive"],
            ["c", "accuracy", "v4", "v1", "smaller than claimed"],
        ],
        columns=["claim", "kind", "variant", "baseline", "evidence"],
    )
    assert open_comparisons(table) == {("v1", "baseline")}
    assert open_comparisons(table.iloc[:0]) == set()
    # a row kept as it stopped before the plan grew is never open, whatever it reads now
    table["comparison"] = table["variant"] + " vs " + table["baseline"]
    kept = [{"claim": "a", "comparison": "v1 vs baseline", "looks": [3, 4], "n": 4}]
    assert open_comparisons(table, kept) == set()
    table["look"] = [0, 2, 0, 1]
    assert stopped_rows(table, [3, 4, 5]) == [
        {"claim": "a", "comparison": "v2 vs baseline", "looks": [3, 4, 5], "n": 4},
        {"claim": "c", "comparison": "v4 vs v1", "looks": [3, 4, 5], "n": 3},
    ]
    counts = {"baseline": 3, "v1": 3, "v2": 3}
    both = {("v1", "baseline"), ("v2", "baseline")}
    assert grow(counts, both, [3, 4, 5]) == {"baseline": 4, "v1": 4, "v2": 4}  # one seed, not 2
    assert grow({"baseline": 5, "v1": 5}, {("v1", "baseline")}, [3, 4, 5]) == {
        "baseline": 5,
        "v1": 5,
    }
    # an open principle verdict: every cell to the look after the largest count, once
    counts = {"baseline": 5, "v1": 6, "v2": 5}
    assert grow(counts, {EVERY_CELL}, [5, 6, 7, 8]) == {"baseline": 7, "v1": 7, "v2": 7}
    assert grow({"baseline": 8, "v1": 8}, {EVERY_CELL}, [5, 6, 7, 8]) == {"baseline": 8, "v1": 8}
    study = load_study(write(tmp_path))
    assert plan_looks(study, "smoke", 2, None, None) == list(range(2, 11))
    assert plan_looks(study, "smoke", 2, 4, [2, 3]) == [2, 3, 4]
    assert plan_looks(study, "smoke", 5, 3, None) == [5]


def test_search_studies_refuse_until_decided(tmp_path: Path, capsys: Any) -> None:
    search = Path(__file__).resolve().parents[1] / "studies" / "search.yaml"
    rc, _, err = run_main(capsys, "study", "run", str(search), "--scale", "smoke",
                          "--until-decided", "--results", str(tmp_path))  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--until-decided: search is a search study" in err
    rc, _, err = run_main(capsys, "study", "run", str(search), "--max-seeds", "4")
    assert rc == 2 and "--max-seeds is an option of --until-decided" in err


# --- the plan before it runs ---------------------------------------------------------------------


def test_the_plan_line_says_runs_and_time_rough_then_measured(
    tmp_path: Path, fake_train: FakeTrain, capfd: Any
) -> None:
    path = write(tmp_path)
    run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    err = capfd.readouterr().err
    assert "dec [smoke]: 6 runs, 0 done, 6 to run; about " in err
    assert "s/run, rough: a prior of 300 training images/s per worker)" in err
    run_study(path, scale="smoke", overrides=["seeds=3"], render=False, **dirs(tmp_path))
    err = capfd.readouterr().err
    assert "9 runs, 6 done, 3 to run; about 6s with 1 worker (2.0 s/run, measured here)" in err
    # every cell is enqueued seed-major: the round-robin order
    trials = stored(tmp_path).get_trials()
    assert [t.user_attrs["seed"] for t in trials] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    cells = plan_cells(load_study(path), "smoke")
    assert [c.seed for c in seed_major(cells)] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("seeds", ["1000000000", "100000"])
def test_a_huge_plan_ends_at_once_without_yes(tmp_path: Path, capsys: Any, seeds: str) -> None:
    path = write(tmp_path)
    t0 = time.monotonic()
    rc, _, err = run_main(capsys, "study", "run", str(path), "--scale", "smoke", "--set",
                          f"seeds={seeds}", "--results", str(tmp_path / "results"))  # fmt: skip
    assert time.monotonic() - t0 < 10
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    if seeds == "100000":
        assert "this plan has 300,000 runs (more than 1,000): pass --yes" in err
    else:
        assert "seeds: 1000000000 seeds: allowed 1 to 100,000" in err
    assert not (tmp_path / "results").exists()


def test_until_decided_counts_its_most_seeds_against_yes(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path)
    rc, _, err = run_main(capsys, "study", "run", str(path), "--scale", "smoke",
                          "--until-decided", "--max-seeds", "400")  # fmt: skip
    assert rc == 2 and "this plan has 1,200 runs (more than 1,000): pass --yes" in err


# --- numerics ------------------------------------------------------------------------------------


def fake_machine(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    monkeypatch.setattr(archlab.train.runtime, "cpu_has_fast_bf16", lambda: bf16)


def test_runs_are_keyed_by_resolved_numerics_pinned_and_refused_elsewhere(
    tmp_path: Path, fake_train: FakeTrain, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = write(tmp_path)
    fake_machine(monkeypatch, True)
    cells = plan_cells(load_study(path), "smoke")
    assert {(c.config.device, c.config.precision) for c in cells} == {("cpu", "bf16")}
    auto = cells[0].config.replace(device="auto", precision="auto")
    assert cells[0].key != run_key(cells[0].model, cells[0].spec, auto, "smoke")
    run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    assert {(c.device, c.precision) for c in fake_train.configs} == {("cpu", "bf16")}
    attrs = stored(tmp_path).user_attrs
    assert attrs["numerics"] == {"device": "cpu", "precision": "bf16", "cpu_bf16": True}
    assert attrs["meta"]["recipe"]["precision"] == "bf16"
    assert {t.user_attrs["recipe"]["precision"] for t in stored(tmp_path).get_trials()} == {"bf16"}

    fake_machine(monkeypatch, False)  # a machine without native bf16
    fake_train.configs.clear()
    capsys.readouterr()
    args = ["study", "run", str(path), "--scale", "smoke", "--no-report"]
    args += ["--results", str(tmp_path / "results"), "--set", "seeds=3"]
    rc, _, err = run_main(capsys, *args)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "pinned to cpu bf16 (CPU: native bf16)" in err
    assert "this machine resolves cpu fp32 (CPU: no native bf16)" in err
    assert "--numerics pinned" in err and fake_train.configs == []
    rc, _, _ = run_main(capsys, *args, "--numerics", "pinned")
    assert rc == 0 and {c.precision for c in fake_train.configs} == {"bf16"}
    assert len(fake_train.configs) == 3  # only the new seed: the pinned keys matched


def test_a_search_pins_its_numerics_too(
    tmp_path: Path, fake_train: FakeTrain, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = Path(__file__).resolve().parents[1] / "studies" / "search.yaml"
    fake_machine(monkeypatch, True)
    assert run_study(path, scale="smoke", render=False, **dirs(tmp_path)).ok
    url = str(tmp_path / "results" / "search" / "journal.log")
    study = optuna.load_study(study_name="search-smoke", storage=open_storage(url))
    assert study.user_attrs["numerics"] == {"device": "cpu", "precision": "bf16", "cpu_bf16": True}
    # an invalid sampled spec is pruned before it has a recipe: look at the trials that trained
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert trials and {t.user_attrs["recipe"]["precision"] for t in trials} == {"bf16"}
    assert {(c.device, c.precision) for c in fake_train.configs} == {("cpu", "bf16")}

    fake_machine(monkeypatch, False)  # another machine may not add trials in other numerics
    capsys.readouterr()
    args = ["study", "run", str(path), "--scale", "smoke", "--no-report"]
    rc, _, err = run_main(capsys, *args, "--results", str(tmp_path / "results"))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "pinned to cpu bf16" in err


def test_an_explicit_precision_is_not_pinned(
    tmp_path: Path, fake_train: FakeTrain, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, STUDY.replace("batch_size: 32}", "batch_size: 32, precision: fp32}"))
    fake_machine(monkeypatch, True)
    run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    fake_machine(monkeypatch, False)  # no refusal: the recipe asks for fp32 everywhere
    run_study(path, scale="smoke", render=False, **dirs(tmp_path))
    assert {c.precision for c in fake_train.configs} == {"fp32"} and len(fake_train.configs) == 6
    with pytest.raises(StudyError, match="--numerics 'x'"):
        run_study(path, scale="smoke", render=False, numerics="x", **dirs(tmp_path))


def _reduce_runs(drop_by_ratio: dict[float, float], sd: float) -> pd.DataFrame:
    """Principle 3's cells: top-1 = 90 - drop(ratio) + a seed offset + noise, 5 seeds."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "reduce_ratio": r,
            "variant": f"reduce_ratio={r}",
            "is_baseline": r == 1.0,
            "seed": seed,
            "macs": 40e6,
            "run_key": f"{r}-{seed}",
            "test_top1": 90 - d + 0.3 * seed + rng.normal(0, sd),
        }
        for r, d in drop_by_ratio.items()
        for seed in range(5)
    )


@pytest.mark.parametrize(("sd", "still_open"), [(0.05, False), (3.0, True)])
def test_an_open_principle_verdict_keeps_every_cell_open(sd: float, still_open: bool) -> None:
    p3 = SimpleNamespace(kind="principle3", analysis={})
    runs = _reduce_runs({1.0: 0.0, 0.5: 0.0, 0.25: 0.1, 0.125: 0.2}, sd)
    assert principle_open(p3, runs, pd.DataFrame()) is still_open
    assert principle_open(p3, runs.iloc[:0], pd.DataFrame()) is True  # nothing run yet
    assert principle_open(SimpleNamespace(kind="compare", analysis={}), runs, None) is False
