"""One registry per design axis, and the ArchSpec that picks an option on every axis.

The blocks in ``archlab.arch.blocks`` register their options here; importing ``archlab`` loads them.
A new option is one decorated function: ``@CONV5X5.register("name", description=..., paper=...)``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields
from typing import Any

from archlab.arch.registry import Registry
from archlab.convert import convert
from archlab.errors import UserError

CONV5X5: Registry = Registry("conv5x5", "spatial part of module A's 5x5 branch")
CONV_NXN: Registry = Registry("conv_nxn", "n x n convolutions of module B (and plain module C)")
FACTOR_ACT: Registry = Registry("factor_act", "activation between the two convs of a factorization")
STEM: Registry = Registry("stem", "the first convolutions of the net")
GRID_REDUCTION: Registry = Registry("grid_reduction", "how the grid is halved between stages")
AUX_HEAD: Registry = Registry("aux_head", "auxiliary classifier on the middle stage")
COARSE_MODULE: Registry = Registry("coarse_module", "module of the coarsest grid")
SQUEEZE_AT: Registry = Registry("squeeze_at", "where a 1x1 squeeze narrows the trunk (principle 1)")
for _name, _where in (
    ("none", "no squeeze"),
    ("stem", "after the stem, before the first Inception stage (early)"),
    ("stage_a", "after the first stage, before the first grid reduction"),
    ("stage_b", "after the middle stage, before the second grid reduction (late)"),
):
    SQUEEZE_AT.add(_name, _name, description=_where, paper="Sec. 2, principle 1")

#: The design axes, in the order reports list them.
AXES: dict[str, Registry] = {
    r.kind: r
    for r in (
        CONV5X5,
        CONV_NXN,
        FACTOR_ACT,
        STEM,
        GRID_REDUCTION,
        AUX_HEAD,
        COARSE_MODULE,
        SQUEEZE_AT,
    )
}

#: Numeric knobs: name -> (help, lower bound, inclusive lower bound?).
KNOBS: dict[str, tuple[str, float, bool]] = {
    "n": ("kernel size n of the n x n axis (odd integer >= 3)", 3, True),
    "aux_weight": ("weight of the auxiliary loss (>= 0)", 0.0, True),
    "width_mult": ("multiplier of every channel width (> 0)", 0.0, False),
    "depth_mult": ("multiplier of the modules per stage (> 0)", 0.0, False),
    "reduce_ratio": ("1x1 reduction width / branch width (> 0); none = native", 0.0, False),
    "bottleneck_ratio": ("channels after a grid reduction / default (> 0)", 0.0, False),
    "dropout": ("dropout before the classifier, in [0, 1)", 0.0, True),
    "squeeze_ratio": ("channels a squeeze keeps, in (0, 1]", 0.0, False),
    "stem_stride": ("stride of the first conv (1 or 2); none = the model's", 1, True),
}
#: Knobs where None means "the model family's own value".
NONE_MEANS_NATIVE = ("reduce_ratio", "stem_stride")
#: Fields added after results were stored: left out of a run's key while at these defaults, so
#: the runs stored before them keep their identity.
ADDED_SPEC_FIELDS: dict[str, Any] = {
    "squeeze_at": "none",
    "squeeze_ratio": 1.0,
    "stem_stride": None,
}


class SpecError(UserError):
    """An invalid spec or override; the message names key, value and what is allowed."""


@dataclass(frozen=True)
class ArchSpec:
    """A choice on every design axis plus the numeric knobs; frozen so it can key results."""

    conv5x5: str = "3x3x2"
    conv_nxn: str = "1xn_nx1"
    factor_act: str = "relu"
    stem: str = "3x3x3"
    grid_reduction: str = "parallel"
    aux_head: str = "aux"
    coarse_module: str = "expanded"
    n: int = 7
    aux_weight: float = 0.4
    width_mult: float = 1.0
    depth_mult: float = 1.0
    reduce_ratio: float | None = None
    bottleneck_ratio: float = 1.0
    dropout: float = 0.2
    squeeze_at: str = "none"
    squeeze_ratio: float = 1.0
    stem_stride: int | None = None

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> ArchSpec:
        """A copy with some fields changed (validated)."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise SpecError(f"unknown spec key {unknown[0]!r}; valid: {', '.join(field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)

    def diff(self, other: ArchSpec) -> dict[str, Any]:
        """Fields of ``self`` that differ from ``other``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: v for k, v in a.items() if b[k] != v}


def revisions(spec: ArchSpec) -> dict[str, int]:
    """The revision of each chosen option that was rebuilt since its name was first used."""
    return {axis: r for axis, reg in AXES.items() if (r := reg.entry(getattr(spec, axis)).revision)}


def field_names() -> list[str]:
    """Every ArchSpec field name."""
    return [f.name for f in fields(ArchSpec)]


def validate(spec: ArchSpec) -> None:
    """Raise SpecError naming the first invalid field."""
    for axis, reg in AXES.items():
        value = getattr(spec, axis)
        if value not in reg:
            raise SpecError(f"{axis}={value!r} is not an option; valid: {', '.join(reg.names())}")
    for knob, (help_, low, inclusive) in KNOBS.items():
        value = getattr(spec, knob)
        if value is None and knob in NONE_MEANS_NATIVE:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{knob}={value!r} must be a number: {help_}")
        if value != value or value < low or (value == low and not inclusive):
            raise SpecError(f"{knob}={value!r} is out of range: {help_}")
    if not isinstance(spec.n, int) or spec.n % 2 == 0:
        # an even kernel cannot keep the grid size with symmetric 'same' padding
        raise SpecError(f"n={spec.n!r} must be an odd integer >= 3")
    if spec.dropout >= 1:
        raise SpecError(f"dropout={spec.dropout!r} is out of range: dropout in [0, 1)")
    if spec.squeeze_ratio > 1:
        raise SpecError(
            f"squeeze_ratio={spec.squeeze_ratio!r} is out of range: {KNOBS['squeeze_ratio'][0]}"
        )
    if spec.stem_stride is not None and spec.stem_stride not in (1, 2):
        raise SpecError(
            f"stem_stride={spec.stem_stride!r} is out of range: {KNOBS['stem_stride'][0]}"
        )
    valid_n = getattr(CONV_NXN.get(spec.conv_nxn), "valid_n", None)
    if valid_n is not None and spec.n not in valid_n:
        raise SpecError(f"conv_nxn={spec.conv_nxn!r} needs n in {sorted(valid_n)}, got n={spec.n}")


def parse_value(key: str, text: str) -> Any:
    """Convert the text of a ``key=value`` override to the field's type."""
    hints = typing.get_type_hints(ArchSpec)
    if key not in hints:
        raise SpecError(f"unknown spec key {key!r}; valid: {', '.join(field_names())}")
    try:
        # reduce_ratio, stem_stride: "none", "native" or nothing means the model's own
        return convert(text, hints[key], text=True, none_words=("none", "native", ""))
    except ValueError:
        if key == "n":
            raise SpecError(f"n={text!r} must be an odd integer >= 3") from None
        raise SpecError(f"{key}={text!r} must be a number: {KNOBS[key][0]}") from None


def apply_overrides(spec: ArchSpec, overrides: list[str] | dict[str, Any]) -> ArchSpec:
    """Apply ``axis=value`` strings (CLI) or a dict (study files) to a spec."""
    if isinstance(overrides, dict):
        changes = dict(overrides)
    else:
        changes = {}
        for item in overrides:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise SpecError(f"override {item!r} must look like key=value")
            changes[key.strip()] = parse_value(key.strip(), text.strip())
    try:
        return spec.replace(**changes)
    except TypeError as e:  # dataclasses.replace on a bad type slips through validate rarely
        raise SpecError(str(e)) from None


def variant_lines() -> list[str]:
    """The ``archlab variants`` listing: each axis with its options (* = default), the knobs."""
    rows = variant_table()
    width = max(len(r["axis"]) + len(r["option"]) for r in rows) + 3
    lines, axis = [], None
    for r in rows:
        if r["axis"] != axis:
            axis = r["axis"]
            lines.append(f"{axis}:")
        mark = "*" if r["default"] else " "
        label = f"  {mark} {r['option']}"
        lines.append(f"{label:<{width + 4}} {r['description']}  [{r['paper']}]")
    lines.append("knobs:")
    lines += [f"    {k:<{width}} {help_}" for k, (help_, _, _) in KNOBS.items()]
    return [*lines, "(* = default of the mini model)"]


def variant_table() -> list[dict[str, str]]:
    """One row per (axis, option): description, paper reference, whether it is the default."""
    rows = []
    for axis, reg in AXES.items():
        for e in reg:
            rows.append(
                {
                    "axis": axis,
                    "option": e.name,
                    "default": "yes" if e.name == reg.default else "",
                    "description": e.description,
                    "paper": e.paper,
                }
            )
    return rows
