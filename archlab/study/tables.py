"""A study's results as tables: one row per run (runs.csv) and per run and epoch (curves.csv).

Everything is read back from the storage (the plan, the meta and every trial's result live
there), so the tables can always be rewritten whole; they are written atomically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from archlab.arch.spec import ADDED_SPEC_FIELDS, field_names
from archlab.faults import pause_for_tests
from archlab.io import write_atomic
from archlab.train.config import ADDED_FIELDS, TrainConfig

__all__ = ["CURVE_COLUMNS", "METRICS", "RUN_COLUMNS", "collect", "export"]

METRICS = ("test_top1", "test_top5", "test_nll", "test_ece", "val_top1")
_SPEC_FIELDS = field_names()
# Recipe fields as plain columns ("recipe_" only where a name collides with a spec field); the
# recipe's seed is the "seed" column itself.
_RECIPE_COLUMNS = {
    f: (f"recipe_{f}" if f in _SPEC_FIELDS else f) for f in TrainConfig().to_dict() if f != "seed"
}
RUN_COLUMNS = [
    "study",
    "variant",
    "is_baseline",
    "group",
    "vs",
    "seed",
    "status",
    "run_key",
    *_SPEC_FIELDS,
    *_RECIPE_COLUMNS.values(),
    "scale",
    "model",
    "macs",
    "params",
    *METRICS,
    "train_time_s",
    "images_per_s",
    "min_repr",
    "reliability",
    "error",
    "version",
    "commit",
    "trial_number",
]
CURVE_COLUMNS = [
    "run_key",
    "group",
    "variant",
    "seed",
    "epoch",
    "train_loss",
    "train_top1",
    "val_top1",
    "test_top1",
    "test_nll",
    "aux_top1",
    "wall_s",
]


def _nan(value: Any) -> Any:
    return math.nan if value is None else value


def _row(meta: dict[str, Any], cell: dict[str, Any], t: FrozenTrial) -> dict[str, Any]:
    a = t.user_attrs
    res = a.get("result") or {}
    final = res.get("final") or {}
    failed = t.state != TrialState.COMPLETE
    row: dict[str, Any] = {
        "study": meta["study"],
        "variant": cell["variant"],
        "is_baseline": bool(cell["is_baseline"]),
        "group": cell["group"],
        "vs": cell.get("vs", ""),
        "seed": a["seed"],
        "status": "failed" if failed else res.get("status", "complete"),
        "run_key": a["key"],
    }
    # a run stored before a field existed ran with the field's "as before" value: filled in, so
    # it compares equal to a later run at that value (not "differs in squeeze_ratio")
    spec, recipe = {**ADDED_SPEC_FIELDS, **a["spec"]}, {**ADDED_FIELDS, **a["recipe"]}
    row.update({k: spec.get(k) for k in _SPEC_FIELDS})
    row.update({col: recipe.get(f) for f, col in _RECIPE_COLUMNS.items()})
    row.update(
        scale=a["scale"],
        model=a["model"],
        macs=_nan(res.get("macs") or None),
        params=_nan(res.get("params") or None),
        **{m: _nan(final.get(m)) for m in (*METRICS, "train_time_s", "images_per_s")},
        min_repr=_nan(a.get("min_repr")),
        reliability=json.dumps(final["reliability"]) if "reliability" in final else "",
        error=res.get("error") or a.get("error", "") or ("interrupted" if failed else ""),
        version=a.get("version", ""),
        commit=a.get("commit", ""),
        trial_number=t.number,
    )
    return row


def _curve_rows(cell: dict[str, Any], t: FrozenTrial) -> list[dict[str, Any]]:
    history = (t.user_attrs.get("result") or {}).get("history") or []
    base = {"run_key": t.user_attrs["key"], "group": cell["group"], "variant": cell["variant"]}
    return [
        {**base, "seed": t.user_attrs["seed"], **{c: _nan(h.get(c)) for c in CURVE_COLUMNS[4:]}}
        for h in history
    ]


def _search_cells(trials: Sequence[FrozenTrial]) -> list[tuple[dict[str, Any], FrozenTrial]]:
    """One cell per trial that trained (not pruned, not a reuse of an earlier trial)."""
    out = []
    for t in trials:
        a = t.user_attrs
        if (
            t.state in (TrialState.COMPLETE, TrialState.FAIL)
            and "key" in a
            and "reused_from" not in a
        ):
            label = a["label"]
            out.append(({"group": "", "variant": label, "is_baseline": label == "baseline"}, t))
    return out


def _planned_cells(
    plan: list[dict[str, Any]], trials: Sequence[FrozenTrial]
) -> list[tuple[dict, FrozenTrial]]:
    """Each planned cell with its trial: the COMPLETE one, else the latest failed attempt."""
    best: dict[str, FrozenTrial] = {}
    for t in trials:
        key = t.user_attrs.get("key")
        if key is None or "duplicate_of" in t.user_attrs:
            continue
        prev = best.get(key)
        if t.state == TrialState.COMPLETE:
            if prev is None or prev.state != TrialState.COMPLETE:
                best[key] = t
        elif t.state == TrialState.FAIL and (prev is None or prev.state == TrialState.FAIL):
            best[key] = t
    return [(cell, best[cell["key"]]) for cell in plan if cell["key"] in best]


def collect(study: optuna.Study) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(runs, curves, meta) of a study from its storage: plan, meta and results all live there.

    ``meta`` also carries the study's ``looks``, ``until_decided`` and ``numerics`` attrs where
    it has them (--until-decided looks, pinned numerics); older studies have none.
    """
    meta = dict(study.user_attrs.get("meta") or {})
    for extra in ("looks", "until_decided", "numerics"):  # absent from older studies
        if extra in study.user_attrs:
            meta[extra] = study.user_attrs[extra]
    trials = study.get_trials(deepcopy=False)
    plan = study.user_attrs.get("plan")
    pairs = _planned_cells(plan, trials) if plan is not None else _search_cells(trials)
    runs = pd.DataFrame([_row(meta, c, t) for c, t in pairs], columns=RUN_COLUMNS)
    curves = pd.DataFrame([r for c, t in pairs for r in _curve_rows(c, t)], columns=CURVE_COLUMNS)
    return runs, curves, meta


def export(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Write runs.csv and curves.csv atomically."""
    files = {"runs.csv": write_atomic(out_dir / "runs.csv", runs.to_csv(index=False))}
    pause_for_tests("export")
    files["curves.csv"] = write_atomic(out_dir / "curves.csv", curves.to_csv(index=False))
    return files
