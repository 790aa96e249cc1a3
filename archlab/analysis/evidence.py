"""The claims table of a study: each claim row's paired evidence, decided together.

For every claim and every comparison (variant vs its baseline) that tests it and nothing else,
the per-seed differences of test top-1 are oriented so that positive means the paper's choice
is better. All accuracy rows of a report are decided together by ``verdicts.decide`` (looks
spent over the study's planned looks, Holm across rows). With at least ``POOL_MIN_VARIANTS``
variants the noise of each comparison is the pooled residual SD of an OLS with variant and seed
factors (statsmodels), which has many more degrees of freedom than one pair's own SD.

A row that stopped before the study's plan of looks was extended (``stopped``: the entries
``archlab.study.decide`` records at the extension) is judged as that plan would judge it: over its
looks, on no seed past its last look.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from archlab.analysis.claims import (
    Claim,
    analytic_ratio,
    check_cost,
    get_claim,
    signed,
)
from archlab.analysis.matching import match
from archlab.analysis.stats import compare_to_baseline, per_seed, prepare_runs
from archlab.analysis.verdicts import RowEvidence, Verdict, decide, paired_look
from archlab.numbers import fmt, fmt_end

POOL_MIN_VARIANTS = 4
METRIC = "test_top1"

#: Columns of ``evaluate_claims``' table (the first seven are the report's text columns).
#: the evidence of a pair that differs in more than the claim's axis (never a verdict)
CONFOUNDED = "confounded"

CLAIM_COLUMNS = [
    "claim",
    "section",
    "kind",
    "paper",
    "comparison",
    "ours",
    "evidence",
    "variant",
    "baseline",
    "estimate",
    "ci_lo",
    "ci_hi",
    "n",
    "sd",
    "p_adj",
    "look",
    "seeds_needed",
    "paper_effect",
    "margin",
    "paper_in_ci",
]


@dataclass
class _Pending:
    """An accuracy row waiting for the joint decision: its claim, label and evidence."""

    claim: Claim
    variant: str
    baseline: str
    label: str
    row: RowEvidence
    stopped: tuple[int, ...] | None = None  # the plan it stopped under, when kept from before


def pooled_sd(runs: pd.DataFrame, n_seeds: int, metric: str = METRIC) -> tuple[float, float] | None:
    """(residual SD, df) of ``metric ~ variant + seed`` over the first ``n_seeds`` seeds."""
    done = runs[runs["status"] == "complete"][["variant", "seed", metric]].dropna()
    seeds = sorted(done["seed"].unique())[:n_seeds]
    done = done[done["seed"].isin(seeds)].rename(columns={metric: "y"})
    if done["variant"].nunique() < POOL_MIN_VARIANTS or len(seeds) < 2:
        return None
    fit = smf.ols("y ~ C(variant) + C(seed)", data=done.astype({"variant": str})).fit()
    if fit.df_resid < 1 or not math.isfinite(fit.mse_resid) or fit.mse_resid <= 0:
        return None
    return math.sqrt(fit.mse_resid), float(fit.df_resid)


def _row_looks(planned: Sequence[int], n: int) -> list[int]:
    """The seed counts at which this row was looked at: planned looks it reached, or n."""
    return [k for k in planned if k <= n] or [n]


#: (claim id, comparison label) -> the planned looks it stopped under
Stops = Mapping[tuple[str, str], tuple[int, ...]]


def stops_of(entries: Iterable[Mapping[str, Any]] | None) -> dict[tuple[str, str], tuple[int, ...]]:
    """The rows kept as they stopped, from the entries a study's until-decided record holds."""
    return {
        (str(e["claim"]), str(e["comparison"])): tuple(int(k) for k in e["looks"])
        for e in entries or []
    }


