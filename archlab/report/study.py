"""A study's report: claim table, summaries, comparisons, plots and CSVs of one study's runs.

``render_report`` writes report.md, a self-contained report.html (``archlab.report.doc``), one
PNG per figure the data supports and the summary, comparison and claim tables as CSV. A
principle study adds its principle's plot, verdict and detail (``archlab.report.principles``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archlab import __version__
from archlab.analysis.claims import CLAIMS, get_claim
from archlab.analysis.evidence import evaluate_claims
from archlab.analysis.stats import (
    COMPARISON_COLUMNS,
    compare_to_baseline,
    front_metric,
    pareto_front,
    prepare_runs,
    summarize,
)
from archlab.io import CSV_FLOAT, write_atomic
from archlab.report.design import design_line, noise_line
from archlab.report.doc import (
    Doc,
    fmt,
    fmt_date,
    fmt_interval,
    macs_unit,
    quantity_of,
    write_doc,
)
from archlab.report.plots import (
    MACS_LABEL,
    MACS_NOTE,
    caption_from,
    first_value,
    metric_label,
    plot_acc_vs_macs,
    plot_cost_bars,
    plot_edf,
    plot_forest,
    plot_learning_curves,
    plot_reliability,
)
from archlab.report.principles import Rendered, evidence_of, principle_of

EVIDENCE_NOTE = (
    "Claim rows: differences of test top-1 in points, oriented so that positive means the "
    "paper's choice is better, paired on seeds complete in both; 95% Student-t intervals (with 4 "
    "or more variants the noise is the pooled residual SD of an OLS with variant and seed "
    "factors). Verdicts: agrees / disagrees = a two-sided paired t-test decides the sign; "
    "equivalent = two one-sided tests put the difference inside the claim's margin (default "
    "\u00b10.5 pt); smaller than claimed = decidedly below the paper's number; inconclusive = "
    "none of these yet (with the seeds a fixed design would need). Alpha is spent over the "
    "study's planned looks (Lan-DeMets linear spending with exact group-sequential boundaries, "
    "calibrated for t-tests by simulation, so looking after every round of seeds keeps the 5% "
    "error rate) and Holm-adjusted across the rows. "
    "The comparisons table below is per variant: bootstrap intervals only from 10 seeds on."
)
EARLY_FRACTION = 0.3  # zoom panel: the aux-head claim is about the first epochs


# --- tables shown in the report ------------------------------------------------------------------


def _verdict_text(row: Mapping[str, Any]) -> str:
    if row["verdict"] != "inconclusive":
        return str(row["verdict"])
    if row["n_pairs"] < 2:
        return "inconclusive (fewer than 2 paired seeds)"
    return "inconclusive (a 95% interval spans 0)"


def _summary_view(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({"variant": summary["variant"]})
    out["runs (complete/diverged/failed)"] = [
        f"{r.n_runs} ({r.n_complete}/{r.n_diverged}/{r.n_failed})" for r in summary.itertuples()
    ]
    for m in metrics:
        out[f"{metric_label(m)} mean [95% CI]"] = [
            fmt_interval(quantity_of(m), a, b, c)
            for a, b, c in zip(
                summary[f"{m}_mean"], summary[f"{m}_ci_lo"], summary[f"{m}_ci_hi"], strict=True
            )
        ]
    if "test_top1_std" in summary.columns:
        out["top-1 seed SD (pt)"] = summary["test_top1_std"].map(lambda v: fmt("accuracy", v))
    if "macs" in summary.columns:
        unit = macs_unit(summary["macs"])
        out[f"MACs ({unit})"] = summary["macs"].map(lambda v: fmt("macs", v, unit=unit))
    if "params" in summary.columns:
        out["params"] = summary["params"].map(lambda v: fmt("count", v))
    if "train_time_s_mean" in summary.columns:
        out["train time (s)"] = summary["train_time_s_mean"].map(lambda v: fmt("seconds", v))
    if "pareto" in summary.columns:
        out["Pareto"] = summary["pareto"].map(lambda v: "yes" if v else "")
    return out


def _comparison_view(comp: pd.DataFrame) -> pd.DataFrame:
    quantities = [quantity_of(m) for m in comp["metric"]]

    def interval(lo: str, hi: str) -> list[str]:
        return [
            f"[{fmt(q, a, sign=True)}, {fmt(q, b, sign=True)}]"
            for a, b, q in zip(comp[lo], comp[hi], quantities, strict=True)
        ]

    return pd.DataFrame(
        {
            "metric": comp["metric"].map(metric_label),
            "variant": comp["variant"],
            "group": comp["group"],
            "baseline": comp["baseline"],
            "paired seeds": comp["n_pairs"],
            "mean diff": [
                fmt(q, v, sign=True) for v, q in zip(comp["mean_diff"], quantities, strict=True)
            ],
            "bootstrap 95% CI": interval("ci_lo", "ci_hi"),
            "t 95% CI": interval("t_lo", "t_hi"),
            "sign-flip p": comp["p_value"].map(lambda v: fmt("p_value", v)),
            "verdict": [_verdict_text(r) for _, r in comp.iterrows()],
            "MACs ratio": comp["macs_ratio"].map(lambda v: fmt("ratio", v)),
        }
    )


def _claims_view(claims: pd.DataFrame) -> pd.DataFrame:
    return claims[["claim", "paper", "comparison", "ours", "evidence"]]


def _title(doc: Doc, meta: Mapping[str, Any], runs: pd.DataFrame) -> None:
    study = meta.get("study", first_value(runs, "study", "study"))
    doc.add("h1", f"{study}: {meta.get('title', '')}".rstrip(": "))
    if meta.get("description"):
        doc.add("p", meta["description"])


#: the answer table's interval column, by how the study's verdicts treat their looks
INTERVAL_HEADERS = {
    "planned": "ours [95% CI, unadjusted]",
    "anytime": "ours [95% confidence sequence]",
}


def _answer_row(row: pd.Series, method: str = "planned") -> dict[str, object]:
    """One verdict line: the claim, the paper's number, the pair, our number, n, the verdict."""
    if pd.notna(row.get("estimate")):
        ours = fmt_interval("accuracy", row["estimate"], row["ci_lo"], row["ci_hi"], sign=True)
        ours += " pt"
        n = fmt("count", row["n"])
    else:
        ours, n = str(row["ours"]).split(";")[0], ""
    return {
        "claim": row["claim"],
        "paper": CLAIMS[row["claim"]].paper_number if row["claim"] in CLAIMS else row["paper"],
        "pair": row["comparison"],
        INTERVAL_HEADERS[method]: ours,
        "seeds": n,
        "verdict": row["evidence"],
    }


