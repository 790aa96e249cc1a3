"""Study reports: Markdown + self-contained HTML with plots, claim table, summaries and CSVs.

A report is built once as a list of blocks (heading, paragraph, table, image, ...) and rendered
twice: to Markdown (images as relative links) and to HTML (images as base64 data: URIs, inline
CSS, nothing fetched). Every string that came from a study file or a result table is escaped
in both renderings. Files are written atomically, the HTML last, so an interrupted render never
leaves a half-written report.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archlab import __version__
from archlab.claims import CLAIMS, evaluate_claims, get_claim, judge, signed
from archlab.plots import (
    MACS_LABEL,
    caption_line,
    metric_label,
    plot_acc_vs_macs,
    plot_cost_bars,
    plot_edf,
    plot_learning_curves,
    plot_reliability,
    plot_xy_ci,
    write_atomic,
)
from archlab.stats import (
    COMPARISON_COLUMNS,
    SlopeResult,
    bootstrap_slope,
    compare_to_baseline,
    mean_ci,
    paired_diff,
    pareto_front,
    prepare_runs,
    summarize,
)

MACS_NOTE = (
    "MACs count multiply-adds of the convolution and linear layers per image at inference, "
    "aux head excluded: 1 MAC = 1 multiply-add (fvcore counts the same but calls them flops; "
    "torch's FlopCounterMode counts 2 per MAC)."
)
EVIDENCE_NOTE = (
    "Differences are variant minus baseline in points of top-1, paired on seeds complete in both. "
    "Intervals are 95%: the verdict needs the paired bootstrap interval and the paired Student-t "
    "interval on the same side of zero (the bootstrap alone is too narrow with few seeds); "
    "otherwise it is inconclusive. The claim table uses the union of both intervals."
)
EARLY_FRACTION = 0.3  # zoom panel: the aux-head claim is about the first epochs

_CSS = """
body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2} img{max-width:100%;border:1px solid #eee}
figure{margin:1em 0} figcaption{font-size:.85em;color:#555}
blockquote{border-left:4px solid #ccc;margin:1em 0;padding:.2em 1em;color:#444}
.agrees,.better{color:#0a0} .disagrees,.worse{color:#b00} .inconclusive{color:#a60}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto}
"""


# --- the document model --------------------------------------------------------------------------


@dataclass
class _Doc:
    """The blocks of a report, rendered alike to Markdown and HTML."""

    # (kind, *payload): ("h1"|"h2"|"h3"|"p"|"quote"|"pre", text), ("table", DataFrame),
    # ("img", png path, alt text), ("kv", [(key, value), ...]).

    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, kind: str, *payload: Any) -> None:
        self.blocks.append((kind, *payload))


def _md_text(value: object) -> str:
    # Markdown passes raw HTML through: "<" is escaped so data cannot open a tag; "|" splits cells.
    text = str(value).replace("<", "&lt;").replace("|", "\\|")
    return " ".join(text.splitlines())


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(_md_text(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_md_text(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join([head, rule, *body])


def _to_markdown(doc: _Doc, out_dir: Path) -> str:
    parts = []
    for kind, *p in doc.blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + _md_text(p[0]))
        elif kind == "p":
            parts.append(_md_text(p[0]))
        elif kind == "quote":
            parts.append("> " + _md_text(p[0]))
        elif kind == "pre":
            parts.append("```\n" + str(p[0]).replace("```", "'''") + "\n```")
        elif kind == "table":
            parts.append(_md_table(p[0]))
        elif kind == "kv":
            parts.append("\n".join(f"- **{_md_text(k)}**: {_md_text(v)}" for k, v in p[0]))
        elif kind == "img":
            rel = os.path.relpath(p[0], out_dir).replace(os.sep, "/")
            parts.append(f"![{_md_text(p[1])}]({rel})")
    return "\n\n".join(parts) + "\n"


def _html_cell(value: object) -> str:
    text = html.escape(str(value))
    word = str(value).split(" ")[0]
    if word in ("agrees", "disagrees", "inconclusive", "better", "worse"):
        return f'<td class="{word}">{text}</td>'
    return f"<td>{text}</td>"


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = ["<tr>" + "".join(_html_cell(v) for v in r) + "</tr>" for r in df.itertuples(False)]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _to_html(doc: _Doc, title: str) -> str:
    parts = []
    for kind, *p in doc.blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(str(p[0]))}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(str(p[0]))}</p>")
        elif kind == "quote":
            parts.append(f"<blockquote>{html.escape(str(p[0]))}</blockquote>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(str(p[0]))}</pre>")
        elif kind == "table":
            parts.append(_html_table(p[0]))
        elif kind == "kv":
            items = "".join(
                f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in p[0]
            )
            parts.append(f"<ul>{items}</ul>")
        elif kind == "img":
            alt = html.escape(str(p[1]))
            img = f'<img src="{_data_uri(p[0])}" alt="{alt}">'
            parts.append(f"<figure>{img}<figcaption>{alt}</figcaption></figure>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _write_doc(doc: _Doc, title: str, out_dir: Path) -> dict[str, Path]:
    from archlab.study import pause_for_tests

    md = write_atomic(out_dir / "report.md", _to_markdown(doc, out_dir))
    pause_for_tests("render")  # tests kill a study here: report.md new, report.html old
    page = write_atomic(out_dir / "report.html", _to_html(doc, title))
    return {"report.md": md, "report.html": page}


# --- formatting ----------------------------------------------------------------------------------


def _num(x: object, digits: int = 2) -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


def _mean_ci_text(mean: float, lo: float, hi: float, digits: int = 2) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{mean:.{digits}f} (1 run, no CI)"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _millions(x: object) -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    return f"{v / 1e6:,.2f}" if math.isfinite(v) else "n/a"


def _verdict_text(row: Mapping[str, Any]) -> str:
    if row["verdict"] != "inconclusive":
        return str(row["verdict"])
    if row["n_pairs"] < 2:
        return "inconclusive (fewer than 2 paired seeds)"
    return "inconclusive (a 95% interval spans 0)"


def _caption_from(runs: pd.DataFrame, meta: Mapping[str, Any] | None = None) -> str:
    meta = meta or {}
    dataset = meta.get("dataset") or _first(runs, "dataset", "unknown dataset")
    scale = meta.get("scale") or _first(runs, "scale", "unknown")
    seeds = meta.get("seeds")
    n_seeds = len(seeds) if seeds else int(runs["seed"].nunique()) if "seed" in runs else 0
    return caption_line(str(dataset), str(scale), n_seeds)


def _first(runs: pd.DataFrame, col: str, default: str) -> str:
    if col in runs.columns and runs[col].notna().any():
        return str(runs[col].dropna().iloc[0])
    return default


# --- tables shown in the report ------------------------------------------------------------------


def _summary_view(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({"variant": summary["variant"]})
    out["runs (complete/diverged/failed)"] = [
        f"{r.n_runs} ({r.n_complete}/{r.n_diverged}/{r.n_failed})" for r in summary.itertuples()
    ]
    for m in metrics:
        digits = 4 if m in ("test_nll", "test_ece") else 2
        out[f"{metric_label(m)} mean [95% CI]"] = [
            _mean_ci_text(a, b, c, digits)
            for a, b, c in zip(
                summary[f"{m}_mean"], summary[f"{m}_ci_lo"], summary[f"{m}_ci_hi"], strict=True
            )
        ]
    if "macs" in summary.columns:
        out["MACs (M)"] = summary["macs"].map(_millions)
    if "params" in summary.columns:
        out["params (M)"] = summary["params"].map(_millions)
    if "train_time_s_mean" in summary.columns:
        out["train time (s)"] = summary["train_time_s_mean"].map(lambda v: _num(v, 0))
    if "pareto" in summary.columns:
        out["Pareto"] = summary["pareto"].map(lambda v: "yes" if v else "")
    return out


def _comparison_view(comp: pd.DataFrame) -> pd.DataFrame:
    digits = [4 if m in ("test_nll", "test_ece") else 2 for m in comp["metric"]]

    def interval(lo: str, hi: str) -> list[str]:
        return [
            f"[{signed(a, d)}, {signed(b, d)}]"
            for a, b, d in zip(comp[lo], comp[hi], digits, strict=True)
        ]

    return pd.DataFrame(
        {
            "metric": comp["metric"].map(metric_label),
            "variant": comp["variant"],
            "group": comp["group"],
            "baseline": comp["baseline"],
            "paired seeds": comp["n_pairs"],
            "mean diff": [signed(v, d) for v, d in zip(comp["mean_diff"], digits, strict=True)],
            "bootstrap 95% CI": interval("ci_lo", "ci_hi"),
            "t 95% CI": interval("t_lo", "t_hi"),
            "sign-flip p": comp["p_value"].map(lambda v: _num(v, 3)),
            "verdict": [_verdict_text(r) for _, r in comp.iterrows()],
            "MACs ratio": comp["macs_ratio"].map(lambda v: _num(v, 3)),
        }
    )


def _claims_view(claims: pd.DataFrame) -> pd.DataFrame:
    return claims[["claim", "paper", "comparison", "ours", "evidence"]]


def _header(doc: _Doc, meta: Mapping[str, Any], runs: pd.DataFrame) -> None:
    study = meta.get("study", _first(runs, "study", "study"))
    doc.add("h1", f"{study}: {meta.get('title', '')}".rstrip(": "))
    if meta.get("description"):
        doc.add("p", meta["description"])
    seeds = meta.get("seeds") or (sorted(runs["seed"].unique().tolist()) if "seed" in runs else [])
    doc.add(
        "kv",
        [
            ("study", study),
            ("dataset", meta.get("dataset") or _first(runs, "dataset", "unknown")),
            ("scale", meta.get("scale") or _first(runs, "scale", "unknown")),
            ("seeds", ", ".join(str(s) for s in seeds) + f" ({len(seeds)})"),
            ("baseline", meta.get("baseline", "")),
            ("archlab version", meta.get("version") or _first(runs, "version", __version__)),
            ("commit", meta.get("commit") or _first(runs, "commit", "unknown")),
            ("machine", meta.get("machine", "unknown")),
            ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ],
    )
    recipe = meta.get("recipe") or {}
    if recipe:
        doc.add("h3", "recipe")
        doc.add(
            "table", pd.DataFrame({"key": list(recipe), "value": [str(v) for v in recipe.values()]})
        )


# --- calibration ---------------------------------------------------------------------------------


def _pool_bins(entries: Sequence[str | Mapping[str, Any]]) -> dict[str, list[float]]:
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
        str(v): _pool_bins(g["reliability"].tolist())
        for v, g in done.groupby("variant", sort=False)
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
    cap = _caption_from(runs, meta)
    files: dict[str, Path] = {}

    summary = summarize(runs)
    if "macs" in summary.columns and "test_top1_mean" in summary.columns:
        summary["pareto"] = pareto_front(summary, "macs", "test_top1_mean")
    metrics = [m for m in ("test_top1", "test_top5", "val_top1") if f"{m}_mean" in summary]
    if calib:
        metrics += [m for m in ("test_nll", "test_ece") if f"{m}_mean" in summary]

    comparisons = _comparisons(runs, meta, calib, n_boot)
    top1 = comparisons[comparisons["metric"] == "test_top1"]

    principle = (
        _run_principle(kind, runs, curves, out_dir) if kind.startswith("principle") else None
    )
    extra = None
    if principle:
        p_plot, p_verdict, _ = principle
        files[p_plot.name] = p_plot
        extra = {kind: (p_verdict, evidence_of(p_verdict))}
    claim_ids = list(meta.get("claims") or CLAIMS)
    claims = evaluate_claims(
        claim_ids,
        top1,
        runs,
        curves=curves,
        cost_ratios=meta.get("cost_ratios") or _block_ratios(),
        extra=extra,
        n_boot=n_boot,
    )

    for name, table in (("summary", summary), ("comparisons", comparisons), ("claims", claims)):
        files[f"{name}.csv"] = write_atomic(out_dir / f"{name}.csv", table.to_csv(index=False))
    plots = _study_plots(runs, curves, summary, claim_ids, kind, calib, cap, out_dir)
    files.update({p.name: p for p, _ in plots})

    doc = _Doc()
    _header(doc, meta, runs)
    doc.add("h2", "Paper claim vs our measurement")
    if len(claims):
        doc.add("table", _claims_view(claims))
    else:
        doc.add("p", "No claim of the paper is tested by this study's comparisons.")
    doc.add("p", EVIDENCE_NOTE)
    doc.add("h2", "Summary per variant")
    doc.add("p", f"Means and 95% Student-t intervals over complete runs; {cap}.")
    doc.add("table", _summary_view(summary, metrics))
    doc.add("h2", "Comparisons with the baseline")
    if len(comparisons):
        doc.add("table", _comparison_view(comparisons))
    else:
        doc.add("p", "No comparison: the study has no baseline, or no variant besides it.")
    if kind == "search" and "pareto" in summary.columns:
        doc.add("h2", "Pareto front (fewest MACs for the top-1)")
        front = summary[summary["pareto"]].sort_values("macs")
        doc.add("table", _summary_view(front, ["test_top1"]))
    if principle:
        p_plot, p_verdict, p_detail = principle
        doc.add("h2", f"Principle {kind[-1]}: {get_claim(kind).text}")
        doc.add("p", p_verdict)
        doc.add("table", p_detail)
        doc.add("img", p_plot, f"principle {kind[-1]}")
    doc.add("h2", "Plots")
    for path, alt in plots:
        doc.add("img", path, alt)
    doc.add("h2", "Notes")
    doc.add("p", MACS_NOTE)
    title = f"{meta.get('study', 'study')}: {meta.get('title', '')}"
    files.update(_write_doc(doc, title, out_dir))
    return files


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
        p = plot_acc_vs_macs(summary, out_dir / "acc_vs_macs.png", caption=cap)
        plots.append((p, f"test top-1 vs {MACS_LABEL}"))
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


# --- principle studies ---------------------------------------------------------------------------
# Each helper returns (plot path, verdict, detail table); the verdict starts with its evidence
# word ("agrees: ...", "disagrees: ...", "inconclusive: ...") so the claim table can reuse it.


def evidence_of(verdict: str) -> str:
    """The evidence word a principle verdict starts with."""
    return verdict.split(":", 1)[0].strip()


def _run_principle(
    kind: str, runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path
) -> tuple[Path, str, pd.DataFrame]:
    if kind == "principle2":
        return principle2(runs, curves, out_dir)
    helpers = {"principle1": principle1, "principle3": principle3, "principle4": principle4}
    if kind not in helpers:
        raise ValueError(f"unknown study kind {kind!r}; valid: compare, search, principle1..4")
    return helpers[kind](runs, out_dir)


def _complete(runs: pd.DataFrame, *cols: str) -> pd.DataFrame:
    """Complete runs with every named column present and known."""
    df = prepare_runs(runs)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"the runs table lacks column(s) {', '.join(missing)}")
    return df[df["status"] == "complete"].dropna(subset=list(cols)).copy()


def _per_config(df: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per configuration: run count, median MACs, mean/CI and missing count of each metric."""
    rows = []
    for key, g in df.groupby(list(keys), sort=True, dropna=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["n"] = len(g)
        row["macs"] = float(g["macs"].median()) if "macs" in g else math.nan
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(g[m])
            row[f"{m}_missing"] = int(g[m].isna().sum())
        rows.append(row)
    stats = ("mean", "lo", "hi", "missing")
    cols = [*keys, "n", "macs", *(f"{m}_{s}" for m in metrics for s in stats)]
    return pd.DataFrame(rows, columns=cols)


def _detail(per: pd.DataFrame, keys: Sequence[str], metrics: Mapping[str, str]) -> pd.DataFrame:
    """The per-configuration table as shown: keys, n, "mean [CI]" per metric, MACs."""
    out = per[list(keys)].copy()
    out["n"] = per["n"]
    for m, label in metrics.items():
        out[label] = [
            _mean_ci_text(a, b, c)
            for a, b, c in zip(per[f"{m}_mean"], per[f"{m}_lo"], per[f"{m}_hi"], strict=True)
        ]
    out["MACs (M)"] = per["macs"].map(_millions)
    return out


def _points(per: pd.DataFrame, x: str, metric: str, **extra: Any) -> pd.DataFrame:
    """Input of plot_xy_ci: x, y, lo, hi, MACs note, plus series/flag columns when given."""
    pts = pd.DataFrame(
        {
            "x": per[x].astype(float),
            "y": per[f"{metric}_mean"],
            "lo": per[f"{metric}_lo"],
            "hi": per[f"{metric}_hi"],
            "note": [f"{_millions(m)} M MACs" for m in per["macs"]],
        }
    )
    return pts.assign(**extra)


def _paired(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> tuple[float, float, float, int]:
    """Mean and the union of bootstrap and t intervals of a - b, paired on seed."""
    sa, sb = a.groupby("seed")[metric].mean(), b.groupby("seed")[metric].mean()
    seeds = sa.index.intersection(sb.index)
    r = paired_diff(sa[seeds].to_numpy(), sb[seeds].to_numpy(), n_boot=4000)
    return r.mean_diff, min(r.ci_lo, r.t_lo), max(r.ci_hi, r.t_hi), r.n


def _slope_text(res: SlopeResult, unit: str) -> str:
    return (
        f"slope {signed(res.slope)} {unit}, 95% CI [{signed(res.lo)}, {signed(res.hi)}] "
        f"(union of seed bootstrap and t over per-seed slopes), r = {_num(res.r, 2)}, "
        f"{res.n_points} runs over {res.n_clusters} seeds"
    )


def principle1(
    runs: pd.DataFrame, out_dir: Path, *, metric: str = "test_top1"
) -> tuple[Path, str, pd.DataFrame]:
    """Accuracy against the smallest representation size (relative to the first stage)."""
    df = _complete(runs, "min_repr", metric)
    df = df[df["min_repr"] > 0]
    if "grid_reduction" not in df.columns:
        df["grid_reduction"] = ""
    keys = ["grid_reduction", "min_repr", "variant"]
    per = _per_config(df, keys, [metric])
    path = plot_xy_ci(
        _points(per, "min_repr", metric, series=per["grid_reduction"].astype(str)),
        Path(out_dir) / "principle1.png",
        xlabel="smallest representation H*W*C / the first stage's (log2 scale)",
        ylabel=metric_label(metric),
        title="principle 1: avoid representational bottlenecks",
        caption=_caption_from(runs),
        logx=True,
    )
    res = bootstrap_slope(np.log2(df["min_repr"].to_numpy(float)), df[metric], df["seed"])
    evidence = judge("better", res.lo, res.hi)  # accuracy should rise as the bottleneck eases
    verdict = f"{evidence}: " + _slope_text(res, "pt per doubling of the smallest representation")
    return path, verdict, _detail(per, keys, {metric: metric_label(metric)})


def epochs_to_reach(curve: pd.DataFrame, threshold: float, metric: str = "train_top1") -> float:
    """Fractional epoch where the curve first reaches ``threshold`` (linear from 0% at epoch 0)."""
    c = curve.dropna(subset=[metric]).sort_values("epoch")
    prev_e, prev_v = 0.0, 0.0
    for e, v in zip(c["epoch"].astype(float), c[metric].astype(float), strict=True):
        if v >= threshold:
            return prev_e + (e - prev_e) * (threshold - prev_v) / (v - prev_v) if v > prev_v else e
        prev_e, prev_v = e, v
    return math.nan


def _common_threshold(curves: pd.DataFrame, run_keys: pd.Series) -> float:
    """90% of the weakest run's best training accuracy: a level every run reaches."""
    mine = curves[curves["run_key"].isin(run_keys)]
    best = mine.groupby("run_key")["train_top1"].max().dropna()
    return math.floor(0.9 * float(best.min()) * 10) / 10 if len(best) else math.nan


def principle2(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: Path,
    *,
    threshold: float | None = None,
    metric: str = "test_top1",
) -> tuple[Path, str, pd.DataFrame]:
    """Epochs to a fixed training accuracy, and final accuracy, against the coarse-grid width."""
    width = "coarse_width" if "coarse_width" in runs.columns else "width_mult"
    df = _complete(runs, width, metric)
    if not {"run_key", "epoch", "train_top1"} <= set(curves.columns):
        curves = pd.DataFrame(columns=["run_key", "epoch", "train_top1"])
    if threshold is None:
        threshold = _common_threshold(curves, df["run_key"])
    by_run = {k: g for k, g in curves.groupby("run_key")}
    df["epochs"] = [
        epochs_to_reach(by_run[k], threshold) if k in by_run else math.nan for k in df["run_key"]
    ]
    if "coarse_module" not in df.columns:
        df["coarse_module"] = ""
    keys = ["coarse_module", width]
    per = _per_config(df, keys, ["epochs", metric])
    target = f"epochs to {threshold:.1f}% train top-1"
    points = _points(per, width, "epochs", series=per["coarse_module"].astype(str))
    points["note"] = [
        f"final {_num(f, 1)}%, {n}"
        for f, n in zip(per[f"{metric}_mean"], points["note"], strict=True)
    ]
    path = plot_xy_ci(
        points,
        Path(out_dir) / "principle2.png",
        xlabel=f"coarse-grid width ({width}, log2 scale)",
        ylabel=target,
        title="principle 2: higher-dimensional representations train faster",
        caption=_caption_from(runs),
        logx=True,
    )
    x = np.log2(df[width].to_numpy(float))
    speed = bootstrap_slope(x, df["epochs"], df["seed"])
    final = bootstrap_slope(x, df[metric], df["seed"])
    evidence = judge("worse", speed.lo, speed.hi)  # fewer epochs when wider: a negative slope
    verdict = (
        f"{evidence}: {_slope_text(speed, f'{target} per doubling of width')}; final "
        f"{metric_label(metric)}: {_slope_text(final, 'pt per doubling')}"
    )
    detail = _detail(per, keys, {"epochs": target, metric: metric_label(metric)})
    detail.insert(3, "not reached", per["epochs_missing"])
    return path, verdict, detail


def principle3(
    runs: pd.DataFrame, out_dir: Path, *, metric: str = "test_top1"
) -> tuple[Path, str, pd.DataFrame]:
    """Accuracy and MACs against the 1x1 reduction ratio before spatial convolutions."""
    df = _complete(runs, "reduce_ratio", metric)
    per = _per_config(df, ["reduce_ratio"], [metric])
    path = plot_xy_ci(
        _points(per, "reduce_ratio", metric),
        Path(out_dir) / "principle3.png",
        xlabel="1x1 reduction ratio (reduced width / branch width, log2 scale)",
        ylabel=metric_label(metric),
        title="principle 3: spatial aggregation over reduced embeddings",
        caption=_caption_from(runs),
        logx=True,
    )
    detail = _detail(per, ["reduce_ratio"], {metric: metric_label(metric)})
    if len(per) < 4:
        return path, f"inconclusive: {len(per)} reduce_ratio values, at least 4 needed", detail
    margin = get_claim("principle3").margin
    low, high = per["reduce_ratio"].iloc[0], per["reduce_ratio"].iloc[-1]
    mean, lo, hi, n = _paired(df[df["reduce_ratio"] == low], df[df["reduce_ratio"] == high], metric)
    macs_ratio = float(per["macs"].iloc[0] / per["macs"].iloc[-1])
    verdict = (
        f"{judge('no_worse', lo, hi, margin)}: strongest reduction ({low:g}) vs weakest "
        f"({high:g}): {signed(mean)} pt [{signed(lo)}, {signed(hi)}], n={n} seeds, at "
        f"{macs_ratio:.2f}x the MACs; 'without much loss' = not below -{margin:g} pt"
    )
    return path, verdict, detail


def principle4(
    runs: pd.DataFrame, out_dir: Path, *, metric: str = "test_top1", tolerance: float = 0.02
) -> tuple[Path, str, pd.DataFrame]:
    """Iso-MAC depth/width family: accuracy against depth, points off the MAC budget flagged."""
    df = _complete(runs, "depth_mult", "width_mult", "macs", metric)
    per = _per_config(df, ["depth_mult", "width_mult"], [metric])
    per["macs_dev"] = per["macs"] / per["macs"].median() - 1.0
    per["flag"] = per["macs_dev"].abs() > tolerance
    points = _points(per, "depth_mult", metric, flag=per["flag"])
    points["note"] = [
        f"w={w:g}, {n}" for w, n in zip(per["width_mult"], points["note"], strict=True)
    ]
    path = plot_xy_ci(
        points,
        Path(out_dir) / "principle4.png",
        xlabel="depth multiplier (width solved for equal MACs)",
        ylabel=metric_label(metric),
        title="principle 4: balance width and depth at equal MACs",
        caption=_caption_from(runs),
        flag_label=f"MACs off the family median by > {tolerance:.0%}",
    )
    detail = _detail(per, ["depth_mult", "width_mult"], {metric: metric_label(metric)})
    detail["MACs vs family median"] = [f"{signed(100 * v, 1)}%" for v in per["macs_dev"]]
    detail["outside tolerance"] = per["flag"].map(lambda v: "yes" if v else "")
    return path, _balance_verdict(df, per[~per["flag"]], metric), detail


def _balance_verdict(df: pd.DataFrame, per: pd.DataFrame, metric: str) -> str:
    """Agrees when an interior depth beats both extremes; disagrees when an extreme beats all."""
    if len(per) < 3:
        return f"inconclusive: {len(per)} iso-MAC configurations, at least 3 needed"
    means = per[f"{metric}_mean"].to_numpy(float)
    best = int(np.nanargmax(means))
    interior = 0 < best < len(per) - 1
    # An interior winner is tested against both extremes; an extreme one against the best interior.
    rivals = [0, len(per) - 1] if interior else [1 + int(np.nanargmax(means[1:-1]))]

    def runs_of(i: int) -> pd.DataFrame:
        d, w = per["depth_mult"].iloc[i], per["width_mult"].iloc[i]
        return df[(df["depth_mult"] == d) & (df["width_mult"] == w)]

    def name(i: int) -> str:
        return f"d={per['depth_mult'].iloc[i]:g}, w={per['width_mult'].iloc[i]:g}"

    parts = [_paired(runs_of(best), runs_of(r), metric) for r in rivals]
    wins = [judge("better", lo, hi) == "agrees" for _, lo, hi, _ in parts]
    if all(wins):
        evidence = "agrees" if interior else "disagrees"
    else:
        evidence = "inconclusive"
    diffs = "; ".join(
        f"vs {name(r)}: {signed(m)} pt [{signed(lo)}, {signed(hi)}], n={n}"
        for r, (m, lo, hi, n) in zip(rivals, parts, strict=True)
    )
    return f"{evidence}: best is {name(best)}; {diffs}"


def render_principles(
    sections: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], out_dir: Path
) -> dict[str, Path]:
    """One page gathering the principle studies (reports/principles/): report.md + report.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = _Doc()
    title = meta.get("title", "The four design principles")
    doc.add("h1", title)
    if meta.get("description"):
        doc.add("p", meta["description"])
    doc.add(
        "kv",
        [
            ("dataset", meta.get("dataset", "unknown")),
            ("scale", meta.get("scale", "unknown")),
            ("archlab version", meta.get("version", __version__)),
            ("commit", meta.get("commit", "unknown")),
            ("machine", meta.get("machine", "unknown")),
            ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ],
    )
    for sec in sorted(sections, key=lambda s: int(s["principle"])):
        doc.add("h2", f"Principle {int(sec['principle'])}: {sec.get('title', '')}")
        doc.add("quote", sec.get("statement", ""))
        doc.add("p", f"Verdict: {sec.get('verdict', 'not run')}")
        detail = sec.get("detail")
        if isinstance(detail, pd.DataFrame):
            doc.add("table", detail)
        elif detail:
            doc.add("pre", str(detail))
        if sec.get("plot"):
            doc.add("img", Path(sec["plot"]), f"principle {int(sec['principle'])}")
    doc.add("h2", "Notes")
    doc.add("p", MACS_NOTE)
    return _write_doc(doc, str(title), out_dir)


def _block_ratios() -> dict[str, float]:
    """Block-level MAC ratios counted by fvcore on the registered blocks (for cost claims)."""
    from archlab.measure import measured_block_ratios

    return measured_block_ratios()
