"""Report figures as PNG files: accuracy vs MACs, costs, learning curves, EDFs, reliability.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so importing archlab never
changes the user's backend and no global figure state leaks between plots. Every figure names
its units and carries a caption line with dataset, scale and number of seeds.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from archlab.analysis.stats import edf, pareto_front, t_quantile
from archlab.io import write_atomic
from archlab.numbers import MINUS, fmt, macs_unit

MACS_LABEL = "MACs (M, 1 MAC = 1 multiply-add)"
MACS_SCALE = {"M": 1e6, "G": 1e9}
#: The note every study report ends with: what a MAC is and what is counted.
MACS_NOTE = (
    "MACs count multiply-adds of the convolution and linear layers per image at inference, "
    "aux head excluded: 1 MAC = 1 multiply-add (fvcore counts the same but calls them flops; "
    "torch's FlopCounterMode counts 2 per MAC)."
)
PARAMS_LABEL = "parameters (M)"

#: Axis label (with unit) of each metric column.
METRIC_LABELS = {
    "test_top1": "test top-1 (%)",
    "test_top5": "test top-5 (%)",
    "val_top1": "validation top-1 (%)",
    "train_top1": "train top-1 (%)",
    "aux_top1": "auxiliary-head top-1 (%)",
    "test_nll": "test NLL (nats per image)",
    "test_ece": "test ECE (fraction, 15 bins)",
    "train_loss": "train loss (nats per image)",
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def metric_label(metric: str) -> str:
    """Axis label with unit for a metric column."""
    return METRIC_LABELS.get(metric, metric)


def macs_label(unit: str = "M") -> str:
    """The axis label of MACs in ``unit`` (M or G)."""
    return MACS_LABEL.replace("(M,", f"({unit},")


class GroupedTicks(Formatter):
    """Tick labels with thousands separators and as many decimals as the tick step needs
    (at most 4), no offset or scientific notation: axes read like the tables."""

    def __init__(self) -> None:
        self.decimals = 0

    def set_locs(self, locs: Sequence[float]) -> None:
        """Choose the decimals from the step between the ticks about to be drawn."""
        super().set_locs(locs)
        steps = np.diff(np.sort(np.asarray(locs, dtype=float)))
        steps = steps[steps > 0]
        step = f"{steps.min():.4f}".rstrip("0") if steps.size else ""
        self.decimals = len(step.split(".")[1]) if "." in step else 0

    def __call__(self, x: float, pos: int | None = None) -> str:
        text = f"{x:,.{self.decimals}f}"
        return "0" if float(text.replace(",", "")) == 0 else text.replace("-", MINUS)


def caption_line(dataset: str, scale: str, n_seeds: int) -> str:
    """The caption line every figure carries."""
    return f"{dataset}, {scale} scale, {n_seeds} seed{'s' if n_seeds != 1 else ''}"


def first_value(runs: pd.DataFrame, col: str, default: str) -> str:
    """The first known value of a runs-table column, as text; ``default`` if none."""
    if col in runs.columns and runs[col].notna().any():
        return str(runs[col].dropna().iloc[0])
    return default


def caption_from(runs: pd.DataFrame, meta: Mapping[str, Any] | None = None) -> str:
    """The caption line of a study's figures: dataset, scale and seeds from meta or the runs."""
    meta = meta or {}
    dataset = meta.get("dataset") or first_value(runs, "dataset", "unknown dataset")
    scale = meta.get("scale") or first_value(runs, "scale", "unknown")
    seeds = meta.get("seeds")
    n_seeds = len(seeds) if seeds else int(runs["seed"].nunique()) if "seed" in runs else 0
    return caption_line(str(dataset), str(scale), n_seeds)


def new_figure(
    ncols: int = 1, width: float = 6.4, height: float = 4.4
) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure on its own Agg canvas with ``ncols`` axes side by side."""
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a 100-dpi PNG, atomically."""
    buf = io.BytesIO()
    # No Software tag: it would put matplotlib's web address inside the PNG.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return write_atomic(path, buf.getvalue())


def save_titled(fig: Figure, path: Path, title: str, caption: str) -> Path:
    """Title ``fig`` (title over the caption line) and write it as a PNG (``save_png``)."""
    fig.suptitle(f"{title}\n{caption}", fontsize=10)
    return save_png(fig, path)


