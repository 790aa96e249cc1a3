"""A small named registry: register, get (errors list valid names), list (fnmatch)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from archlab.errors import UserError

T = TypeVar("T")


class RegistryError(UserError, KeyError):
    """An unknown name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered option: its object, a one-line description and its paper source."""

    name: str
    obj: T
    description: str
    paper: str
    #: bumped when what the option builds changes, so stored runs of the old build get new keys
    revision: int = 0


class Registry(Generic[T]):
    """Options of one kind, in registration order (the first is the default)."""

    def __init__(self, kind: str, description: str = "") -> None:
        self.kind = kind
        self.description = description
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, description: str, paper: str = "", revision: int = 0
    ) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind}: {name!r} is already registered")
            self._entries[name] = Entry(name, obj, description, paper, revision)
            return obj

        return deco

    def add(
        self, name: str, obj: T, *, description: str, paper: str = "", revision: int = 0
    ) -> None:
        """Register ``obj`` without a decorator."""
        self.register(name, description=description, paper=paper, revision=revision)(obj)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; an unknown name lists the valid ones."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self._entries) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def get(self, name: str) -> T:
        """The object registered as ``name``."""
        return self.entry(name).obj

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, in registration order."""
        return [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]

    @property
    def default(self) -> str:
        """The first registered name."""
        return next(iter(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