def _evidence(
    claim: Claim,
    diffs: np.ndarray,
    planned: Sequence[int],
    pooled: Mapping[int, tuple[float, float] | None],
    expected: str,
    own: tuple[int, ...] | None = None,
    method: str = "planned",
) -> RowEvidence:
    if method == "anytime":
        # every seed count is a look, each with the differences' own SD: the e-process of the
        # anytime test is a function of the row's own t statistics (a pooled SD is not)
        looks = [paired_look(diffs[:k]) for k in range(1, len(diffs) + 1)]
        return RowEvidence(expected, looks, claim.margin, claim.paper_effect)
    if own is not None:
        # judged as under the plan it stopped under: its looks, and no seed past that plan's
        # last (its cells may have grown since, for other rows that share them)
        diffs, planned = diffs[: own[-1]], own
    looks = []
    for k in _row_looks(planned, len(diffs)):
        sd_df = pooled.get(k)
        sd, df = sd_df if sd_df else (None, None)
        looks.append(paired_look(diffs[:k], pooled_sd=sd, pooled_df=df))
    return RowEvidence(expected, looks, claim.margin, claim.paper_effect, own)


def _oriented(a: pd.Series, b: pd.Series, sign: int) -> np.ndarray:
    """``sign`` x (a - b) per seed, on the seeds both have: a row's paired differences."""
    seeds = a.index.intersection(b.index)
    return sign * (a[seeds] - b[seeds]).to_numpy(dtype=float)


def _diffs(runs: pd.DataFrame, variant: str, baseline: str, sign: int, metric: str) -> np.ndarray:
    return _oriented(per_seed(runs, variant, metric), per_seed(runs, baseline, metric), sign)


def early_values(curves: pd.DataFrame, variant: str, fraction: float) -> tuple[pd.Series, int]:
    """Per seed: accuracy at the last evaluated epoch within the first ``fraction`` of training."""
    metric = next(
        (c for c in ("test_top1", "val_top1", "train_top1")
         if c in curves.columns and curves[c].notna().any()),
        None,
    )  # fmt: skip
    c = curves[curves["variant"].astype(str) == variant] if "variant" in curves else curves[:0]
    if metric is None or c.empty:
        return pd.Series(dtype=float), 0
    epoch = max(1, math.ceil(fraction * float(c["epoch"].max())))
    early = c[(c["epoch"] <= epoch) & c[metric].notna()].sort_values("epoch")
    return early.groupby("seed")[metric].last().sort_index(), epoch


def _early_diffs(curves: pd.DataFrame, variant: str, baseline: str, sign: int, fraction: float):
    a, epoch = early_values(curves, variant, fraction)
    b, _ = early_values(curves, baseline, fraction)
    return _oriented(a, b, sign), epoch


def gap_values(runs: pd.DataFrame, curves: pd.DataFrame, variant: str) -> pd.Series:
    """Per seed: final test top-1 minus the main head's train top-1 in the last epoch."""
    test = per_seed(runs, variant, METRIC)
    c = curves[curves["variant"].astype(str) == variant] if "variant" in curves else curves[:0]
    c = c[c["train_top1"].notna()].sort_values("epoch") if not c.empty else c
    if c.empty:
        return pd.Series(dtype=float)
    train = c.groupby("seed")["train_top1"].last()
    seeds = test.index.intersection(train.index)
    return (test[seeds] - train[seeds]).sort_index()


def _accuracy_rows(
    claim: Claim,
    comp: Mapping[str, object],
    sign: int,
    runs: pd.DataFrame,
    curves: pd.DataFrame | None,
    planned: Sequence[int],
    pooled: Mapping[int, tuple[float, float] | None],
    stops: Stops,
    method: str = "planned",
) -> list[_Pending]:
    variant, baseline = str(comp["variant"]), str(comp["baseline"])
    label = f"{variant} vs {baseline}"

    def pending(text: str, d: np.ndarray, sds: Mapping[int, Any], expected: str) -> _Pending:
        # anytime-valid rows need no kept stop: their p-values never rise as seeds are added
        own = stops.get((claim.id, text)) if method == "planned" else None
        row = _evidence(claim, d, planned, sds, expected, own, method)
        return _Pending(claim, variant, baseline, text, row, own)

    if claim.metric == "test_minus_train_top1":
        if curves is None or curves.empty:
            return []
        a, b = gap_values(runs, curves, variant), gap_values(runs, curves, baseline)
        # the pooled SD is of test top-1, not of the gap: this row uses its own differences
        d = _oriented(a, b, sign)
        return [pending(f"{label} (test − train top-1)", d, {}, str(claim.expected))]
    final_expected = claim.final_expected if claim.early is not None else str(claim.expected)
    rows = [pending(label, _diffs(runs, variant, baseline, sign, METRIC), pooled, final_expected)]
    if claim.early is not None and curves is not None and not curves.empty:
        e, epoch = _early_diffs(curves, variant, baseline, sign, claim.early)
        rows.insert(0, pending(f"{label} (epoch {epoch})", e, {}, str(claim.expected)))
    return rows