def _answer_section(
    doc: Doc, claims: pd.DataFrame, forest: Path | None, method: str = "planned"
) -> None:
    doc.add("h2", "Answer: the paper's claims at this scale")
    if len(claims):
        rows = [_answer_row(r, method) for _, r in claims.iterrows()]
        doc.add("table", pd.DataFrame(rows))
        if forest is not None:  # right under the table: both on the first screen
            alt = "claims: differences with 95% intervals against the paper's numbers"
            doc.add("img", forest, alt)
        doc.add(
            "p",
            "Verdicts are anytime-valid: each interval is a 95% confidence sequence, valid at "
            "every seed count, and the rows are adjusted across (Holm), so an interval can "
            "exclude 0 while the verdict is still open; details below."
            if method == "anytime"
            else "Verdicts spend alpha over the planned looks and adjust across rows (Holm), so "
            "an unadjusted interval can exclude 0 while the verdict is still open; details below.",
        )
    else:
        doc.add("p", "No claim of the paper is tested by this study's comparisons.")


def _header(doc: Doc, meta: Mapping[str, Any], runs: pd.DataFrame) -> None:
    doc.add("h2", "Provenance")
    study = meta.get("study", first_value(runs, "study", "study"))
    seeds = meta.get("seeds") or (sorted(runs["seed"].unique().tolist()) if "seed" in runs else [])
    doc.add(
        "kv",
        [
            ("study", study),
            ("dataset", meta.get("dataset") or first_value(runs, "dataset", "unknown")),
            ("scale", meta.get("scale") or first_value(runs, "scale", "unknown")),
            ("seeds", ", ".join(str(s) for s in seeds) + f" ({len(seeds)})"),
            ("baseline", meta.get("baseline", "")),
            ("archlab version", meta.get("version") or first_value(runs, "version", __version__)),
            ("commit", meta.get("commit") or first_value(runs, "commit", "unknown")),
            ("machine", meta.get("machine", "unknown")),
            ("numerics", _numerics_text(meta.get("numerics"))),
            ("date", fmt_date()),
        ],
    )


