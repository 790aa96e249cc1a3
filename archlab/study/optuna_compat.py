"""The one place archlab leans on optuna's private API: claiming an enqueued trial.

A comparison study runs only the cells it enqueued. optuna pops a WAITING trial to RUNNING
atomically inside ``Study.ask()``, but ``ask()`` creates a fresh, unplanned trial when the queue
is empty, and optuna has no public call for "the next enqueued trial, or nothing". So the pop
(``Study._pop_waiting_trial_id``, as of optuna 5.0) is called here and nowhere else;
tests/test_study.py::test_optuna_still_has_the_private_pop_we_use fails first if optuna renames
or changes it.
"""

from __future__ import annotations

import optuna

__all__ = ["claim_waiting_trial"]


def claim_waiting_trial(study: optuna.Study) -> optuna.Trial | None:
    """The next enqueued trial, now RUNNING and ours; None when the queue is empty."""
    trial_id = study._pop_waiting_trial_id()
    return None if trial_id is None else optuna.Trial(study, trial_id)