def _ours(
    v: Verdict, scale: str, paper: float | None, stopped: Sequence[int] | None, method: str
) -> str:
    lo, hi = (fmt_end("accuracy", x, sign=True) or "n/a" for x in (v.ci_lo, v.ci_hi))
    text = f"{signed(v.mean)} pt [{lo}, {hi}]"
    text += " (95% confidence sequence)" if method == "anytime" else ""
    text += f", n={v.n} seeds, {scale} scale"
    text += f", SD of the differences {fmt('accuracy', v.sd)}" if math.isfinite(v.sd) else ""
    if paper is not None and v.paper_in_ci is not None:
        text += f"; paper's {signed(paper, 1)} {'inside' if v.paper_in_ci else 'outside'}"
    if v.look and method == "anytime":
        text += f"; decided at {v.look} seeds (anytime-valid)"
    elif v.look:
        text += f"; decided at look {v.look}"
        if stopped:
            text += f" of {stopped[0]}..{stopped[-1]} seeds, kept when the plan grew"
    if v.seeds_needed and v.seeds_needed <= v.n:
        # the looks and Holm ask for a smaller p than a lone fixed test: it takes more seeds
        adjusted = "anytime-valid" if method == "anytime" else "look-adjusted"
        text += (
            f"; a fixed design at this SD would need ~{v.seeds_needed} seeds, but the "
            f"{adjusted} and Holm-adjusted test needs more"
        )
    elif v.seeds_needed:
        text += f"; ~{v.seeds_needed} seeds would decide it (fixed design at this SD)"
    return text


def _scale(runs: pd.DataFrame) -> str:
    if "scale" in runs.columns and runs["scale"].notna().any():
        return "/".join(dict.fromkeys(runs["scale"].dropna().astype(str)))
    return "unknown"


def _text_row(claim: Claim, comparison: str, ours: str, evidence: str) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(CLAIM_COLUMNS, math.nan)
    row.update(
        claim=claim.id,
        section=claim.section,
        kind=claim.kind,
        paper=claim.paper,
        comparison=comparison,
        ours=ours,
        evidence=evidence,
        variant="",
        baseline="",
        paper_effect=claim.paper_effect,
        margin=claim.margin,
        paper_in_ci=None,
        seeds_needed=None,
    )
    return row


def _decided_row(p: _Pending, v: Verdict, scale: str, method: str) -> dict[str, object]:
    ours = _ours(v, scale, p.claim.paper_effect, p.stopped, method)
    row = _text_row(p.claim, p.label, ours, v.verdict)
    row.update(
        variant=p.variant,
        baseline=p.baseline,
        estimate=v.mean,
        ci_lo=v.ci_lo,
        ci_hi=v.ci_hi,
        n=v.n,
        sd=v.sd,
        p_adj=min(v.p_direction, v.p_equivalent, v.p_smaller),
        look=v.look,
        seeds_needed=v.seeds_needed,
        paper_in_ci=v.paper_in_ci,
    )
    return row


