"""Numbers for people: one format per quantity, shared by every table, sentence and plot.

``FORMATS`` is the table (quantity -> decimals and unit rule) and ``fmt(quantity, value)``
applies it: accuracies in percent or points with 2 decimals, ratios with 3, MACs in M (2
decimals) or G (3) with thousands separators, counts as exact integers with separators. A
missing or non-finite value reads "n/a"; a negative one has a true minus sign (U+2212).
Raw values stay in the CSVs; only what a person reads goes through here. It lives on the
ground floor so the analysis layer's sentences (claim evidence) use the same formats as the
report layer's tables and plots.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FORMATS",
    "METRIC_QUANTITY",
    "MINUS",
    "Format",
    "fmt",
    "fmt_interval",
    "macs_unit",
    "quantity_of",
    "to_float",
]

MINUS = "\u2212"


@dataclass(frozen=True)
class Format:
    """How one quantity is shown: ``decimals`` after the point, an optional ``suffix``."""

    decimals: int
    suffix: str = ""
    what: str = ""


#: quantity -> format. "macs" and "setting" have rules of their own (see ``fmt``).
FORMATS: dict[str, Format] = {
    "accuracy": Format(2, what="top-1/top-5 in %, a difference or SD of them in points"),
    "nll": Format(4, what="negative log-likelihood or a loss, nats per image"),
    "ece": Format(4, what="expected calibration error, a fraction"),
    "ratio": Format(3, what="MAC, parameter and block cost ratios; smallest representation"),
    "p_value": Format(3, what="a p-value"),
    "correlation": Format(2, what="Pearson's r"),
    "percent": Format(1, what="a share or change in %, e.g. MACs off a median"),
    "epochs": Format(2, what="epochs (to a threshold), and slopes of them"),
    "seconds": Format(1, what="a duration in seconds"),
    "minutes": Format(1, what="a duration in minutes"),
    "milliseconds": Format(2, what="a duration in milliseconds (per step)"),
    "throughput": Format(0, what="images per second; a matmul peak in GMAC/s"),
    "gmac_rate": Format(1, what="effective GMAC/s of training"),
    "speedup": Format(2, suffix="x", what="a speed or throughput ratio"),
    "count": Format(0, what="an exact count: parameters, images, runs"),
    "macs": Format(2, what="multiply-adds: M with 2 decimals, G with 3 (from 1e9 on)"),
    "setting": Format(4, what="a chosen value (width, depth, a recipe's lr): 4 significant"),
}

#: The quantity of each metric column of runs.csv / curves.csv.
METRIC_QUANTITY: dict[str, str] = {
    "test_top1": "accuracy",
    "test_top5": "accuracy",
    "val_top1": "accuracy",
    "train_top1": "accuracy",
    "aux_top1": "accuracy",
    "test_nll": "nll",
    "train_loss": "nll",
    "test_ece": "ece",
    "epochs": "epochs",
    "train_time_s": "seconds",
    "images_per_s": "throughput",
    "macs": "macs",
    "params": "count",
    "min_repr": "ratio",
}

_MACS_UNITS = {"M": (1e6, 2), "G": (1e9, 3)}


def quantity_of(metric: str) -> str:
    """The quantity of a metric column ("accuracy" for unknown ones)."""
    return METRIC_QUANTITY.get(metric, "accuracy")


def to_float(value: object) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, not a number, a bool)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fixed(v: float, decimals: int, sign: bool) -> str:
    text = f"{v:{'+' if sign else ''},.{decimals}f}"
    if float(text.replace(",", "")) == 0:  # no "-0.00": a rounded zero has no sign
        text = f"{0.0:{'+' if sign else ''}.{decimals}f}"
    return text.replace("-", MINUS)


def macs_unit(values: Iterable[object]) -> str:
    """The unit of a MACs column: "G" when its largest value reaches 1e9, else "M"."""
    finite = [abs(v) for v in map(to_float, values) if v is not None]
    return "G" if finite and max(finite) >= 1e9 else "M"


def _setting(v: float) -> str:
    """4 significant digits, at most 4 decimals, no trailing zeros: 0.5, 1.268, 0.0005, 1e-05."""
    if v != 0 and abs(v) < 1e-4:
        return f"{v:.3g}"
    decimals = min(4, max(0, 3 - math.floor(math.log10(abs(v))))) if v else 0
    text = f"{v:,.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text.replace("-", MINUS)


def fmt(quantity: str, value: object, *, sign: bool = False, unit: str | None = None) -> str:
    """``value`` as a person reads it: the format of ``quantity`` (see ``FORMATS``).

    ``sign``: always a sign (+0.17 / −0.31), for differences. ``macs`` without ``unit`` picks M
    or G and appends it ("40.68 M"); with ``unit`` ("M" or "G", e.g. from ``macs_unit`` of the
    column) it gives the number alone, for a column whose header names the unit.
    """
    if quantity not in FORMATS:
        raise ValueError(f"unknown quantity {quantity!r}; known: {', '.join(sorted(FORMATS))}")
    v = to_float(value)
    if v is None:
        return "n/a"
    if quantity == "macs":
        shown = unit or macs_unit([v])
        if shown not in _MACS_UNITS:
            raise ValueError(f"unknown MACs unit {shown!r}; known: M, G")
        scale, decimals = _MACS_UNITS[shown]
        text = _fixed(v / scale, decimals, sign)
        return text if unit else f"{text} {shown}"
    if quantity == "setting":
        return _setting(v)
    f = FORMATS[quantity]
    return _fixed(v, f.decimals, sign) + f.suffix


def fmt_interval(quantity: str, mean: object, lo: object, hi: object, *, sign: bool = False) -> str:
    """``mean [lo, hi]`` in the quantity's format; "(1 run, no CI)" without an interval.

    An infinite end (an anytime-valid confidence sequence before enough seeds) shows as ∞.
    """
    if to_float(mean) is None:
        return "n/a"
    shown = fmt(quantity, mean, sign=sign)
    ends = [fmt_end(quantity, v, sign=sign) for v in (lo, hi)]
    if None in ends:
        return f"{shown} (1 run, no CI)"
    return f"{shown} [{ends[0]}, {ends[1]}]"


def fmt_end(quantity: str, value: object, *, sign: bool = False) -> str | None:
    """One end of an interval: formatted, "−∞"/"+∞" when infinite, None when missing."""
    if to_float(value) is not None:
        return fmt(quantity, value, sign=sign)
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return ("−∞" if v < 0 else "+∞") if math.isinf(v) else None
