"""Updates of one row by id through statements built once per column set.

Building an ``update(...).where(...).values(...)`` costs SQLAlchemy more CPU (expression
objects, cache key) than running it; the outbox records every send this way, so each
distinct set of columns gets one statement with bind parameters, reused for every row.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, Update, bindparam, update
from sqlalchemy.engine import Connection

__all__ = ["update_row"]

_VALUE = "v_"  # a bind parameter may not share its column's name in a SET clause


@functools.cache
def _statement(table: Table, columns: tuple[str, ...]) -> Update:
    return (
        update(table)
        .where(table.c.id == bindparam("p_id"))
        .values({name: bindparam(_VALUE + name, type_=table.c[name].type) for name in columns})
    )


def update_row(conn: Connection, table: Table, row_id: int, values: Mapping[str, Any]) -> None:
    """Set ``values`` (column name -> value) on the row of ``table`` whose id is ``row_id``."""
    statement = _statement(table, tuple(sorted(values)))
    params = {_VALUE + name: value for name, value in values.items()}
    params["p_id"] = row_id
    conn.execute(statement, params)
