"""Checking single values of a study file: each check returns the value typed or fails in one line.

Every failure is a StudyFileError ``FILE: key.path: problem; valid: ...`` naming the first
problem; studyfile.py checks whole files with these, plan.py checks ``--set`` values.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import Any, Literal

from archlab.arch.spec import AXES, ArchSpec, field_names
from archlab.convert import convert
from archlab.study.errors import StudyFileError
from archlab.train.config import ConfigError, TrainConfig, validate_config

__all__ = [
    "MAX_SEEDS",
    "RECIPE_FIELDS",
    "RECIPE_KEYS",
    "SPEC_HINTS",
    "as_mapping",
    "as_seeds",
    "as_string",
    "check_config",
    "fail",
    "recipe_overrides",
    "recipe_value",
    "reject_unknown",
    "spec_overrides",
    "spec_value",
]

SPEC_HINTS = typing.get_type_hints(ArchSpec)
_RECIPE_HINTS = typing.get_type_hints(TrainConfig)
RECIPE_FIELDS = tuple(f.name for f in fields(TrainConfig))
#: the recipe keys a study may set: every field but the seed (seeds are their own key)
RECIPE_KEYS = tuple(f for f in RECIPE_FIELDS if f != "seed")
#: seeds are integers in [0, MAX_SEEDS): an absurd number of seeds fails at once, not after
#: minutes of expanding it (``seeds: 1000000000`` would build a billion-entry tuple)
MAX_SEEDS = 100_000


def fail(
    where: str, path: str, problem: str, valid: typing.Iterable[object] = ()
) -> typing.NoReturn:
    """Raise the one-line StudyFileError ``WHERE: PATH: PROBLEM; valid: VALID``."""
    valid = [str(v) for v in valid]
    tail = f"; valid: {', '.join(valid)}" if valid else ""
    raise StudyFileError(f"{where}: {path}: {problem}{tail}")


def _type_words(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, args))
    if args:
        return " or ".join(_type_words(a) for a in args)
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, "null"
    )


def spec_value(where: str, path: str, key: str, value: Any) -> Any:
    """``value`` checked as the ArchSpec field ``key``: an axis option or a typed knob."""
    if key in AXES:
        names = AXES[key].names()
        if value not in names:
            fail(where, path, f"{value!r} is not a {key} option", names)
        return value
    try:
        return convert(value, SPEC_HINTS[key])
    except ValueError:
        fail(where, path, f"{value!r} is not {_type_words(SPEC_HINTS[key])}")


def recipe_value(where: str, path: str, key: str, value: Any) -> Any:
    """``value`` checked as the TrainConfig field ``key``."""
    hint = _RECIPE_HINTS[key]
    try:
        return convert(value, hint)
    except ValueError:
        if typing.get_origin(hint) is Literal:
            fail(where, path, f"{value!r} is not an option", typing.get_args(hint))
        fail(where, path, f"{value!r} is not {_type_words(hint)}")


def as_mapping(where: str, path: str, value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping with string keys."""
    if not isinstance(value, dict):
        fail(where, path, f"expected a mapping, got {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            fail(where, path, f"key {k!r} is not a string")
    return value


def as_string(where: str, path: str, value: Any, *, empty: bool = True) -> str:
    """``value`` if it is a string (non-blank unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value.strip()):
        fail(where, path, "expected a non-empty string" if not empty else "expected a string")
    return value


def reject_unknown(
    where: str, path: str, data: dict[str, Any], valid: typing.Sequence[str]
) -> None:
    """Fail on the first key of ``data`` that is not in ``valid``."""
    for k in data:
        if k not in valid:
            fail(where, f"{path}.{k}" if path else k, "unknown key", valid)


def spec_overrides(where: str, path: str, data: Any) -> dict[str, Any]:
    """A mapping of ArchSpec fields, each value checked."""
    data = as_mapping(where, path, data)
    reject_unknown(where, path, data, field_names())
    return {k: spec_value(where, f"{path}.{k}", k, v) for k, v in data.items()}


def recipe_overrides(where: str, path: str, data: Any) -> dict[str, Any]:
    """A mapping of TrainConfig fields (not the seed), each value checked."""
    data = as_mapping(where, path, data)
    reject_unknown(where, path, data, RECIPE_KEYS)
    return {k: recipe_value(where, f"{path}.{k}", k, v) for k, v in data.items()}


def as_seeds(where: str, path: str, value: Any) -> tuple[int, ...]:
    """A number of seeds N (0..N-1) or a list of distinct seeds, all below MAX_SEEDS."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SEEDS:
            fail(where, path, f"{value} seeds: allowed 1 to {MAX_SEEDS:,}")
        return tuple(range(value))
    if not isinstance(value, list) or not value:
        fail(where, path, f"{value!r} is not a number of seeds (>= 1) or a list of seeds")
    if len(value) > MAX_SEEDS:
        fail(where, path, f"{len(value):,} seeds: allowed 1 to {MAX_SEEDS:,}")
    for i, s in enumerate(value):
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < MAX_SEEDS:
            fail(where, f"{path}[{i}]", f"seed {s!r} is not an integer in [0, {MAX_SEEDS:,})")
    if len(set(value)) != len(value):
        fail(where, path, f"duplicate seeds in {value}")
    return tuple(value)


def check_config(where: str, path: str, config: TrainConfig) -> None:
    """Fail where the trainer would reject ``config`` (checked before any run starts)."""
    try:
        validate_config(config)
    except ConfigError as e:
        fail(where, path, str(e))
