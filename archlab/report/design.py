"""How a study was run, in one sentence each: its design (looks, rounds, method) and its noise.

The study report prints both under its claim table: the design line says how many seeds were
looked at and when, why the study stopped adding them, and how its verdicts treat their looks
(planned looks with their extensions and kept rows, or anytime-valid); the noise line gives the
pooled seed SD the verdicts stand on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from archlab.analysis.anytime import ANYTIME_NAME
from archlab.analysis.evidence import pooled_sd
from archlab.analysis.sequential import EXTENSION_COST
from archlab.numbers import fmt

__all__ = ["design_line", "noise_line"]


def design_line(meta: Mapping[str, Any]) -> str:
    """How many seeds were looked at, when, and why the study stopped adding them."""
    looks, record = meta.get("looks"), meta.get("until_decided") or {}
    if not looks:
        return "Design: fixed (one look at all seeds)."
    # studies resumed before the decide loop stopped re-recording a look at the same seeds
    # hold it twice: show each look once; the wall clock restarts with each invocation
    every = reversed(record.get("rounds") or [])
    rounds = list({(r["seeds"], r.get("runs")): r for r in every}.values())[::-1]
    seen = ", ".join(
        f"{r['seeds']} ({_runs_of(r)}{len(r['open'])} open, "
        f"{fmt('minutes', r.get('elapsed_s', math.nan) / 60)} min into its run)"
        for r in rounds
    )
    if record.get("method") == "anytime":
        return _anytime_design(looks, record, seen)
    text = (
        f"Design: sequential (--until-decided), planned looks at {looks[0]}..{looks[-1]} seeds; "
        f"looks taken: {seen or 'none yet'}"
    )
    if record.get("stopped"):
        text += f"; stopped: {record['stopped']}"
    extended = record.get("extended") or []
    if extended:
        steps = " → ".join(str(n) for n in [extended[0]["from"], *(e["to"] for e in extended)])
        text += (
            f"; the plan was extended once begun ({steps} seeds): rows decided after an "
            f"extension carry a false-positive rate above 5% ({EXTENSION_COST})"
        )
    kept = record.get("stopped_rows") or []
    if kept:
        # the plan grew after these rows stopped: they keep the looks they stopped under
        text += "; kept as they stopped when the plan grew: " + ", ".join(
            f"{e['claim']} {e['comparison']} (decided at {e['n']} seeds of looks "
            f"{e['looks'][0]}..{e['looks'][-1]})"
            for e in kept
        )
    return text + "."


def _runs_of(round_: Mapping[str, Any]) -> str:
    """ "138 runs, " where the round recorded them (a lagging pair grows under the same max)."""
    return f"{round_['runs']} runs, " if "runs" in round_ else ""


def _anytime_design(looks: Sequence[int], record: Mapping[str, Any], seen: str) -> str:
    """The design line of a study judged anytime-valid."""
    text = (
        f"Design: sequential (--until-decided), judged anytime-valid ({ANYTIME_NAME}): every "
        f"seed count is a look and the plan may grow at no cost; the claim rows' intervals are "
        f"these sequences, each on its row's own SD (not the pooled SD), with Holm across rows; "
        f"seeds up to {looks[-1]}; "
        f"rounds: {seen or 'none yet'}"
    )
    if record.get("stopped"):
        text += f"; stopped: {record['stopped']}"
    switched = record.get("switched")
    if switched:
        text += (
            f"; judged over planned looks until {switched['seeds']} seeds, then switched to "
            "anytime-valid verdicts over every seed (valid whatever the history)"
        )
    return text + "."


def noise_line(runs: pd.DataFrame) -> str:
    """The study's noise in one sentence: pooled seed SD of test top-1 (what verdicts stand on)."""
    n_seeds = int(runs["seed"].nunique()) if "seed" in runs.columns and len(runs) else 0
    pooled = pooled_sd(runs, n_seeds) if n_seeds >= 2 and "test_top1" in runs.columns else None
    if pooled is None:
        return "Pooled seed SD of test top-1: not computed (needs 4+ variants and 2+ seeds)."
    sd, df = pooled
    return (
        f"Pooled seed SD of test top-1: {fmt('accuracy', sd)} pt (residual of an OLS with variant "
        f"and seed factors, {fmt('count', df)} df, {n_seeds} seeds)."
    )
