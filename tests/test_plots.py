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
