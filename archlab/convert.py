"""One value converter for dataclass fields: a ``key=value`` text or a YAML value to a type hint.

Hints: bool, int, float, str, ``Literal[...]`` and unions such as ``X | None``. Where a float
is wanted an int converts to it. A value that does not fit raises ValueError; each caller turns
that into its own message (naming the key, the value and what is allowed).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection
from typing import Any, Literal

__all__ = ["NONE_WORDS", "TRUE_WORDS", "FALSE_WORDS", "convert"]

#: texts that mean None where a hint allows it (compared lower-case)
NONE_WORDS = ("none", "null")
#: texts of a bool (compared lower-case)
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def convert(
    value: Any, hint: Any, *, text: bool = False, none_words: Collection[str] = NONE_WORDS
) -> Any:
    """``value`` converted to the type ``hint``; ValueError when it does not fit.

    ``text=True`` reads a command-line text: bools from TRUE_WORDS / FALSE_WORDS, ints and
    floats by ``int()`` / ``float()``; str and Literal hints get the text itself (the caller's
    validation names a Literal's choices). ``text=False`` takes a parsed (YAML) value as it is:
    a bool, int or str must already be one, an int or float becomes a float, a Literal must be
    one of its values. In both, a union tries None (``None`` or a ``none_words`` text) where it
    allows None, then each other member in order.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, text, none_words)
    if origin is Literal:
        if text or value in args:
            return value
        raise ValueError(f"{value!r} is not one of {args}")
    if text:
        return _from_text(value, hint)
    return _from_yaml(value, hint)


def _union(value: Any, args: tuple[Any, ...], text: bool, none_words: Collection[str]) -> Any:
    if type(None) in args and (
        value is None or isinstance(value, str) and value.lower() in none_words
    ):
        return None
    for a in args:
        if a is not type(None):
            try:
                return convert(value, a, text=text, none_words=none_words)
            except ValueError:
                pass
    raise ValueError(f"{value!r} fits none of {args}")


def _from_text(value: str, hint: Any) -> Any:
    if hint is bool:
        if value.lower() not in TRUE_WORDS + FALSE_WORDS:
            raise ValueError(f"{value!r} is not a bool")
        return value.lower() in TRUE_WORDS
    if hint is int:
        return int(value)
    if hint is float:
        return float(value)
    if hint is str:
        return value
    raise TypeError(f"cannot convert to {hint!r}")


def _from_yaml(value: Any, hint: Any) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and number and isinstance(value, int):
        return value
    if hint is float and number:
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if hint in (bool, int, float, str):
        raise ValueError(f"{value!r} is not a {hint.__name__}")
    raise TypeError(f"cannot convert to {hint!r}")
