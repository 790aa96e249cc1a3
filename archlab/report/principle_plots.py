"""The principle figures: each principle's data with its fitted relation and 95% band.

Principle 1: accuracy against the channels a squeeze keeps, one fitted line per place;
principle 2: the validation curves of the expanded and the plain coarse module with the
threshold; principle 3: paired differences per reduction ratio with 95% and 90% intervals
against the equivalence margin; principle 4: accuracy against depth with the fitted quadratic
and its vertex. The numbers come from ``archlab.analysis`` (``principles``, ``bands``); these
functions only draw them. Points are means over seeds with their 95% t intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from archlab.analysis.principles import Estimate
from archlab.numbers import fmt
from archlab.report import plots
from archlab.report.plots import GroupedTicks, error_lengths, metric_label, new_figure

__all__ = ["plot_depth_quadratic", "plot_squeeze_lines", "plot_threshold_curves", "plot_tost"]

POINTS = "points: mean, 95% CI over seeds"
WIDTH = 7.2  # inches: room for the legends that quote each fitted number


def _log2_axis(ax: Axes, values: Sequence[float], label: str) -> None:
    """A log2 x axis ticked at the sampled values, labelled as settings (not 2^k)."""
    ax.set_xscale("log", base=2)
    ticks = sorted({float(v) for v in values})
    ax.set_xticks(ticks, [fmt("setting", v) for v in ticks])
    ax.minorticks_off()
    ax.set_xlabel(label)


def _finish(
    ax: Axes, ylabel: str, handles: Sequence[Artist] = (), labels: Sequence[str] = ()
) -> None:
    """Y label, grouped y ticks, grid and the legend (of ``handles`` when given)."""
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(GroupedTicks())
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles, labels, fontsize=7)
    else:
        ax.legend(fontsize=7)


def _interval(e: Estimate | tuple[float, float, float], unit: str = "") -> str:
    value, lo, hi = (e.value, e.lo, e.hi) if isinstance(e, Estimate) else e
    text = f"{fmt('accuracy', value, sign=True)} [{fmt('accuracy', lo, sign=True)}, "
    return text + f"{fmt('accuracy', hi, sign=True)}]{unit}"


def _points(ax: Axes, x: np.ndarray, g: pd.DataFrame, m: str, **style: object) -> None:
    """Means with 95% error bars of the ``m`` columns of a per-configuration table."""
    y = g[f"{m}_mean"].to_numpy(float)
    err = error_lengths(y, g[f"{m}_lo"].to_numpy(float), g[f"{m}_hi"].to_numpy(float))
    ax.errorbar(x, y, yerr=err, capsize=3, linestyle="none", **style)  # type: ignore[arg-type]


def plot_squeeze_lines(
    per: pd.DataFrame,
    band: pd.DataFrame | None,
    path: Path,
    *,
    metric: str,
    places: Sequence[str],
    slopes: Mapping[str, Estimate] | None,
    caption: str,
) -> Path:
    """Principle 1: accuracy vs channels kept per squeeze place, each place's line and band.

    ``per`` is the analysis' table (squeeze_at, squeeze_ratio, metric columns); ``band`` is
    ``bands.squeeze_band`` (None: points only).
    """
    fig, (ax,) = new_figure(width=WIDTH)
    for i, place in enumerate(places):
        color = f"C{i % 10}"
        g = per[per["squeeze_at"] == place].sort_values("squeeze_ratio")
        # the places share their ratios: a small sideways shift keeps the error bars apart
        shift = 2.0 ** (0.04 * (i - (len(places) - 1) / 2))
        label = place
        if slopes and place in slopes:
            label += f": {_interval(slopes[place], ' pt')} lost per halving"
        _points(ax, g["squeeze_ratio"].to_numpy(float) * shift, g, metric, fmt="o", color=color)
        ax.plot([], [], "o-", color=color, label=label)
        if band is not None and len(band):
            line = band[band["place"] == place].sort_values("ratio")
            ax.plot(line["ratio"], line["fit"], "-", color=color, lw=1.5)
            ax.fill_between(line["ratio"], line["lo"], line["hi"], color=color, alpha=0.15)
    base = per[per["squeeze_at"] == "none"]
    if len(base):
        x = base["squeeze_ratio"].to_numpy(float)
        _points(ax, x, base, metric, fmt="s", color="black", label="no squeeze (baseline)")
    _log2_axis(
        ax,
        per["squeeze_ratio"],
        "channels kept by the squeeze, r (fraction of the layer's channels, log2 scale)",
    )
    _finish(ax, metric_label(metric))
    fitted = "lines: OLS fit, band 95% CI" if band is not None else "no fit"
    title = f"principle 1: accuracy vs channels kept, per squeeze place (equal MACs)\n{fitted}; "
    return plots.save_titled(fig, path, title + POINTS, caption)


def plot_threshold_curves(
    band: pd.DataFrame,
    per: pd.DataFrame,
    path: Path,
    *,
    threshold: float,
    curve: str,
    caption: str,
) -> Path:
    """Principle 2: each coarse module's mean curve with its 95% band, and the threshold.

    ``band`` is ``bands.curve_band`` by coarse_module; ``per`` the analysis' table (its
    ``epochs`` columns: epochs to the threshold), drawn as a diamond on the threshold line.
    """
    fig, (ax,) = new_figure(width=WIDTH)
    for i, (module, g) in enumerate(band.groupby("coarse_module", sort=True)):
        color = f"C{i % 10}"
        ax.plot(g["epoch"], g["mean"], ".-", color=color, label=f"{module}: mean curve")
        ax.fill_between(g["epoch"], g["lo"], g["hi"], color=color, alpha=0.2)
        row = per[per["coarse_module"] == module]
        if len(row) and np.isfinite(row["epochs_mean"].iloc[0]):
            e, lo, hi = (float(row[f"epochs_{s}"].iloc[0]) for s in ("mean", "lo", "hi"))
            err = error_lengths(np.array([e]), np.array([lo]), np.array([hi]))
            reached = f"{fmt('epochs', e)} [{fmt('epochs', lo)}, {fmt('epochs', hi)}]"
            ax.errorbar(
                [e],
                [threshold],
                xerr=err,
                fmt="D",
                color=color,
                capsize=4,
                ms=6,
                label=f"{module}: {reached} epochs to the threshold",
            )
    ax.axhline(
        threshold, color="grey", ls="--", lw=1, label=f"threshold {fmt('accuracy', threshold)}%"
    )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_formatter(GroupedTicks())
    _finish(ax, metric_label(curve))
    title = (
        "principle 2: expanded vs plain coarse module (equal MACs)\n"
        "curves: mean over seeds, band 95% CI; diamonds: epochs to the threshold, 95% CI"
    )
    return plots.save_titled(fig, path, title, caption)


def plot_tost(
    rows: pd.DataFrame,
    path: Path,
    *,
    reference: float,
    margin: float,
    metric: str,
    caption: str,
    levels: tuple[str, str] = ("95", "90"),
) -> Path:
    """Principle 3: each reduced ratio's paired difference against ``reference``, equivalence.

    ``rows``: ratio, mean, lo, hi (95%), lo90, hi90 (90%: TOST at 5% is this interval inside
    the margin), p (Holm-adjusted TOST p-value) and equivalent. ``levels``: the two intervals'
    confidence in % as shown, where a sequential look sets other levels than 95 / 90.
    """
    fig, (ax,) = new_figure(width=WIDTH)
    ax.axhspan(-margin, margin, color="tab:blue", alpha=0.1)
    ax.axhline(0.0, color="black", lw=0.8)
    for r in rows.itertuples():
        color = "tab:green" if r.equivalent else "tab:gray"
        ax.plot([r.ratio, r.ratio], [r.lo90, r.hi90], "-", color=color, lw=6, alpha=0.45)
        err = error_lengths(np.array([r.mean]), np.array([r.lo]), np.array([r.hi]))
        ax.errorbar([r.ratio], [r.mean], yerr=err, fmt="o", color=color, capsize=4)
        ax.annotate(
            f"TOST p = {fmt('p_value', r.p)}",
            (r.ratio, r.hi),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=7,
        )
    ax.plot([reference], [0.0], "D", mfc="white", mec="black", ms=7)
    handles = [
        Line2D([], [], color="black", marker="D", mfc="white", ls="none"),
        Line2D([], [], color="tab:blue", alpha=0.3, lw=8),
        Line2D([], [], color="tab:gray", marker="o", ls="-"),
        Line2D([], [], color="tab:gray", lw=6, alpha=0.45),
        Line2D([], [], color="tab:green", marker="o", ls="none"),
    ]
    labels = [
        f"reference r = {fmt('setting', reference)} (difference 0 by definition)",
        f"equivalence margin \u00b1{fmt('setting', margin)} pt",
        f"paired mean, {levels[0]}% CI",
        f"{levels[1]}% CI (TOST: inside the margin = equivalent)",
        "equivalent (Holm across ratios)",
    ]
    _log2_axis(
        ax,
        [*rows["ratio"], reference],
        "1x1 reduction ratio r (reduced width / branch width, log2 scale)",
    )
    ax.set_xlim(min(rows["ratio"]) / 1.5, reference * 1.2)
    label = metric_label(metric).removesuffix(" (%)")
    _finish(ax, f"{label}: r minus r = {fmt('setting', reference)} (points)", handles, labels)
    title = "principle 3: reduced ratios against the weakest reduction (equal MACs, paired seeds)"
    return plots.save_titled(fig, path, title, caption)


def plot_depth_quadratic(
    per: pd.DataFrame,
    band: pd.DataFrame | None,
    path: Path,
    *,
    metric: str,
    vertex: Mapping[str, Estimate] | None,
    flag_label: str,
    caption: str,
) -> Path:
    """Principle 4: accuracy vs depth at equal MACs, the quadratic's band and its vertex.

    ``per`` is the analysis' table (depth_mult, width_mult, metric columns, flag); ``band`` is
    ``bands.quadratic_band`` and ``vertex`` its curvature and best depth (None: points only).
    """
    fig, (ax,) = new_figure(width=WIDTH)
    x = per["depth_mult"].to_numpy(float)
    _points(ax, x, per, metric, fmt="o", color="C0", label="iso-MAC configuration")
    for d, w, y in zip(x, per["width_mult"], per[f"{metric}_mean"], strict=True):
        note = f"w={fmt('setting', w)}"
        ax.annotate(note, (d, y), textcoords="offset points", xytext=(5, -10), fontsize=7)
    flagged = per[per["flag"].astype(bool)]
    if len(flagged):
        ax.plot(
            flagged["depth_mult"],
            flagged[f"{metric}_mean"],
            "o",
            ms=14,
            mfc="none",
            mec="red",
            label=f"{flag_label} (left out of the fit)",
        )
    if band is not None and vertex is not None:
        ax.plot(band["depth"], band["fit"], "-", color="C1", label="quadratic in log2(depth)")
        ax.fill_between(band["depth"], band["lo"], band["hi"], color="C1", alpha=0.2)
        left, right = ax.get_xlim()  # the vertex' interval may reach past the data: keep them
        depth, kind = vertex["depth"], "best" if vertex["curvature"].value < 0 else "worst"
        interval = f"{fmt('setting', depth.lo)}, {fmt('setting', depth.hi)}"
        ax.axvspan(depth.lo, depth.hi, color="C1", alpha=0.08)
        ax.axvline(
            depth.value,
            color="C1",
            ls="--",
            lw=1,
            label=f"vertex ({kind} depth): {fmt('setting', depth.value)} [{interval}]",
        )
        ax.set_xlim(left, right)
    _log2_axis(ax, x, "depth multiplier (log2 scale; width solved for equal MACs)")
    _finish(ax, metric_label(metric))
    fitted = (
        "line: quadratic fit, band 95% CI; dashed: its vertex (delta method)"
        if band is not None
        else "no quadratic (needs 4 depths on budget and 2 seeds)"
    )
    title = f"principle 4: accuracy vs depth at equal MACs\n{fitted}; {POINTS}"
    return plots.save_titled(fig, path, title, caption)
