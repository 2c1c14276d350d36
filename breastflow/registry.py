"""Explicit, named registries for pluggable families (STYLE habit 2).

Each family (vendor styles, feature extractors, GAN models, metrics ...) owns
one :class:`Registry`. Entries are registered next to their definition with
``@REGISTRY.register("name")``; lookups of unknown names fail with the nearest
valid names instead of guessing module paths from strings.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A name -> object mapping for one pluggable family.

    Args:
        family: human-readable family name used in error messages, e.g.
            ``"feature extractor"``.
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``.

        Raises:
            RegistryError: if ``name`` is already taken in this family.
        """

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (non-decorator form)."""
        key = name.lower()
        if key in self._entries:
            raise RegistryError(f"{self.family} {name!r} is registered twice")
        self._entries[key] = obj

    def get(self, name: str) -> T:
        """Look ``name`` up, case-insensitively.

        Raises:
            RegistryError: naming the closest valid entries when ``name`` is unknown.
        """
        key = name.lower()
        if key in self._entries:
            return self._entries[key]
        close = difflib.get_close_matches(key, self._entries, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"unknown {self.family} {name!r}{hint} (valid: {', '.join(sorted(self._entries))})"
        )

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
