"""Numbers for people: one format per quantity (archlab.numbers), and no raw float in a report.

The scan reads every committed Markdown report (and the README's generated block): a number
with more than 4 decimals there is a value that skipped ``fmt`` (raw values belong in the CSVs).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from archlab.numbers import FORMATS, MINUS, fmt, fmt_interval, macs_unit, quantity_of
from archlab.report.plots import GroupedTicks

ROOT = Path(__file__).resolve().parents[1]
#: a number with 5 or more decimals that is not part of a longer token (a version, a hash)
LONG_FLOAT = re.compile(r"(?<![\w.])[+\-\u2212]?\d[\d,]*\.\d{5,}(?![\w.])")
README_BLOCK = re.compile(r"<!-- archlab:results:begin.*?<!-- archlab:results:end -->", re.S)


def long_floats(root: Path, readme: Path | None = None) -> list[str]:
    """``file:line: number`` for every number with more than 4 decimals in the reports."""
    texts = [(p, p.read_text()) for p in sorted(root.glob("**/*.md"))]
    if readme is not None and readme.exists():
        block = README_BLOCK.search(readme.read_text())
        texts.append((readme, block.group(0) if block else ""))
    found = []
    for path, text in texts:
        for number, line in enumerate(text.splitlines(), start=1):
            found += [f"{path}:{number}: {m}" for m in LONG_FLOAT.findall(line)]
    return found


def test_no_committed_report_shows_a_float_with_more_than_4_decimals() -> None:
    found = long_floats(ROOT / "reports", ROOT / "README.md")
    assert not found, "unformatted numbers (use archlab.numbers.fmt):\n" + "\n".join(found[:20])


def test_the_scan_finds_raw_floats_and_spares_other_tokens(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.md").write_text(
        "| parallel | 0.2916666666666667 | 3 |\nratio 0.666667 and \u22121.268307\n"
        "fine: 86.88, 0.7200, 5,713.22, torch 2.13.0, 10.0.0.12345, commit 4e3e43b, 1e-05\n"
    )
    found = long_floats(tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == [
        "0.2916666666666667",
        "0.666667",
        "\u22121.268307",
    ]


# --- the formats ---------------------------------------------------------------------------------


CASES = [
    ("accuracy", 86.87999, "86.88"),
    ("accuracy", 100.0, "100.00"),
    ("nll", 0.54183048, "0.5418"),
    ("ece", 0.014756936, "0.0148"),
    ("ratio", 2 / 3, "0.667"),
    ("ratio", 0.2916666666666667, "0.292"),
    ("p_value", 0.04567, "0.046"),
    ("correlation", -0.9412, f"{MINUS}0.94"),
    ("percent", 15.06, "15.1"),
    ("epochs", 1.23456, "1.23"),
    ("seconds", 2200.04, "2,200.0"),
    ("minutes", 49.333, "49.3"),
    ("milliseconds", 12.3456, "12.35"),
    ("throughput", 551.6, "552"),
    ("gmac_rate", 67.44, "67.4"),
    ("speedup", 1.7234, "1.72x"),
    ("count", 23_834_568, "23,834,568"),
    ("macs", 40_679_616, "40.68 M"),
    ("macs", 999_994_999, "999.99 M"),
    ("macs", 5_713_216_096, "5.713 G"),
    ("setting", 1.268307, "1.268"),
    ("setting", 0.636112, "0.6361"),
    ("setting", 0.5, "0.5"),
    ("setting", 3.0, "3"),
    ("setting", 0.0005, "0.0005"),
    ("setting", 1e-5, "1e-05"),
    ("setting", 30000, "30,000"),
]


@pytest.mark.parametrize(("quantity", "value", "shown"), CASES)
def test_each_quantity_has_its_format(quantity: str, value: float, shown: str) -> None:
    assert fmt(quantity, value) == shown


def test_every_quantity_is_tested_above_and_documented() -> None:
    assert {q for q, _, _ in CASES} == set(FORMATS)
    assert all(f.what for f in FORMATS.values())


def test_signs_missing_values_and_units() -> None:
    assert fmt("accuracy", 0.171, sign=True) == "+0.17"
    assert fmt("accuracy", -0.308, sign=True) == f"{MINUS}0.31"
    assert fmt("accuracy", -0.001) == fmt("accuracy", 0.0) == "0.00"  # no "-0.00"
    assert fmt("accuracy", -0.001, sign=True) == "+0.00"
    for missing in (None, math.nan, math.inf, "x", True):
        assert fmt("accuracy", missing) == "n/a"
    assert fmt("accuracy", np.float32(86.875)) == "86.88" and fmt("count", np.int64(7)) == "7"
    # a MACs column names its unit in the header: the cells are numbers in it
    assert macs_unit([40e6, 41e6, math.nan]) == "M" and macs_unit([40e6, 5.7e9]) == "G"
    assert macs_unit([]) == "M"
    assert fmt("macs", 5_713_216_096, unit="M") == "5,713.22"
    assert fmt("macs", 40_679_616, unit="G") == "0.041"
    with pytest.raises(ValueError, match="unknown quantity 'acc'; known: accuracy"):
        fmt("acc", 1.0)
    with pytest.raises(ValueError, match="unknown MACs unit 'K'"):
        fmt("macs", 1.0, unit="K")


def test_intervals_and_metric_quantities() -> None:
    assert fmt_interval("accuracy", 86.881, 86.74, 87.031) == "86.88 [86.74, 87.03]"
    assert fmt_interval("ratio", 0.5, math.nan, math.nan) == "0.500 (1 run, no CI)"
    assert fmt_interval("accuracy", math.nan, 1.0, 2.0) == "n/a"
    assert fmt_interval("accuracy", 0.2, -0.1, 0.5, sign=True) == f"+0.20 [{MINUS}0.10, +0.50]"
    assert quantity_of("test_top1") == quantity_of("val_top1") == "accuracy"
    assert (quantity_of("test_nll"), quantity_of("test_ece")) == ("nll", "ece")
    assert quantity_of("min_repr") == "ratio" and quantity_of("macs") == "macs"


def test_plot_axes_read_like_the_tables() -> None:
    """MAC axes: thousands separators, the decimals the tick step needs, no offset."""
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([5000.0, 5750.0], [0, 1])
    ax.set_xlim(5000.0, 5750.0)
    ax.xaxis.set_major_formatter(GroupedTicks())
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("," in t for t in labels) and "5,000" in labels
    ax.set_xlim(40.2, 40.8)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "40.4" in labels and not any("e" in t or "+" in t for t in labels)