def _recipe_section(doc: Doc, meta: Mapping[str, Any]) -> None:
    recipe = meta.get("recipe") or {}
    if recipe:
        doc.add("h2", "Recipe")
        values = [_setting_text(v) for v in recipe.values()]
        table = pd.DataFrame({"key": list(recipe), "value": values})
        doc.add("table", table, "the training recipe, one setting a row")


def _setting_text(value: object) -> str:
    """A recipe value as shown: numbers in the "setting" / "count" formats, the rest as is."""
    if isinstance(value, float):
        return fmt("setting", value)
    if isinstance(value, int) and not isinstance(value, bool):
        return fmt("count", value)
    return str(value)


def _numerics_text(numerics: Mapping[str, Any] | None) -> str:
    if not numerics:
        return "not pinned (runs planned before numerics were recorded)"
    bf16 = "yes" if numerics.get("cpu_bf16") else "no"
    return f"{numerics.get('device')} {numerics.get('precision')} (CPU native bf16: {bf16})"


# --- calibration ---------------------------------------------------------------------------------


def pool_bins(entries: Sequence[str | Mapping[str, Any]]) -> dict[str, list[float]]:
    """Count-weighted pooling of several runs' reliability bins."""
    bins = [json.loads(e) if isinstance(e, str) else e for e in entries]
    conf = np.array([b["bin_conf"] for b in bins], dtype=float)
    acc = np.array([b["bin_acc"] for b in bins], dtype=float)
    acc = acc / 100.0 if np.nanmax(acc, initial=0.0) > 1.0 else acc  # percent accepted too
    count = np.array([b.get("bin_count", np.ones(conf.shape[1])) for b in bins], dtype=float)
    total = count.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins become NaN, not drawn
        return {
            "bin_conf": (np.nansum(conf * count, axis=0) / total).tolist(),
            "bin_acc": (np.nansum(acc * count, axis=0) / total).tolist(),
            "bin_count": total.tolist(),
        }