def error_lengths(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Error-bar lengths; a missing interval (one seed) draws no bar."""
    below = np.nan_to_num(mean - lo, nan=0.0)
    above = np.nan_to_num(hi - mean, nan=0.0)
    return np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def plot_acc_vs_macs(
    summary: pd.DataFrame,
    path: Path,
    *,
    caption: str,
    metric: str = "test_top1",
    label: str = "variant",
) -> Path:
    """Mean metric with 95% CI against MACs per variant; the Pareto front is drawn as a line."""
    fig, (ax,) = new_figure()
    unit = macs_unit(summary["macs"])
    x = summary["macs"].to_numpy(dtype=float) / MACS_SCALE[unit]
    y = summary[f"{metric}_mean"].to_numpy(dtype=float)
    err = error_lengths(
        y, summary[f"{metric}_ci_lo"].to_numpy(float), summary[f"{metric}_ci_hi"].to_numpy(float)
    )
    ax.errorbar(
        x,
        y,
        yerr=err,
        fmt="o",
        color="tab:blue",
        ecolor="grey",
        capsize=3,
        label="variant (95% CI)",
    )
    front = pareto_front(summary, x="macs", y=f"{metric}_mean").to_numpy()
    if front.any():
        order = np.argsort(x[front])
        ax.plot(x[front][order], y[front][order], "-", color="tab:red", lw=2, label="Pareto front")
    if "is_baseline" in summary.columns:
        base = summary["is_baseline"].to_numpy(dtype=bool)
        ax.plot(x[base], y[base], "s", mfc="none", mec="black", ms=11, label="baseline")
    for xi, yi, name in zip(x, y, summary[label].astype(str), strict=True):
        if np.isfinite(xi) and np.isfinite(yi):
            ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(macs_label(unit))
    ax.xaxis.set_major_formatter(GroupedTicks())
    ax.set_ylabel(metric_label(metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_titled(fig, path, f"{metric_label(metric)} vs MACs", caption)


def plot_cost_bars(
    summary: pd.DataFrame, path: Path, *, caption: str, label: str = "variant"
) -> Path:
    """MACs and parameters of each variant as horizontal bars."""
    n = len(summary)
    fig, (ax_m, ax_p) = new_figure(2, width=5.0, height=max(2.5, 0.35 * n + 1.5))
    names = summary[label].astype(str).tolist()
    pos = np.arange(n)
    unit = macs_unit(summary["macs"])
    ax_m.barh(pos, summary["macs"].to_numpy(float) / MACS_SCALE[unit], color="tab:blue")
    ax_p.barh(pos, summary["params"].to_numpy(float) / 1e6, color="tab:orange")
    for ax, xlabel in ((ax_m, macs_label(unit)), (ax_p, PARAMS_LABEL)):
        ax.set_yticks(pos, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_formatter(GroupedTicks())
        ax.grid(axis="x", alpha=0.3)
    ax_p.set_yticklabels([])
    return save_titled(fig, path, "cost per variant (inference, aux head excluded)", caption)


def _curve_stats(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per variant and epoch: mean and 95% t half-width over seeds."""
    g = curves.dropna(subset=[metric]).groupby(["variant", "epoch"], sort=False)[metric]
    st = g.agg(["mean", "std", "count"]).reset_index()
    tq = st["count"].map(lambda k: t_quantile(0.975, k - 1) if k > 1 else np.nan)
    st["half"] = tq * st["std"] / np.sqrt(st["count"])
    return st.sort_values(["variant", "epoch"], kind="stable")


def plot_learning_curves(
    curves: pd.DataFrame,
    path: Path,
    *,
    caption: str,
    metric: str = "test_top1",
    zoom: float | None = None,
) -> Path:
    """Mean curve per variant with a 95% CI band over seeds; ``zoom`` adds an early-epochs panel."""
    st = _curve_stats(curves, metric)
    fig, axes = new_figure(2 if zoom else 1)
    last_epoch = float(st["epoch"].max()) if len(st) else 1.0
    for ax in axes:
        for i, (variant, g) in enumerate(st.groupby("variant", sort=False)):
            color = f"C{i % 10}"
            ax.plot(g["epoch"], g["mean"], "-", color=color, label=str(variant), marker=".")
            ax.fill_between(
                g["epoch"], g["mean"] - g["half"], g["mean"] + g["half"], color=color, alpha=0.2
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric_label(metric))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if zoom:
        # At least two epochs so the early panel shows a slope, not a single point.
        end = max(2.0, np.ceil(zoom * last_epoch))
        axes[1].set_xlim(0.8, end + 0.2)
        early = st[st["epoch"] <= end]
        if len(early):
            low = np.nanmin(early["mean"] - early["half"].fillna(0))
            high = np.nanmax(early["mean"] + early["half"].fillna(0))
            pad = 0.05 * max(high - low, 1e-6)
            axes[1].set_ylim(low - pad, high + pad)
        share, last = fmt("setting", 100 * zoom), fmt("setting", end)
        axes[1].set_title(f"first {share}% of training (epochs 1-{last})", fontsize=9)
    return save_titled(
        fig, path, f"learning curves: {metric_label(metric)} (band: 95% CI over seeds)", caption
    )


def plot_edf(
    errors: Mapping[str, Sequence[float] | np.ndarray], path: Path, *, caption: str
) -> Path:
    """Error EDF per population (Radosavovic et al.): fraction of models with error <= x."""
    fig, (ax,) = new_figure()
    for name, values in errors.items():
        x, f = edf(values)
        if x.size:
            ax.step(x, f, where="post", label=f"{name} (n={x.size})")
    ax.set_xlabel("test top-1 error (%)")
    ax.set_ylabel("models with error <= x (fraction)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_titled(fig, path, "error empirical distribution function", caption)


def plot_reliability(
    bins: Mapping[str, Mapping[str, Sequence[float]]], path: Path, *, caption: str
) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per variant."""
    fig, (ax,) = new_figure()
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for name, b in bins.items():
        conf = np.asarray(b["bin_conf"], dtype=float)
        acc = np.asarray(b["bin_acc"], dtype=float)
        count = np.asarray(b.get("bin_count", np.ones_like(conf)), dtype=float)
        keep = (count > 0) & np.isfinite(conf) & np.isfinite(acc)
        ax.plot(conf[keep], acc[keep], "o-", ms=4, label=str(name))
    ax.set_xlabel("mean confidence in bin (fraction)")
    ax.set_ylabel("accuracy in bin (fraction)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_titled(fig, path, "reliability diagram (final test set, 15 bins)", caption)


def plot_xy_ci(
    points: pd.DataFrame,
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    caption: str,
    logx: bool = False,
    flag_label: str = "flagged",
) -> Path:
    """Generic y-with-CI against a knob: columns x, y, lo, hi; optional series, note, flag.

    ``series`` draws one connected line per value, ``note`` annotates each point (e.g. its
    MACs) and a true ``flag`` circles the point in red (e.g. outside an iso-MAC tolerance).
    """
    fig, (ax,) = new_figure()
    pts = points.copy()
    if "series" not in pts.columns:
        pts["series"] = ""
    for i, (name, g) in enumerate(pts.groupby("series", sort=False)):
        g = g.sort_values("x")
        y = g["y"].to_numpy(float)
        err = error_lengths(y, g["lo"].to_numpy(float), g["hi"].to_numpy(float))
        label = str(name) if str(name) else None
        ax.errorbar(g["x"], y, yerr=err, fmt="o-", color=f"C{i % 10}", capsize=3, label=label)
    if "note" in pts.columns:
        for x, y, note in zip(pts["x"], pts["y"], pts["note"].astype(str), strict=True):
            ax.annotate(note, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    if "flag" in pts.columns and pts["flag"].astype(bool).any():
        bad = pts[pts["flag"].astype(bool)]
        ax.plot(bad["x"], bad["y"], "o", ms=14, mfc="none", mec="red", label=flag_label)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return save_titled(fig, path, title, caption)


#: Inches (100 px each) of the forest plot's width: as wide as a report page's text.
FOREST_WIDTH = 12.0

VERDICT_COLORS = {
    "agrees": "tab:green",
    "disagrees": "tab:red",
    "equivalent": "tab:blue",
    "smaller than claimed": "tab:orange",
    "inconclusive": "tab:gray",
}


def plot_forest(claims: pd.DataFrame, path: Path, *, caption: str) -> Path | None:
    """Each accuracy claim row's difference with its 95% interval, margin band, paper's number."""
    rows = claims[(claims["kind"] == "accuracy") & claims["estimate"].notna()]
    if rows.empty:
        return None
    n = len(rows)
    # wide and short: the whole plot fits the first screen under the answer table
    fig, (ax,) = new_figure(1, width=FOREST_WIDTH, height=max(1.5, 0.2 * n + 0.9))
    pos = np.arange(n)
    # an anytime-valid sequence can be unbounded at few seeds: such an end is drawn to the edge
    # of what the finite values span, with an arrow head
    values = rows[["estimate", "ci_lo", "ci_hi", "margin"]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    edge = 1.0 + float(np.abs(finite).max()) if finite.size else 1.0
    for y, r in zip(pos, rows.itertuples(), strict=True):
        margin = float(r.margin) if pd.notna(r.margin) else 0.0
        ax.fill_betweenx([y - 0.4, y + 0.4], -margin, margin, color="tab:blue", alpha=0.08)
        color = VERDICT_COLORS.get(str(r.evidence), "black")
        lo, hi = (float(np.clip(v, -edge, edge)) for v in (r.ci_lo, r.ci_hi))
        for end, unbounded, mark in ((lo, r.ci_lo == -np.inf, "<"), (hi, r.ci_hi == np.inf, ">")):
            if unbounded:
                ax.plot([end], [y], marker=mark, color=color, markersize=6)
        err = error_lengths(np.array([r.estimate]), np.array([lo]), np.array([hi]))
        ax.errorbar([r.estimate], [y], xerr=err, fmt="o", color=color, capsize=3)
        if pd.notna(r.paper_effect):
            ax.plot([r.paper_effect], [y], marker="x", color="black", markersize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    labels = [f"{r.claim}: {r.comparison} ({r.evidence})" for r in rows.itertuples()]
    ax.set_yticks(pos, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("difference in test top-1 (points; positive = the paper's choice is better)")
    ax.grid(axis="x", alpha=0.3)
    title = "claims: 95% intervals; x = the paper's number; band = equivalence margin"
    return save_titled(fig, path, title, caption)
