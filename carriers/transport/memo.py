"""A small bounded memory for per-parcel facts a long-running process learns.

Adapters remember things like "this number's tracker id" or "already subscribed" for the
life of the process; a daemon may see millions of parcels, so the memory keeps only the
most recently used entries. Forgetting one is harmless: the adapter asks again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A least-recently-used mapping of at most ``size`` entries."""

    def __init__(self, size: int = 50_000) -> None:
        if size < 1:
            raise ValueError("size must be positive")
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: K) -> V | None:
        """The value for ``key`` (marking it recently used), or ``None``."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key``, forgetting the least recently used beyond ``size``."""
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def forget(self, key: K) -> None:
        """Drop ``key`` if present."""
        self._data.pop(key, None)
