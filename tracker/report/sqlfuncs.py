"""SQL building blocks the report needs that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import BigInteger, Float, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = [
    "bucket_of",
    "const",
    "day_of",
    "epoch_int",
    "epoch_seconds",
    "floor_int",
    "from_epoch",
    "nearest_rank",
]


class epoch_seconds(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of a stored timestamp, as a float."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part returns double precision (EXTRACT returns numeric, which is slower to sum)
    return f"date_part('epoch', {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamps are stored as naive UTC text, which julianday() reads as UTC
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def bucket_of(column: ColumnElement[Any], edges: Sequence[datetime]) -> ColumnElement[int]:
    """Index ``i`` of the interval ``[edges[i], edges[i+1])`` holding ``column``.

    Exact in every timezone (the edges are local midnights computed in Python) and the
    same SQL on both backends; the caller filters ``column`` to ``[edges[0], edges[-1])``.
    """
    whens = [(column < edge, literal(i)) for i, edge in enumerate(edges[1:-1])]
    if not whens:
        return literal(0)
    return case(*whens, else_=literal(len(edges) - 2))


def nearest_rank(count: ColumnElement[int], percent: int) -> ColumnElement[int]:
    """The 1-based rank of the ``percent``-th percentile among ``count`` sorted values.

    ``ceil(percent / 100 * count)`` in integer arithmetic, which both backends share.
    """
    return (count * percent + 99) // 100


class floor_int(FunctionElement[int]):
    """The largest integer not above a non-negative number (``floor``, as an integer)."""

    type = BigInteger()
    name = "floor_int"
    inherit_cache = True


@compiles(floor_int, "postgresql")
def _floor_pg(element: floor_int, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(floor_int, "sqlite")
def _floor_sqlite(element: floor_int, compiler: SQLCompiler, **kw: Any) -> str:
    # CAST truncates toward zero, which is floor for the non-negative values used here
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def day_of(
    column: ColumnElement[Any], epoch: ColumnElement[float], edges: Sequence[datetime]
) -> ColumnElement[int]:
    """Like :func:`bucket_of`, but arithmetic when every day is 24 h long (no DST change).

    ``epoch`` is ``column`` in epoch seconds; a division beats 30 comparisons per row.
    """
    lengths = {(b - a).total_seconds() for a, b in pairwise(edges)}
    if lengths != {86400.0}:
        return bucket_of(column, edges)
    return floor_int((epoch - edges[0].timestamp()) / 86400.0)


class epoch_int(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a stored timestamp, rounded down, exactly.

    Day and hour arithmetic uses this rather than :class:`epoch_seconds`: SQLite's
    ``julianday`` is a float that can land a few microseconds before a midnight.
    """

    type = BigInteger()
    name = "epoch_int"
    inherit_cache = True


@compiles(epoch_int, "postgresql")
def _epoch_int_pg(element: epoch_int, compiler: SQLCompiler, **kw: Any) -> str:
    # EXTRACT gives an exact numeric (date_part's double rounds microseconds)
    return f"CAST(floor(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(epoch_int, "sqlite")
def _epoch_int_sqlite(element: epoch_int, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


class from_epoch(FunctionElement[Any]):
    """The stored-timestamp form of whole epoch seconds, comparable with timestamp columns."""

    name = "from_epoch"
    inherit_cache = True


@compiles(from_epoch, "postgresql")
def _from_epoch_pg(element: from_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_timestamp({compiler.process(element.clauses, **kw)})"


@compiles(from_epoch, "sqlite")
def _from_epoch_sqlite(element: from_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # naive UTC text, as UTCDateTime stores it; a shorter string sorts before the same
    # instant with microseconds, so range comparisons stay exact
    return f"datetime({compiler.process(element.clauses, **kw)}, 'unixepoch')"


def const(value: Any) -> Any:
    """``value`` written into the SQL text, not bound as a parameter (still cache-friendly).

    For conditions that repeat a partial index's predicate: SQLite uses a partial index
    only when the query states its condition with the same constant, which a ``?``
    parameter does not.
    """
    return literal(value, literal_execute=True)