def _cost_row(
    claim: Claim, label: str, measured: float | None, comp: Mapping[str, object] | None, sign: int
) -> dict[str, object]:
    expected = claim.expected
    if measured is not None:
        ours = (
            f"measured block ratio {fmt('ratio', measured)} "
            f"(expected {expected} = {fmt('ratio', float(expected))})"
        )
        evidence = check_cost(claim, measured)
    else:
        analytic = analytic_ratio(claim.id)
        ours = (
            f"conv formula gives {analytic} = {fmt('ratio', float(analytic))} "
            "(no measured block ratio)"
        )
        evidence = check_cost(claim, float(analytic))
    if comp is not None and math.isfinite(float(comp["macs_ratio"])):
        ours += f"; whole-net MACs ratio {fmt('ratio', float(comp['macs_ratio']) ** sign)}"
    row = _text_row(claim, label, ours, evidence)
    if comp is not None:
        row.update(variant=str(comp["variant"]), baseline=str(comp["baseline"]))
    return row


def evaluate_claims(
    claim_ids: Iterable[str],
    runs: pd.DataFrame,
    *,
    comparisons: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    cost_ratios: Mapping[str, float] | None = None,
    extra: Mapping[str, tuple[str, str]] | None = None,
    looks: Sequence[int] | None = None,
    stopped: Iterable[Mapping[str, Any]] | None = None,
    method: str = "planned",
) -> pd.DataFrame:
    """One row per (claim, comparison testing it) with its verdict; absent claims skipped.

    ``comparisons`` are ``compare_to_baseline`` rows for top-1 (computed when None);
    ``cost_ratios`` maps cost-claim ids to block-level MAC ratios; ``extra`` maps claim ids to
    (ours, evidence) computed elsewhere (the principle studies); ``looks`` are the study's
    planned looks (seed counts) when it ran ``--until-decided`` (None: one look, all seeds);
    ``stopped`` the rows kept as they stopped before the plan was extended (``stops_of``);
    ``method`` "anytime" judges every row anytime-valid at every seed count (looks, stops aside).
    """
    runs = prepare_runs(runs)
    if comparisons is None:
        comparisons = compare_to_baseline(runs, METRIC) if not runs.empty else pd.DataFrame()
    rows, pending = [], []
    n_max = int(runs["seed"].nunique()) if "seed" in runs.columns and not runs.empty else 0
    planned = sorted(set(looks)) if looks else [max(n_max, 1)]
    stops = stops_of(stopped)
    every = sorted(set(planned).union(*stops.values()))
    pooled = {k: pooled_sd(runs, k) for k in every} if not runs.empty else {}
    for cid in claim_ids:
        claim = get_claim(cid)
        if cid in (extra or {}):
            ours, evidence = (extra or {})[cid]
            rows.append(_text_row(claim, "principle study", ours, evidence))
            continue
        rows_before = len(rows)
        for _, comp in comparisons.iterrows():
            sign, confounded = match(claim, comp, runs) if claim.option else (0, [])
            if sign == 0:
                continue
            if confounded:
                # the pair differs in more than the claim's axis: shown, never given a verdict
                label = f"{comp['variant']} vs {comp['baseline']}"
                ours = f"also differs in {', '.join(confounded)}"
                row = _text_row(claim, label, ours, CONFOUNDED)
                row.update(variant=str(comp["variant"]), baseline=str(comp["baseline"]))
                rows.append(row)
                continue
            if claim.kind == "cost":
                label = f"{comp['variant']} vs {comp['baseline']}"
                rows.append(_cost_row(claim, label, (cost_ratios or {}).get(cid), comp, sign))
            else:
                found = _accuracy_rows(
                    claim, comp, sign, runs, curves, planned, pooled, stops, method
                )
                for p in found:
                    rows.append(p)
                    pending.append(p)
        if claim.kind == "cost" and cid in (cost_ratios or {}) and len(rows) == rows_before:
            rows.append(_cost_row(claim, "measured blocks", (cost_ratios or {})[cid], None, 1))
    decided = decide([p.row for p in pending], planned, method=method) if pending else []
    verdicts, scale = iter(decided), _scale(runs)
    table = [
        _decided_row(r, next(verdicts), scale, method) if isinstance(r, _Pending) else r
        for r in rows
    ]
    return pd.DataFrame(table, columns=CLAIM_COLUMNS)