def _reliability_bins(runs: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Pooled reliability bins per variant over its complete runs."""
    done = runs[(runs["status"] == "complete") & runs["reliability"].notna()]
    return {
        str(v): pool_bins(g["reliability"].tolist()) for v, g in done.groupby("variant", sort=False)
    }


def _has_reliability(runs: pd.DataFrame) -> bool:
    return "reliability" in runs.columns and runs["reliability"].notna().any()


# --- the study report ----------------------------------------------------------------------------


def render_report(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    meta: Mapping[str, Any],
    out_dir: Path,
    *,
    n_boot: int = 10000,
) -> dict[str, Path]:
    """Write report.md, a self-contained report.html, the PNG plots and the table CSVs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = prepare_runs(runs)
    curves = curves if curves is not None else pd.DataFrame()
    kind = str(meta.get("kind", "compare"))
    calib = _has_reliability(runs)
    cap = caption_from(runs, meta)
    files: dict[str, Path] = {}

    summary = summarize(runs)
    chosen_on = front_metric(summary)
    if "macs" in summary.columns and f"{chosen_on}_mean" in summary.columns:
        summary["pareto"] = pareto_front(summary, "macs", f"{chosen_on}_mean")
    comparisons = _comparisons(runs, meta, calib, n_boot)
    # how the verdicts treat their looks (a study that never ran --until-decided: planned)
    method = (meta.get("until_decided") or {}).get("method", "planned")
    principle = principle_of(kind, runs, curves, out_dir, meta)
    if principle and principle.plot:  # its verdict is the claim table's row for the principle
        files[principle.plot.name] = principle.plot
    claim_ids = list(meta.get("claims") or CLAIMS)
    claims = evaluate_claims(
        claim_ids,
        runs,
        comparisons=comparisons[comparisons["metric"] == "test_top1"],
        curves=curves,
        cost_ratios=meta.get("cost_ratios") or _block_ratios(),
        extra={kind: (principle.verdict, evidence_of(principle.verdict))} if principle else None,
        looks=meta.get("looks"),
        stopped=(meta.get("until_decided") or {}).get("stopped_rows"),
        method=method,
    )

    for name, table in (("summary", summary), ("comparisons", comparisons), ("claims", claims)):
        text = table.to_csv(index=False, float_format=CSV_FLOAT)
        files[f"{name}.csv"] = write_atomic(out_dir / f"{name}.csv", text)
    plots = _study_plots(runs, curves, summary, claim_ids, kind, calib, cap, out_dir)
    files.update({p.name: p for p, _ in plots})

    forest = plot_forest(claims, out_dir / "claims_forest.png", caption=cap)
    if forest is not None:
        files[forest.name] = forest

    doc = Doc()
    # the answer first: the question, the verdicts and their forest plot fill the first screen
    _title(doc, meta, runs)
    _answer_section(doc, claims, forest, method)
    _header(doc, meta, runs)
    _claims_section(doc, claims, runs, meta)
    _recipe_section(doc, meta)
    _summary_section(doc, summary, _shown_metrics(summary, calib), cap)
    _comparisons_section(doc, comparisons)
    if kind == "search" and "pareto" in summary.columns:
        doc.add("h2", f"Pareto front (fewest MACs for the {metric_label(chosen_on)})")
        front = summary[summary["pareto"]].sort_values("macs")
        shown = list(dict.fromkeys([chosen_on, "test_top1"]))  # test: reported, never chosen on
        doc.add("table", _summary_view(front, shown), "the variants on the Pareto front")
    if principle:
        _principle_section(doc, kind, principle)
    _plots_section(doc, plots)
    title = f"{meta.get('study', 'study')}: {meta.get('title', '')}"
    files.update(write_doc(doc, title, out_dir))
    return files


def _shown_metrics(summary: pd.DataFrame, calib: bool) -> list[str]:
    """The metrics of the summary table: accuracies, and NLL/ECE with calibration data."""
    metrics = [m for m in ("test_top1", "test_top5", "val_top1") if f"{m}_mean" in summary]
    if calib:
        metrics += [m for m in ("test_nll", "test_ece") if f"{m}_mean" in summary]
    return metrics


def _claims_section(
    doc: Doc, claims: pd.DataFrame, runs: pd.DataFrame, meta: Mapping[str, Any]
) -> None:
    doc.add("h2", "Paper claim vs our measurement, in full")
    if len(claims):
        doc.add(
            "table", _claims_view(claims), "every claim row: the paper, the pair, ours, evidence"
        )
    else:
        doc.add("p", "No claim of the paper is tested by this study's comparisons.")
    doc.add("p", EVIDENCE_NOTE)
    doc.add("p", noise_line(runs))
    doc.add("p", design_line(meta))


def _summary_section(doc: Doc, summary: pd.DataFrame, metrics: Sequence[str], cap: str) -> None:
    doc.add("h2", "Summary per variant")
    doc.add("p", f"Means and 95% Student-t intervals over complete runs; {cap}.")
    doc.add("table", _summary_view(summary, metrics), "one row per variant: means, 95% CIs, costs")


def _comparisons_section(doc: Doc, comparisons: pd.DataFrame) -> None:
    doc.add("h2", "Comparisons with the baseline")
    if len(comparisons):
        label = "paired differences against the baseline, per variant and metric"
        doc.add("table", _comparison_view(comparisons), label)
    else:
        doc.add("p", "No comparison: the study has no baseline, or no variant besides it.")


def _plots_section(doc: Doc, plots: Sequence[tuple[Path, str]]) -> None:
    doc.add("h2", "Plots")
    for path, alt in plots:
        doc.add("img", path, alt)
    doc.add("h2", "Notes")
    doc.add("p", MACS_NOTE)


def _principle_section(doc: Doc, kind: str, principle: Rendered) -> None:
    doc.add("h2", f"Principle {kind[-1]}: {get_claim(kind).text}")
    doc.add("p", principle.verdict)
    doc.add("table", principle.detail, "one row per configuration: means, 95% CIs, MACs")
    if principle.plot:
        doc.add("img", principle.plot, f"principle {kind[-1]}")
    if principle.missing:
        doc.add("p", f"Not drawn: {principle.missing}.")


def _comparisons(
    runs: pd.DataFrame, meta: Mapping[str, Any], calib: bool, n_boot: int
) -> pd.DataFrame:
    """Top-1 (and NLL, ECE with calibration data) against the baseline; empty without one."""
    empty = pd.DataFrame(columns=COMPARISON_COLUMNS)
    if not (meta.get("baseline") or runs["is_baseline"].any()):
        return empty  # e.g. a random search
    metrics = ["test_top1", *(("test_nll", "test_ece") if calib else ())]
    tables = [
        compare_to_baseline(runs, m, baseline=meta.get("baseline"), n_boot=n_boot)
        for m in metrics
        if m in runs.columns
    ]
    return (
        pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COMPARISON_COLUMNS)
    )


