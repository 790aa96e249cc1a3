"""Plots are written as valid PNG files, atomically, and carry their units.

The plot functions return the PNG's path, not the figure: ``figures`` (conftest) records each
Figure as it is saved, so the tests read the axis labels and the plotted data back from
matplotlib's objects.
"""

import re

import numpy as np
import pandas as pd
import pytest

from archlab.analysis.stats import summarize
from archlab.io import write_atomic
from archlab.report.plots import (
    PNG_SIGNATURE,
    caption_line,
    plot_acc_vs_macs,
    plot_cost_bars,
    plot_edf,
    plot_learning_curves,
    plot_reliability,
    plot_xy_ci,
)

CAP = caption_line("fashion-mnist", "quick", 3)


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE


UNIT = re.compile(r"\(([^()]+)\)")  # "test top-1 (%)" -> "%"


def labels(fig) -> list[tuple[str, str]]:
    """(x label, y label) of every axes of a figure that draws data."""
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.has_data()]


def unit(label: str) -> str:
    """The unit a label names in parentheses (its first word before a comma or semicolon)."""
    found = UNIT.search(label)
    assert found, f"axis label {label!r} names no unit in parentheses"
    return re.split(r"[,;]", found.group(1))[0].strip()


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    rows = []
    for i, (variant, macs) in enumerate([("baseline", 30e6), ("a", 20e6), ("b", 45e6)]):
        for seed in range(3):
            rows.append(
                {
                    "variant": variant,
                    "is_baseline": variant == "baseline",
                    "seed": seed,
                    "status": "complete",
                    "test_top1": 90 + i + 0.2 * seed,
                    "macs": macs,
                    "params": macs / 20,
                }
            )
    return summarize(pd.DataFrame(rows))


def test_caption_line():
    assert CAP == "fashion-mnist, quick scale, 3 seeds"
    assert caption_line("x", "full", 1).endswith("1 seed")


def test_acc_vs_macs_and_cost_bars(tmp_path, summary, figures):
    p1 = plot_acc_vs_macs(summary, tmp_path / "acc.png", caption=CAP)
    p2 = plot_cost_bars(summary, tmp_path / "cost.png", caption=CAP)
    assert p1 == tmp_path / "acc.png" and _is_png(p1) and _is_png(p2)
    assert b"matplotlib.org" not in p1.read_bytes()  # no web address in the PNG metadata

    ((x, y),) = labels(figures["acc.png"])
    assert unit(x) == "M" and "MAC" in x and unit(y) == "%"
    # the axis says millions of MACs: the points sit at macs / 1e6
    ax = figures["acc.png"].axes[0]
    plotted = sorted(ax.lines[0].get_xdata())
    assert plotted == pytest.approx(sorted(summary["macs"] / 1e6))

    (macs_x, _), (params_x, _) = labels(figures["cost.png"])
    assert unit(macs_x) == "M" and "MAC" in macs_x and unit(params_x) == "M"
    ax_m, ax_p = figures["cost.png"].axes
    assert [b.get_width() for b in ax_m.patches] == pytest.approx(summary["macs"] / 1e6)
    assert [b.get_width() for b in ax_p.patches] == pytest.approx(summary["params"] / 1e6)


def test_learning_curves_with_zoom(tmp_path, figures):
    rows = [
        {"variant": v, "seed": s, "epoch": e, "test_top1": 60 + 3 * e + s}
        for v in ("baseline", "aux_head=none")
        for s in range(3)
        for e in range(1, 11)
    ]
    path = plot_learning_curves(pd.DataFrame(rows), tmp_path / "c.png", caption=CAP, zoom=0.3)
    assert _is_png(path)
    panels = labels(figures["c.png"])
    assert len(panels) == 2  # the full run and the zoomed early epochs
    for x, y in panels:
        assert x == "epoch"  # a count of epochs: the label is its unit
        assert unit(y) == "%"


def test_edf_reliability_and_xy(tmp_path, figures):
    p1 = plot_edf({"all": [8.0, 9.5, 7.2, np.nan]}, tmp_path / "edf.png", caption=CAP)
    conf = np.linspace(0.05, 0.95, 15)
    bins = {"baseline": {"bin_conf": conf, "bin_acc": conf - 0.05, "bin_count": [10] * 15}}
    p2 = plot_reliability(bins, tmp_path / "rel.png", caption=CAP)
    points = pd.DataFrame(
        {
            "x": [0.25, 0.5, 1.0],
            "y": [88.0, 89.0, 90.0],
            "lo": [87.0, np.nan, 89.0],
            "hi": [89.0, np.nan, 91.0],
            "series": ["pool_conv", "parallel", "parallel"],
            "note": ["10 M", "12 M", "14 M"],
            "flag": [False, True, False],
        }
    )
    p3 = plot_xy_ci(
        points, tmp_path / "xy.png", xlabel="x (unit)", ylabel="y (%)", title="t", caption=CAP
    )
    assert all(_is_png(p) for p in (p1, p2, p3))

    ((x, _),) = labels(figures["edf.png"])
    assert unit(x) == "%"
    ((x, y),) = labels(figures["rel.png"])
    assert unit(x) == unit(y) == "fraction"
    assert labels(figures["xy.png"]) == [("x (unit)", "y (%)")]


def test_edf_y_axis_has_a_unit_in_parentheses(tmp_path, figures):
    plot_edf({"all": [8.0, 9.5, 7.2]}, tmp_path / "edf.png", caption=CAP)
    ((_, y),) = labels(figures["edf.png"])
    assert unit(y) == "fraction"


def test_write_atomic_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "report.md"
    write_atomic(target, "old")
    with pytest.raises(TypeError):
        write_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temp file left behind


def test_forest_plot_draws_each_accuracy_row_with_units(tmp_path, figures) -> None:
    import archlab.report.plots as plots

    claims = pd.DataFrame(
        {
            "claim": ["factor_act", "conv5x5_acc", "conv5x5_cost"],
            "comparison": ["a vs b", "c vs b", "c vs b"],
            "kind": ["accuracy", "accuracy", "cost"],
            "evidence": ["agrees", "equivalent", "agrees"],
            "estimate": [1.1, 0.05, np.nan],
            "ci_lo": [0.6, -0.2, np.nan],
            "ci_hi": [1.6, 0.3, np.nan],
            "margin": [0.5, 0.5, 0.5],
            "paper_effect": [1.0, np.nan, np.nan],
        }
    )
    path = plots.plot_forest(claims, tmp_path / "f.png", caption=CAP)
    assert path is not None and _is_png(path)
    (ax,) = figures["f.png"].axes
    xlabel, ticks = ax.get_xlabel(), [t.get_text() for t in ax.get_yticklabels()]
    assert unit(xlabel) == "points" and "top-1" in xlabel
    assert len(ticks) == 2 and ticks[0].startswith("factor_act: a vs b")
    assert (
        plots.plot_forest(claims[claims["kind"] == "cost"], tmp_path / "g.png", caption=CAP) is None
    )
