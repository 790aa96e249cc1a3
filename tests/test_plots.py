"""Plots are written as valid PNG files, atomically, and carry their units."""

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


def test_acc_vs_macs_and_cost_bars(tmp_path, summary):
    p1 = plot_acc_vs_macs(summary, tmp_path / "acc.png", caption=CAP)
    p2 = plot_cost_bars(summary, tmp_path / "cost.png", caption=CAP)
    assert p1 == tmp_path / "acc.png" and _is_png(p1) and _is_png(p2)
    assert b"matplotlib.org" not in p1.read_bytes()  # no web address in the PNG metadata


def test_learning_curves_with_zoom(tmp_path):
    rows = [
        {"variant": v, "seed": s, "epoch": e, "test_top1": 60 + 3 * e + s}
        for v in ("baseline", "aux_head=none")
        for s in range(3)
        for e in range(1, 11)
    ]
    path = plot_learning_curves(pd.DataFrame(rows), tmp_path / "c.png", caption=CAP, zoom=0.3)
    assert _is_png(path)


def test_edf_reliability_and_xy(tmp_path):
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


def test_write_atomic_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "report.md"
    write_atomic(target, "old")
    with pytest.raises(TypeError):
        write_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temp file left behind


def test_forest_plot_draws_each_accuracy_row_with_units(tmp_path, monkeypatch) -> None:
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
    seen = {}
    real = plots._save

    def keep(fig, path, title, caption):
        (ax,) = fig.axes
        seen.update(xlabel=ax.get_xlabel(), ticks=[t.get_text() for t in ax.get_yticklabels()])
        return real(fig, path, title, caption)

    monkeypatch.setattr(plots, "_save", keep)
    path = plots.plot_forest(claims, tmp_path / "f.png", caption=CAP)
    assert path is not None and _is_png(path)
    assert "points" in seen["xlabel"] and "top-1" in seen["xlabel"]
    assert len(seen["ticks"]) == 2 and seen["ticks"][0].startswith("factor_act: a vs b")
    assert (
        plots.plot_forest(claims[claims["kind"] == "cost"], tmp_path / "g.png", caption=CAP) is None
    )
