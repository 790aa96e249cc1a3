"""The principle figures draw the data and the fitted relation with its band, read back from
matplotlib's objects (``figures``, conftest); a figure the runs cannot carry is named, not drawn.
"""

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from archlab.analysis.principles import analyze
from archlab.report.principles import render_principles, run_principle
from tests.test_plots import unit
from tests.test_principles import SQUEEZE, _runs

LOSS = {"stem": 1.0, "stage_a": 0.6, "stage_b": 0.2}  # pt per halving of the channels kept


def _fitted(ax) -> list:
    """The fitted lines: the only lines drawn through many points."""
    return [line for line in ax.lines if len(line.get_xdata()) > 10]


def _bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_principle1_draws_each_place_line_with_its_band(tmp_path, figures) -> None:
    runs = _runs(SQUEEZE, lambda c: -LOSS.get(c["squeeze_at"], 0.0) * -np.log2(c["squeeze_ratio"]))
    rendered = run_principle(1, runs, None, tmp_path)
    assert rendered.plot == tmp_path / "principle1.png" and rendered.missing == ""
    (ax,) = figures["principle1.png"].axes
    assert ax.get_xscale() == "log" and unit(ax.get_ylabel()) == "%"
    lines, bands = _fitted(ax), _bands(ax)
    assert len(lines) == len(bands) == 3
    for place, line, band in zip(LOSS, lines, bands, strict=True):
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert (x[0], x[-1]) == pytest.approx((0.125, 1.0))
        assert y[-1] - y[0] == pytest.approx(3 * LOSS[place], abs=0.15)  # three halvings
        edge = band.get_paths()[0].vertices[:, 1]
        assert edge.min() < y.min() and y.max() < edge.max()
    starts = [line.get_ydata()[-1] for line in lines]
    assert max(starts) - min(starts) < 1e-9  # the places share the unsqueezed baseline
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("stem: +1.") and "pt lost per halving" in labels[0]


def _paired_modules(faster: float = 2.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    cells = [{"coarse_module": "expanded", "width_mult": 1.0}]
    cells.append({"coarse_module": "plain", "width_mult": 1.02})
    runs = _runs(cells, lambda c: 0.0, macs=lambda c: 40e6 * (1.01 if c["width_mult"] > 1 else 1))
    curves = pd.DataFrame(
        {"run_key": r.run_key, "epoch": e}
        | {"val_top1": 60 + (8 + faster * (r.coarse_module == "expanded")) * e + r.seed % 3}
        for r in runs.itertuples()
        for e in range(1, 11)
    )
    return runs, curves


def test_principle2_draws_both_curves_the_threshold_and_the_epochs(tmp_path, figures) -> None:
    runs, curves = _paired_modules()
    rendered = run_principle(2, runs, curves, tmp_path, curve="val_top1", threshold=80.0)
    assert rendered.plot == tmp_path / "principle2.png" and rendered.missing == ""
    assert "to 80.00% validation top-1 (the threshold fixed in the study file)" in rendered.verdict
    (ax,) = figures["principle2.png"].axes
    assert ax.get_xlabel() == "epoch" and unit(ax.get_ylabel()) == "%"
    assert len(_bands(ax)) == 2  # one band per coarse module
    flat = [line for line in ax.lines if list(line.get_ydata()) == [80.0, 80.0]]
    assert len(flat) == 1  # the threshold
    per = analyze(2, runs, curves, curve="val_top1", threshold=80.0).per
    diamonds = sorted(line.get_xdata()[0] for line in ax.lines if line.get_marker() == "D")
    assert diamonds == pytest.approx(sorted(per["epochs_mean"]))
    # the figure needs the curves: without them it is named, not drawn
    bare = run_principle(2, runs, None, tmp_path / "bare", curve="val_top1", threshold=80.0)
    assert bare.plot is None and "val_top1" in bare.missing


def test_principle3_draws_95_and_90_intervals_inside_the_margin(tmp_path, figures) -> None:
    drops = {0.125: 3.0, 0.25: 0.1, 0.5: 0.0}
    cells = [{"reduce_ratio": r} for r in (0.125, 0.25, 0.5, 1.0)]
    runs = _runs(cells, lambda c: -drops.get(c["reduce_ratio"], 0.0))
    runs["macs"] *= 1 + 0.01 * runs["reduce_ratio"]
    rendered = run_principle(3, runs, None, tmp_path)
    facts = analyze(3, runs).facts
    (ax,) = figures["principle3.png"].axes
    assert unit(ax.get_ylabel()) == "points" and ax.get_xscale() == "log"
    thick = [line for line in ax.lines if line.get_linewidth() == 6]
    drawn = np.array([line.get_ydata() for line in thick])
    assert drawn == pytest.approx(np.array([facts["ci90"][r] for r in (0.125, 0.25, 0.5)]))
    (margin,) = ax.patches
    assert (margin.get_y(), margin.get_y() + margin.get_height()) == pytest.approx((-1.0, 1.0))
    assert rendered.missing == ""


def test_principle4_draws_the_quadratic_its_band_and_vertex(tmp_path, figures) -> None:
    depths = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
    cells = [{"depth_mult": d, "width_mult": 1.0 / d**0.5} for d in depths]
    runs = _runs(
        cells,
        lambda c: -2.0 * (np.log2(c["depth_mult"] / 1.5)) ** 2,
        macs=lambda c: 40e6 * (1.2 if c["depth_mult"] == 4.0 else 1.0),  # off the budget
    )
    rendered = run_principle(4, runs, None, tmp_path)
    vertex = analyze(4, runs).facts["vertex"]["depth"]
    (ax,) = figures["principle4.png"].axes
    assert unit(ax.get_ylabel()) == "%" and ax.get_xscale() == "log"
    (line,) = _fitted(ax)
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert (x.min(), x.max()) == pytest.approx((0.5, 3.0))  # the flagged depth 4 is left out
    assert x[np.argmax(y)] == pytest.approx(vertex.value, rel=0.03)
    assert len(_bands(ax)) == 1
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert [ln.get_xdata()[0] for ln in dashed] == pytest.approx([vertex.value])
    assert rendered.missing == ""


def test_earlier_designs_say_what_the_fitted_figure_needs(tmp_path) -> None:
    runs = _runs(
        [{"min_repr": m, "grid_reduction": "parallel"} for m in (0.125, 0.25, 0.5)], lambda c: 0.0
    )
    rendered = run_principle(1, runs, None, tmp_path)
    assert rendered.plot is not None and "squeeze design" in rendered.missing
    section = {"principle": 1, "title": "p1", "statement": "s", **rendered._asdict()}
    page = render_principles([section], {"title": "principles"}, tmp_path / "page")
    assert f"Not drawn: {rendered.missing}." in page["report.md"].read_text()