def _study_plots(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    summary: pd.DataFrame,
    claim_ids: Sequence[str],
    kind: str,
    calib: bool,
    cap: str,
    out_dir: Path,
) -> list[tuple[Path, str]]:
    """Every figure that the data supports, with its alt text."""
    plots = []
    if {"macs", "test_top1_mean"} <= set(summary.columns) and summary["macs"].notna().any():
        metric = front_metric(summary)
        p = plot_acc_vs_macs(summary, out_dir / "acc_vs_macs.png", caption=cap, metric=metric)
        plots.append((p, f"{metric_label(metric)} vs {MACS_LABEL}"))
    if {"macs", "params"} <= set(summary.columns):
        plots.append(
            (plot_cost_bars(summary, out_dir / "cost.png", caption=cap), "MACs and params")
        )
    has_curves = {"variant", "epoch", "test_top1"} <= set(curves.columns)
    if has_curves and curves["test_top1"].notna().any():
        # The aux-head claim is about early epochs: zoom on them when the study varies the head.
        aux_varies = "aux_head" in runs.columns and runs["aux_head"].nunique() > 1
        zoom = EARLY_FRACTION if aux_varies and "aux_converge" in claim_ids else None
        p = plot_learning_curves(curves, out_dir / "curves.png", caption=cap, zoom=zoom)
        plots.append((p, "learning curves (test top-1 per epoch)"))
    if kind == "search" and "test_top1" in runs.columns:
        done = runs[runs["status"] == "complete"]
        p = plot_edf({"all models": 100.0 - done["test_top1"]}, out_dir / "edf.png", caption=cap)
        plots.append((p, "error EDF"))
    if calib:
        p = plot_reliability(_reliability_bins(runs), out_dir / "reliability.png", caption=cap)
        plots.append((p, "reliability diagram"))
    return plots


def _block_ratios() -> dict[str, float]:
    """Block-level MAC ratios counted by fvcore on the registered blocks (for cost claims)."""
    from archlab.arch.cost import measured_block_ratios

    return measured_block_ratios()
