"""The four design principles of the paper's section 2, analysed: numbers and an evidence word.

Every analysis has one signature, ``(runs, curves, *, metric="test_top1", **options)``, and
returns a ``PrincipleResult``: per-configuration means with 95% intervals (``per``), the fitted
slopes or paired differences the verdict rests on (``facts``) and the evidence word
("agrees" / "disagrees" / "inconclusive"). Principle 2 reads the learning curves; the others
ignore them. ``PRINCIPLES`` registers the analyses by number and ``analyze`` runs one. Words,
plots and tables are the report layer's (``archlab.report.principles``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from archlab.analysis.anytime import p_below
from archlab.analysis.anytime import p_values as anytime_p_values
from archlab.analysis.bands import curve_band
from archlab.analysis.claims import get_claim, judge
from archlab.analysis.principle_parts import (
    Estimate,
    Paired,
    PrincipleResult,
    anytime_by_seed,
    anytime_estimate,
    by_seed,
    common_seeds,
    complete_runs,
    estimate,
    paired,
    per_config,
    seed_ols,
    tost_by_seed,
)
from archlab.analysis.stats import SlopeResult, bootstrap_slope, mean_ci

__all__ = [
    "LEVELLED",
    "PRINCIPLES",
    "Estimate",
    "Paired",
    "PrincipleResult",
    "seed_ols",
    "analyze",
    "balance",
    "epochs_to_reach",
    "principle1",
    "principle2",
    "principle3",
    "principle4",
]


# --- the four analyses ---------------------------------------------------------------------------

#: squeeze positions from early to late (principle 1: "especially early")
SQUEEZE_ORDER = ("stem", "stage_a", "stage_b")

#: Principle 2's equivalence margin on epochs to the threshold: half the interval at which the
#: curves are sampled (once an epoch), so a smaller difference in speed is below what they resolve.
SPEED_MARGIN = 0.5


def principle1(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    metric: str = "test_top1",
    level: float = 0.95,
    sequential: bool = False,
) -> PrincipleResult:
    """Accuracy against a squeeze's ratio and place (or the smallest representation size).

    With ``squeeze_at``/``squeeze_ratio`` runs (the iso-MAC design): facts ``slopes`` (per place,
    Estimate of pt per halving of the channels kept, positive = the squeeze hurts), ``mean``
    (their average) and ``early_minus_late`` (the first place's slope minus the last's, the
    interaction), ``fit`` (the seed-intercept OLS). Agrees when the squeeze hurts and hurts more
    early, both at 95%; disagrees when either points the other way; smaller than claimed when it
    hurts but not especially early: the interaction's 90% interval inside the claim's margin
    (TOST, in pt per halving). Otherwise facts ``slope``: accuracy on log2(min_repr).
    ``level``: of the intervals (two-sided; the TOST's is 1 - 2 (1 - level)). ``sequential``:
    every interval is an anytime-valid 95% confidence sequence over the seeds' own estimates
    (each seed's fit alone; their mean is the pooled fit's on a balanced design), the TOST reads
    it, and facts gain ``anytime``.
    """
    if "squeeze_at" in runs.columns and (runs["squeeze_at"].fillna("none") != "none").any():
        return _squeeze_design(runs, metric, 1.0 - level, sequential)
    df = complete_runs(runs, "min_repr", metric)
    df = df[df["min_repr"] > 0]
    if "grid_reduction" not in df.columns:
        df["grid_reduction"] = ""
    keys = ("grid_reduction", "min_repr", "variant")
    x = np.log2(df["min_repr"].to_numpy(float))
    slope = bootstrap_slope(x, df[metric], df["seed"], level=level)
    if sequential:
        slope = _slope_sequence(slope, x, df[metric], df)
    evidence = judge("better", slope.lo, slope.hi)
    facts = {"slope": slope, "anytime": sequential}
    return PrincipleResult(1, evidence, per_config(df, keys, [metric]), keys, metric, facts)


def _seed_masks(df: pd.DataFrame) -> list[np.ndarray]:
    """Row masks of the seeds whose runs cover every configuration (``variant``), in seed order."""
    seeds = df["seed"].to_numpy()
    return [seeds == s for s in common_seeds(df)]


def _slope_sequence(slope: SlopeResult, x: np.ndarray, y: Any, df: pd.DataFrame) -> SlopeResult:
    """``slope`` with its interval the anytime-valid 95% sequence over each seed's own slope."""
    yv = np.asarray(y, dtype=float)
    per_seed = []
    for m in _seed_masks(df):
        ok = m & np.isfinite(yv)  # a run that never reached a threshold has no epochs
        if np.unique(x[ok]).size >= 2:
            per_seed.append(np.polyfit(x[ok], yv[ok], 1)[0])
    seq, _ = anytime_estimate(np.array(per_seed))
    # both intervals become the sequence: verdicts read their union
    return dataclasses.replace(slope, ci_lo=seq.lo, ci_hi=seq.hi, t_lo=seq.lo, t_hi=seq.hi)


def _per_seed_fits(df: pd.DataFrame, metric: str, terms: dict[str, np.ndarray]) -> np.ndarray:
    """Coefficients of ``terms`` fitted on each full seed alone (rows: seeds, in seed order)."""
    x = np.column_stack([np.ones(len(df)), *terms.values()])
    y = df[metric].to_numpy(float)
    return np.array([np.linalg.lstsq(x[m], y[m], rcond=None)[0][1:] for m in _seed_masks(df)])


def _squeeze_design(
    runs: pd.DataFrame, metric: str, alpha: float, sequential: bool = False
) -> PrincipleResult:
    df = complete_runs(runs, "squeeze_at", "squeeze_ratio", metric).reset_index(drop=True)
    df["squeeze_at"] = df["squeeze_at"].fillna("none")
    places = [p for p in SQUEEZE_ORDER if (df["squeeze_at"] == p).any()]
    halvings = -np.log2(df["squeeze_ratio"].to_numpy(float))  # 0 for the unsqueezed baseline
    terms = {p: halvings * (df["squeeze_at"] == p).to_numpy(float) for p in places}
    keys = ("squeeze_at", "squeeze_ratio")
    per = per_config(df, keys, [metric])
    if len(places) < 2 or df["seed"].nunique() < 2:
        return PrincipleResult(1, "inconclusive", per, keys, metric, {"n_places": len(places)})
    fit = seed_ols(df, metric, terms)
    # the model's slope is accuracy per halving; the principle's loss per halving is its negative
    slopes = {p: estimate(fit, {p: -1.0}, alpha) for p in places}
    mean = estimate(fit, {p: -1.0 / len(places) for p in places}, alpha)
    contrast = {places[0]: -1.0, places[-1]: 1.0}
    inter, inter90 = estimate(fit, contrast, alpha), estimate(fit, contrast, 2 * alpha)
    if sequential:
        # each seed's own fit, in seed order: the same contrasts, anytime-valid; the TOST reads
        # the 95% sequence (each side's error at most 5%)
        coef = _per_seed_fits(df, metric, terms)
        idx = {p: i for i, p in enumerate(places)}
        slopes = {p: anytime_estimate(-coef[:, idx[p]])[0] for p in places}
        mean = anytime_estimate(-coef.mean(axis=1))[0]
        inter = anytime_estimate(coef[:, idx[places[-1]]] - coef[:, idx[places[0]]])[0]
        inter90 = inter
    margin = get_claim("principle1").margin
    if mean.lo > 0 and inter.lo > 0:
        evidence = "agrees"
    elif mean.hi < 0 or inter.hi < 0:
        evidence = "disagrees"
    elif mean.lo > 0 and -margin < inter90.lo and inter90.hi < margin:
        # bottlenecks hurt, but "especially early" is ruled out beyond the margin
        evidence = "smaller than claimed"
    else:
        evidence = "inconclusive"
    facts = {"slopes": slopes, "mean": mean, "early_minus_late": inter, "places": places}
    facts.update(early_minus_late_90=inter90, margin=margin, anytime=sequential)
    facts["fit"] = fit  # the figure draws each place's line and band from it
    return PrincipleResult(1, evidence, per, keys, metric, facts)


def epochs_to_reach(curve: pd.DataFrame, threshold: float, metric: str = "train_top1") -> float:
    """Fractional epoch where the curve first reaches ``threshold`` (linear from 0% at epoch 0)."""
    c = curve.dropna(subset=[metric]).sort_values("epoch")
    prev_e, prev_v = 0.0, 0.0
    for e, v in zip(c["epoch"].astype(float), c[metric].astype(float), strict=True):
        if v >= threshold:
            return prev_e + (e - prev_e) * (threshold - prev_v) / (v - prev_v) if v > prev_v else e
        prev_e, prev_v = e, v
    return math.nan


def _common_threshold(curves: pd.DataFrame, run_keys: pd.Series, curve: str) -> float:
    """90% of the weakest run's best accuracy on the curve: a level every run reaches."""
    mine = curves[curves["run_key"].isin(run_keys)]
    best = mine.groupby("run_key")[curve].max().dropna()
    return math.floor(0.9 * float(best.min()) * 10) / 10 if len(best) else math.nan


def principle2(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    metric: str = "test_top1",
    threshold: float | None = None,
    curve: str = "train_top1",
    sequential: bool = False,
) -> PrincipleResult:
    """Epochs to a fixed training accuracy, and final accuracy, against the coarse-grid width.

    ``per`` analyses ``epochs`` and ``metric``. facts: ``width`` (the width column),
    ``curve`` and ``threshold`` (its top-1 %, default: ``_common_threshold``), ``speed`` and
    ``final`` (SlopeResults of epochs and of accuracy on log2(width)); wider should train faster.
    When the runs are the expanded and the plain coarse module at equal MACs (the iso-MAC
    design), facts are instead ``paired_speed`` and ``paired_final``, Paired differences
    expanded - plain (epochs to the threshold; final accuracy), and ``curve_band`` (the curve's
    mean per module and epoch, ``bands.curve_band``): agrees when the expanded bank reaches the
    threshold sooner. ``sequential`` (the study added seeds round by round, so the verdict was
    looked at more than once): the speed's direction and TOST are judged anytime-valid
    (``archlab.analysis.anytime``), its interval is the 95% confidence sequence, and
    facts gain ``anytime``; the width sweep's slopes become sequences over each seed's own slope.
    """
    width = "coarse_width" if "coarse_width" in runs.columns else "width_mult"
    df = complete_runs(runs, width, metric)
    if curves is None or not {"run_key", "epoch", curve} <= set(curves.columns):
        curves = pd.DataFrame(columns=["run_key", "epoch", curve])
    given = threshold is not None
    if threshold is None:
        threshold = _common_threshold(curves, df["run_key"], curve)
    by_run = {k: g for k, g in curves.groupby("run_key")}
    df["epochs"] = [
        epochs_to_reach(by_run[k], threshold, curve) if k in by_run else math.nan
        for k in df["run_key"]
    ]
    if _iso_modules(df):
        return _paired_speed(df, curves, metric, threshold, curve, given, sequential)
    if "coarse_module" not in df.columns:
        df["coarse_module"] = ""
    keys = ("coarse_module", width)
    x = np.log2(df[width].to_numpy(float))
    speed = bootstrap_slope(x, df["epochs"], df["seed"])
    final = bootstrap_slope(x, df[metric], df["seed"])
    if sequential:  # each seed's own slope, as an anytime-valid sequence
        speed = _slope_sequence(speed, x, df["epochs"], df)
        final = _slope_sequence(final, x, df[metric], df)
    evidence = judge("worse", speed.lo, speed.hi)  # fewer epochs when wider: a negative slope
    facts = {"width": width, "curve": curve, "threshold": threshold, "speed": speed, "final": final}
    facts["anytime"] = sequential
    return PrincipleResult(
        2, evidence, per_config(df, keys, ["epochs", metric]), keys, metric, facts
    )


def _iso_modules(df: pd.DataFrame) -> bool:
    """Two configurations, the expanded and the plain coarse module, at MACs within 15%."""
    if "coarse_module" not in df.columns or set(df["coarse_module"]) != {"expanded", "plain"}:
        return False
    if df.groupby(["coarse_module", "width_mult"]).ngroups != 2:
        return False  # a width sweep: the slope analysis
    macs = df.groupby("coarse_module")["macs"].median()
    return bool(macs.max() / macs.min() <= 1.15)


def _paired_speed(
    df: pd.DataFrame,
    curves: pd.DataFrame,
    metric: str,
    threshold: float,
    curve: str,
    given: bool,
    sequential: bool = False,
) -> PrincipleResult:
    exp, plain = (df[df["coarse_module"] == m] for m in ("expanded", "plain"))
    final = paired(exp, plain, metric)
    if sequential:
        # looked at after every round: a fixed-design t/TOST would overstate the evidence
        speed, tost_p = anytime_by_seed(exp, plain, "epochs", SPEED_MARGIN)
    else:
        speed = paired(exp, plain, "epochs")
        tost_p = tost_by_seed(exp, plain, "epochs", SPEED_MARGIN)
    evidence = judge("worse", speed.lo, speed.hi)  # fewer epochs for the expanded bank
    if evidence == "inconclusive" and tost_p < 0.05:
        evidence = "equivalent"  # "trains faster" ruled out beyond what the curves resolve
    keys = ("coarse_module", "width_mult")
    facts = {
        "curve": curve,
        "threshold": threshold,
        "threshold_given": given,
        "paired_speed": speed,
        "paired_final": final,
        "speed_margin": SPEED_MARGIN,
        "speed_tost_p": tost_p,
        "anytime": sequential,
        "curve_band": curve_band(curves, df, "coarse_module", curve),
    }
    per = per_config(df, keys, ["epochs", metric])
    return PrincipleResult(2, evidence, per, keys, metric, facts)


def principle3(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    metric: str = "test_top1",
    level: float = 0.95,
    sequential: bool = False,
) -> PrincipleResult:
    """Accuracy and MACs against the 1x1 reduction ratio before spatial convolutions.

    Needs at least 4 ratios (else inconclusive, facts empty). facts: ``low`` and ``high``
    (the strongest and weakest reduction), ``diff`` (Paired, low - high), ``macs_ratio``
    (low / high), ``margin`` (points) and ``tost``: per reduced ratio (its Paired difference
    against the weakest reduction, the Holm-adjusted TOST p-value against +-margin, equivalent
    or not); ``smallest`` is the smallest ratio still equivalent; ``ci90`` maps each reduced
    ratio to the 90% t interval of its paired difference (the one TOST puts inside the
    margin). Agrees when some reduced ratio is equivalent to the weakest reduction; disagrees
    when the mildest reduction is worse by more than the margin (one-sided, Holm); at equal MACs
    the net is widened. ``level``: of the intervals; the tests run at 1 - level. ``sequential``:
    each paired difference is an anytime-valid 95% confidence sequence and its tests are read off
    it (facts gain ``anytime``).
    """
    df = complete_runs(runs, "reduce_ratio", metric)
    keys = ("reduce_ratio",)
    per = per_config(df, keys, [metric])
    if len(per) < 4:
        return PrincipleResult(3, "inconclusive", per, keys, metric)
    margin = get_claim("principle3").margin
    if df["macs"].nunique() > 1 and per["macs"].max() / per["macs"].min() < 1.15:
        return _tost_design(df, per, keys, metric, margin, 1.0 - level, sequential)
    low, high = per["reduce_ratio"].iloc[0], per["reduce_ratio"].iloc[-1]
    a, b = df[df["reduce_ratio"] == low], df[df["reduce_ratio"] == high]
    diff = paired(a, b, metric, level, sequential)
    facts = {
        "low": low,
        "high": high,
        "diff": diff,
        "macs_ratio": float(per["macs"].iloc[0] / per["macs"].iloc[-1]),
        "margin": margin,
        "anytime": sequential,
    }
    return PrincipleResult(3, judge("no_worse", diff.lo, diff.hi, margin), per, keys, metric, facts)


def _tost_design(
    df: pd.DataFrame,
    per: pd.DataFrame,
    keys: tuple[str, ...],
    metric: str,
    margin: float,
    alpha: float = 0.05,
    sequential: bool = False,
) -> PrincipleResult:
    """Principle 3 at equal MACs: which reduced ratios are equivalent to the weakest one."""
    high = float(per["reduce_ratio"].iloc[-1])
    ref = df[df["reduce_ratio"] == high]
    rows, p_equiv, p_worse, ci90 = [], [], [], {}
    for ratio in per["reduce_ratio"].iloc[:-1]:
        mine = df[df["reduce_ratio"] == ratio]
        a, b = by_seed(mine, ref, metric)
        if sequential:  # the tests read the 95% confidence sequence (each side at most 5%)
            d, looks = anytime_estimate((a - b)[np.isfinite(a - b)])
            rows.append((float(ratio), Paired(d.value, d.lo, d.hi, len(looks))))
            ci90[float(ratio)] = (d.lo, d.hi)
            p_equiv.append(anytime_p_values(looks, margin, None)[1])
            p_worse.append(p_below(looks, -margin))
            continue
        rows.append((float(ratio), paired(mine, ref, metric, 1.0 - alpha)))
        # TOST at alpha = this 1 - 2 alpha interval inside +-margin
        ci90[float(ratio)] = mean_ci(a - b, 1.0 - 2 * alpha)[1:]
        p_equiv.append(ttost_paired(a, b, -margin, margin)[0] if len(a) >= 2 else 1.0)
        # one-sided: is the reduction worse than the margin?
        worse = stats.ttest_1samp(a - b, -margin, alternative="less").pvalue if len(a) >= 2 else 1.0
        p_worse.append(float(worse) if math.isfinite(worse) else 1.0)
    adj_eq = multipletests(p_equiv, method="holm")[1]
    adj_worse = multipletests(p_worse, method="holm")[1]
    tost = [(r, d, float(p), bool(p < alpha)) for (r, d), p in zip(rows, adj_eq, strict=True)]
    equivalent = [r for r, _, _, ok in tost if ok]
    if equivalent:
        evidence = "agrees"
    elif adj_worse[-1] < alpha:  # the mildest reduction loses more than the margin
        evidence = "disagrees"
    else:
        evidence = "inconclusive"
    low = float(per["reduce_ratio"].iloc[0])
    facts = {
        "low": low,
        "high": high,
        "diff": rows[0][1],
        "macs_ratio": float(per["macs"].iloc[0] / per["macs"].iloc[-1]),
        "margin": margin,
        "tost": tost,
        "smallest": min(equivalent) if equivalent else None,
        "ci90": ci90,
        "anytime": sequential,
    }
    return PrincipleResult(3, evidence, per, keys, metric, facts)


def principle4(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    metric: str = "test_top1",
    tolerance: float = 0.02,
    level: float = 0.95,
    sequential: bool = False,
) -> PrincipleResult:
    """Iso-MAC depth/width family: accuracy against depth, points off the MAC budget flagged.

    ``per`` adds ``macs_dev`` (MACs / family median - 1) and ``flag`` (|macs_dev| above
    ``tolerance``). facts: ``tolerance``, ``vertex`` (``_vertex`` on the unflagged depths) and
    ``balance``'s facts on the unflagged points; ``level``: of every interval. ``sequential``:
    the paired differences are anytime-valid 95% confidence sequences, and the quadratic's vertex
    (which has no such form) is shown but decides nothing (facts gain ``anytime``).
    """
    df = complete_runs(runs, "depth_mult", "width_mult", "macs", metric)
    keys = ("depth_mult", "width_mult")
    per = per_config(df, keys, [metric])
    per["macs_dev"] = per["macs"] / per["macs"].median() - 1.0
    per["flag"] = per["macs_dev"].abs() > tolerance
    evidence, facts = balance(df, per[~per["flag"]], metric, level, sequential)
    on_budget = per[~per["flag"]]["depth_mult"]
    on = df[df["depth_mult"].isin(on_budget)].reset_index(drop=True)
    vertex = _vertex(on, metric, level)
    # each member's learning rate, where the study chose one per member (tune_grid)
    lrs = (
        runs[runs["status"] == "complete"].groupby("depth_mult")["lr"].first().to_dict()
        if "lr" in runs.columns
        else {}
    )
    # the vertex decides only on a dense grid: with 4 depths one collapsed extreme bends the fit
    dense = on_budget.nunique() >= 5 and not sequential
    if vertex is not None and evidence != "disagrees" and dense:
        inside = vertex["depth"].lo > on_budget.min() and vertex["depth"].hi < on_budget.max()
        if vertex["curvature"].hi < 0 and inside:
            evidence = "agrees"  # a concave fit peaking inside the sampled depths, at 95%
    facts["lr"] = {float(d): float(v) for d, v in lrs.items()} if len(set(lrs.values())) > 1 else {}
    facts.update(tolerance=tolerance, vertex=vertex, anytime=sequential)
    return PrincipleResult(4, evidence, per, keys, metric, facts)


def _vertex(df: pd.DataFrame, metric: str, level: float = 0.95) -> dict[str, Any] | None:
    """Quadratic in log2(depth) with seed intercepts: curvature and the best depth (delta method).

    None with fewer than 4 depths or 2 seeds. ``depth`` is the vertex as a depth multiplier (an
    Estimate, as is ``curvature``); ``fit`` the OLS the figure draws its band from.
    """
    if df["depth_mult"].nunique() < 4 or df["seed"].nunique() < 2:
        return None
    ld = np.log2(df["depth_mult"].to_numpy(float))
    fit = seed_ols(df, metric, {"l": ld, "l2": ld**2})
    b1, b2 = fit.params["l"], fit.params["l2"]
    curvature = estimate(fit, {"l2": 1.0}, 1.0 - level)
    cov = fit.cov_params().loc[["l", "l2"], ["l", "l2"]].to_numpy()
    # d(-b1 / 2 b2) / d(b1, b2) = (-1 / 2 b2, b1 / 2 b2^2)
    grad = np.array([-1 / (2 * b2), b1 / (2 * b2**2)])
    v, se = -b1 / (2 * b2), math.sqrt(float(grad @ cov @ grad))
    half = float(stats.t.ppf(0.5 + level / 2, fit.df_resid)) * se
    with np.errstate(over="ignore"):  # a flat fit puts its vertex at infinity: unbounded ends
        depth = Estimate(2.0**v, 2.0 ** (v - half), 2.0 ** (v + half), math.nan)
    return {"curvature": curvature, "depth": depth, "fit": fit}


def balance(
    df: pd.DataFrame,
    per: pd.DataFrame,
    metric: str,
    level: float = 0.95,
    sequential: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Agrees when an interior depth beats both extremes; disagrees when an extreme beats all.

    ``per`` is the iso-MAC family sorted by depth. An interior winner is tested against both
    extremes, an extreme one against the best interior point. facts: ``n_configs``, and with
    3 or more: ``best`` ((depth_mult, width_mult)) and ``rivals`` ([((depth_mult, width_mult),
    Paired best - rival), ...]).
    """
    if len(per) < 3:
        return "inconclusive", {"n_configs": len(per)}
    means = per[f"{metric}_mean"].to_numpy(float)
    best = int(np.nanargmax(means))
    interior = 0 < best < len(per) - 1
    rivals = [0, len(per) - 1] if interior else [1 + int(np.nanargmax(means[1:-1]))]

    def config(i: int) -> tuple[float, float]:
        return per["depth_mult"].iloc[i], per["width_mult"].iloc[i]

    def runs_of(i: int) -> pd.DataFrame:
        d, w = config(i)
        return df[(df["depth_mult"] == d) & (df["width_mult"] == w)]

    parts = [
        (config(r), paired(runs_of(best), runs_of(r), metric, level, sequential)) for r in rivals
    ]
    if all(judge("better", p.lo, p.hi) == "agrees" for _, p in parts):
        evidence = "agrees" if interior else "disagrees"
    else:
        evidence = "inconclusive"
    return evidence, {"n_configs": len(per), "best": config(best), "rivals": parts}


#: The analyses by principle number, all with the signature (runs, curves, *, metric, **options).
#: principles whose intervals and tests take a ``level``, so a study's planned looks can judge
#: each look at its own (``principle_looks``); principle 2 uses its anytime-valid form instead
LEVELLED = frozenset({1, 3, 4})

PRINCIPLES: dict[int, Callable[..., PrincipleResult]] = {
    1: principle1,
    2: principle2,
    3: principle3,
    4: principle4,
}


def principle_number(kind: str) -> int | None:
    """The principle a study kind names ("principle2" -> 2); None for the other kinds."""
    if not kind.startswith("principle"):
        return None
    n = kind.removeprefix("principle")
    if not n.isdigit() or int(n) not in PRINCIPLES:
        raise ValueError(f"unknown study kind {kind!r}; valid: compare, search, principle1..4")
    return int(n)


def analyze(
    n: int, runs: pd.DataFrame, curves: pd.DataFrame | None = None, **options: Any
) -> PrincipleResult:
    """Run principle ``n``'s analysis; ValueError names the valid numbers.

    ``sequential=True`` says the study looked at its verdict after every round of seeds with no
    plan of looks: every analysis then reads its intervals as anytime-valid 95% confidence
    sequences.
    """
    if n not in PRINCIPLES:
        raise ValueError(f"unknown principle {n!r}; valid: {', '.join(map(str, PRINCIPLES))}")
    return PRINCIPLES[n](runs, curves, **options)
