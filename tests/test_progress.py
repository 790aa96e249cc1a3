"""What a study's progress counts: runs ended since the start, over one or several studies."""

from __future__ import annotations

from typing import Any

from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from archlab.study.progress import count_progress


def _trial(number: int, state: TrialState, **attrs: Any) -> FrozenTrial:
    value = 1.0 if state == TrialState.COMPLETE else None
    t = create_trial(
        state=state,
        value=value,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=attrs,
    )
    t.number = number
    return t


RUNNING = {"label": "baseline", "seed": 1, "epoch": 0.5, "recipe": {"epochs": 1}}


def test_a_comparison_counts_its_planned_keys_once_each_and_not_what_had_ended() -> None:
    trials = [
        _trial(0, TrialState.COMPLETE, key="old"),  # ended before the start: not this round's
        _trial(1, TrialState.FAIL, key="a"),  # an earlier failure of a planned key
        _trial(2, TrialState.FAIL, key="a"),  # queued at the start, failed since: counted
        _trial(3, TrialState.COMPLETE, key="b"),
        _trial(4, TrialState.COMPLETE, key="b", duplicate_of=3),  # a duplicate never counts
        _trial(5, TrialState.COMPLETE, key="x"),  # not a planned key
        _trial(6, TrialState.RUNNING, key="c", **RUNNING),
        _trial(7, TrialState.WAITING, key="d"),
    ]
    done, running = count_progress([trials], {(0, 0), (0, 1)}, {"a", "b", "c", "d"})
    assert done == 2
    assert running == ["baseline s1 epoch 0.5/1"]


def test_a_search_counts_a_trial_queued_before_the_start() -> None:
    # the search enqueues its baseline before its workers start; counting only trials numbered
    # after the start left the bar one short of its total
    trials = [_trial(0, TrialState.COMPLETE), _trial(1, TrialState.COMPLETE)]
    assert count_progress([trials], set(), None) == (2, [])
    assert count_progress([trials], {(0, 0)}, None) == (1, [])


def test_tuning_counts_over_every_variant_study() -> None:
    a = [_trial(0, TrialState.COMPLETE), _trial(1, TrialState.COMPLETE)]
    b = [_trial(0, TrialState.COMPLETE), _trial(1, TrialState.RUNNING, **RUNNING)]
    # trial 0 of study a had ended before; trial 0 of study b is new (numbers are per study)
    assert count_progress([a, b], {(0, 0)}, None) == (2, ["baseline s1 epoch 0.5/1"])
