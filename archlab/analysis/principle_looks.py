"""A principle's verdict judged over the looks its study took, so adding seeds keeps its 5%.

A study run with ``--until-decided`` looks at its principle verdict after every round of seeds and
adds seeds while it is open (``archlab.study.decide.principle_open``). Read at 95% at every look,
a fixed-design analysis would spend 5% at each. The claim rows spend their alpha over the planned
looks (``archlab.analysis.verdicts``); a principle's verdict is a composite of intervals and tests,
not one p-value, so it spends the same way by the significance-level approach (Jennison and
Turnbull 2000, sec. 3.8): at planned look k the analysis runs on the first n_k seeds complete in
every configuration, with its intervals and tests at that look's level
(``sequential.calibrated_levels``: Lan-DeMets linear spending, calibrated for t-tests as the
claim rows' repeated p-values are), and the verdict is the first look's that decides. Every
test inside a verdict runs at that level, so each wrong verdict keeps the study's alpha
("agrees" that needs several parts is an intersection-union test: no extra cost).

Under ``sequential: anytime`` (no plan of looks) every analysis reads its intervals as
anytime-valid 95% confidence sequences (``analyze(..., sequential=True)``), as principle 2's
paired design does under either method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from archlab.analysis.principle_parts import PrincipleResult, common_seeds
from archlab.analysis.principles import LEVELLED, analyze
from archlab.analysis.sequential import calibrated_levels, planned_looks

__all__ = ["LOOK_FACT", "common_seeds", "judge_over_looks"]

#: the ``facts`` key of a look-judged result: {"look", "of", "seeds", "level", "decided"}
LOOK_FACT = "look"


def judge_over_looks(
    n: int,
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    looks: Sequence[int] | None = None,
    method: str = "planned",
    **options: Any,
) -> PrincipleResult:
    """Principle ``n``'s analysis as its study's design reads it.

    ``looks``: the study's planned looks (seed counts) when it ran ``--until-decided``, else
    None (one look, every seed, 95%). ``method``: "planned" or "anytime" (the scale's
    ``sequential``). A planned result's facts gain ``LOOK_FACT``.
    """
    if not looks:
        return analyze(n, runs, curves, **options)
    if method == "anytime" or n not in LEVELLED:
        # no plan to spend over (or no level to spend it at): anytime-valid at every seed
        return analyze(n, runs, curves, sequential=True, **options)
    plan = planned_looks(looks)
    seeds = common_seeds(runs)
    if not seeds:
        return analyze(n, runs, curves, **options)
    levels = calibrated_levels(plan)
    # the planned looks these seeds reached (a study short of its first look: one look at n)
    reached = [k for k in plan if k <= len(seeds)] or [len(seeds)]
    result = None
    for j, k in enumerate(reached):
        level = float(levels[j])
        sub = runs[runs["seed"].isin(seeds[:k])]
        result = analyze(n, sub, curves, level=1.0 - level, **options)
        decided = result.evidence != "inconclusive"
        fact = {"look": j + 1, "of": len(plan), "seeds": k, "level": level, "decided": decided}
        result = dataclasses.replace(result, facts={**result.facts, LOOK_FACT: fact})
        if decided:
            break
    assert result is not None  # reached is never empty
    return result
