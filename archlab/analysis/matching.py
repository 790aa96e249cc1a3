"""Which comparison rows test which claim: a pair that differs in the claim's axis and nothing else.

A row (a variant against its baseline) tests a claim when the two cells differ on the claim's
``axis`` with its ``option`` and ``reference`` values, in either orientation, and agree on every
other design axis in ``DESIGN_AXES`` and every recipe field, except the fields the claim names as
going ``along`` with its axis and width/depth knobs the study solved to equal MACs.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from archlab.analysis.claims import Claim
from archlab.train.config import TrainConfig

#: Columns on which a claim's variant and baseline must agree, besides the claim's own axis.
DESIGN_AXES = (
    "conv5x5",
    "conv_nxn",
    "factor_act",
    "stem",
    "grid_reduction",
    "aux_head",
    "coarse_module",
    "n",
    "dropout",
    "aux_weight",
    "stem_stride",
    "squeeze_at",
    "squeeze_ratio",
)
#: Recipe fields a claim's two cells must share too (the seed pairs them; it is not a design).
RECIPE_AXES = tuple(f for f in TrainConfig().to_dict() if f != "seed")


def normalize(value: object) -> str:
    """Canonical text of a spec value: NaN/None -> "none", 0.10 -> "0.1", 79.0 -> "79"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    text = str(value).strip()
    if text.lower() in ("", "nan", "none", "null", "<na>"):
        return "none"
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _label_fields(label: str) -> dict[str, str]:
    """The key=value pairs of a variant label such as "conv5x5=5x5,width_mult=0.9"."""
    pairs = (part.partition("=") for part in label.split(","))
    return {k.strip(): v.strip() for k, sep, v in pairs if sep}


def spec_value(runs: pd.DataFrame, variant: str, axis: str) -> str | None:
    """A variant's value on an axis: its column if present, else its label; None if unknown."""
    rows = runs[runs["variant"] == variant]
    if axis in runs.columns and len(rows):
        return normalize(rows[axis].iloc[0])
    fields = _label_fields(variant)
    return normalize(fields[axis]) if axis in fields else None


def _matches(pattern: str, value: str | None) -> bool:
    return value is not None and any(
        fnmatch.fnmatchcase(value, normalize(p) if p != "*" else p) for p in pattern.split("|")
    )


#: Width/depth knobs may differ between a claim's two cells only when the study solved them to
#: equal MACs: the cells' MAC ratio within this of 1 (iso-MAC tolerances are 2-15%).
ISO_MACS_TOLERANCE = 0.15
SIZE_KNOBS = ("width_mult", "depth_mult", "reduce_ratio", "bottleneck_ratio")


def _knobs_differ(runs: pd.DataFrame, variant: str, base: str) -> bool:
    return any(
        spec_value(runs, variant, k) != spec_value(runs, base, k)
        for k in SIZE_KNOBS
        if k in runs.columns
    )


def _iso_macs(row: Mapping[str, object]) -> bool:
    ratio = float(row.get("macs_ratio", math.nan))
    return math.isfinite(ratio) and abs(ratio - 1.0) <= ISO_MACS_TOLERANCE


def _column(runs: pd.DataFrame, field: str) -> str:
    """The runs-table column of a recipe field (recipe_X where it collides with a spec field)."""
    return f"recipe_{field}" if f"recipe_{field}" in runs.columns else field


def confounds(claim: Claim, row: Mapping[str, object], runs: pd.DataFrame) -> list[str]:
    """The fields besides the claim's axis (and its ``along``) in which the row's cells differ."""
    variant, base = str(row["variant"]), str(row["baseline"])
    out = []
    for other in (*DESIGN_AXES, *RECIPE_AXES):
        col = _column(runs, other) if other in RECIPE_AXES else other
        if other == claim.axis or other in claim.along or col not in runs.columns:
            continue
        if spec_value(runs, variant, col) != spec_value(runs, base, col):
            out.append(other)
    if _knobs_differ(runs, variant, base) and not _iso_macs(row):
        # a width/depth knob may differ only when the study solved the cells to equal MACs
        out += [k for k in SIZE_KNOBS if spec_value(runs, variant, k) != spec_value(runs, base, k)]
    return list(dict.fromkeys(out))


#: A pair differing in at most this many fields besides the claim's is listed as confounded;
#: one differing in more (a search trial against the baseline) tests nothing and is left out.
LISTED_CONFOUNDS = 2


def match(claim: Claim, row: Mapping[str, object], runs: pd.DataFrame) -> tuple[int, list[str]]:
    """(+1 option-vs-reference / -1 reversed / 0 no test, the confounding fields if any)."""
    variant, base = str(row["variant"]), str(row["baseline"])
    v, b = spec_value(runs, variant, claim.axis), spec_value(runs, base, claim.axis)
    if v is None or b is None or v == b:
        return 0, []
    if claim.n is not None and any(
        spec_value(runs, x, "n") not in (None, str(claim.n)) for x in (variant, base)
    ):
        return 0, []  # a claim about one kernel size says nothing about another
    if _matches(claim.option, v) and _matches(claim.reference, b):
        sign = 1
    elif _matches(claim.option, b) and _matches(claim.reference, v):
        sign = -1
    else:
        return 0, []
    extra = confounds(claim, row, runs)
    if len(extra) > LISTED_CONFOUNDS:
        return 0, []  # not an attempt at this claim (a search trial): not listed at all
    return sign, extra
