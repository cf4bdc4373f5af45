"""Bulk data for the benchmark, written straight into the real (migrated) schema.

Two data sets, both deterministic for a given size and moment:

* :func:`load_poll_set`: ``n`` paid orders with one parcel each, all due for polling, whose
  numbers the fake provider knows (the throughput run polls them for real).
* :func:`tests.bench.live_set.load_live_set`: ``n`` orders with one *live* parcel each
  (in transit, at the door, stalled, lost, mis-routed, not picked up yet) and their scans,
  plus one ticket per order with its history, buyer notices and agent alerts: the
  database the detection pass, the stalled query and the daily report are measured on.

Rows go in with ``COPY`` on PostgreSQL (psycopg's copy, foreign-key triggers off while
loading, sequences moved past the ids used) and with big ``executemany`` batches on
SQLite, never through the ORM or one statement per row. Rows are generated lazily in
chunks, so memory stays flat whatever ``n`` is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.engine import make_url

from tests.bench.scenario import (
    ORIGINS,
    PLACES,
    Place,
    Shares,
    fate_of,
    number_for,
    shipped_at_for,
)
from tracker.store import migrate
from tracker.store.uow import make_engine

__all__ = [
    "BUYER_COLS",
    "ITEM_COLS",
    "ORDER_COLS",
    "SHIP_COLS",
    "Loader",
    "PollSet",
    "buyer_rows",
    "item_row",
    "load_poll_set",
    "migrate_fresh",
    "open_loader",
    "order_row",
]

_CHUNK = 20_000
_NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴婷")
_SKUS = (("TEA-500", "龙井 500g"), ("CUP-01", "青瓷茶杯"), ("HONEY-1", "槐花蜜 1kg"))


def migrate_fresh(url: str) -> None:
    """Bring an empty database to the newest schema with the project's own migrations."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


class Loader:
    """Bulk writer for one database: ``COPY`` on PostgreSQL, ``executemany`` on SQLite."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        self.rows_written: dict[str, int] = {}
        self._hours: dict[int, str] = {}
        self._suffix = "+00" if self.dialect == "postgresql" else ".000000"
        self._pg: Any = None
        self._lite: sqlite3.Connection | None = None
        if self.dialect == "postgresql":
            import psycopg

            plain = make_url(url).set(drivername="postgresql")
            self._pg = psycopg.connect(plain.render_as_string(hide_password=False))
            # the data is consistent by construction; per-row FK triggers would triple load time
            self._pg.execute("SET session_replication_role = replica")
        else:
            path = make_url(url).database
            if not path:
                raise ValueError(f"SQLite URL without a file: {url}")
            self._lite = sqlite3.connect(path)
            self._lite.execute("PRAGMA foreign_keys=OFF")
            self._lite.execute("PRAGMA synchronous=OFF")

    def ts(self, value: datetime | None) -> str | None:
        """A time as the store keeps it (TIMESTAMPTZ text, or SQLAlchemy's naive UTC text)."""
        if value is None:
            return None
        utc = value.astimezone(UTC)
        if self.dialect == "postgresql":
            return utc.isoformat(timespec="microseconds")
        return utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def ts_epoch(self, epoch: int | None) -> str | None:
        """:meth:`ts` of a whole epoch second, cached per hour (millions of rows need it)."""
        if epoch is None:
            return None
        hour, rest = divmod(epoch, 3600)
        prefix = self._hours.get(hour)
        if prefix is None:
            prefix = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%d %H")
            self._hours[hour] = prefix
        minute, second = divmod(rest, 60)
        return f"{prefix}:{minute:02d}:{second:02d}{self._suffix}"

    def flag(self, value: bool) -> Any:
        """A boolean as the driver takes it."""
        return value if self.dialect == "postgresql" else int(value)

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Append ``rows`` to ``table``; returns how many were written."""
        count = 0
        if self._pg is not None:
            names = ", ".join(columns)
            with self._pg.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            assert self._lite is not None
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            for chunk in _chunks(rows, _CHUNK):
                self._lite.executemany(sql, chunk)
                count += len(chunk)
        self.rows_written[table] = self.rows_written.get(table, 0) + count
        return count

    def finish(self) -> None:
        """Commit, move id sequences past the ids written, and refresh planner statistics."""
        if self._pg is not None:
            for table in self.rows_written:
                self._pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
            self._pg.commit()
            self._pg.autocommit = True
            for table in self.rows_written:
                self._pg.execute(f"VACUUM ANALYZE {table}")
            self._pg.close()
        else:
            assert self._lite is not None
            self._lite.commit()
            self._lite.execute("ANALYZE")
            self._lite.commit()
            self._lite.close()

    def close(self) -> None:
        """Drop the connection without committing (after an error)."""
        if self._pg is not None and not self._pg.closed:
            self._pg.close()
        if self._lite is not None:
            self._lite.close()


def open_loader(url: str) -> Loader:
    """A :class:`Loader` on ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    return Loader(url)


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


BUYER_COLS = (
    "id",
    "phone",
    "name",
    "chat_id",
    "opt_out",
    "opt_out_at",
    "created_at",
    "updated_at",
)
ORDER_COLS = (
    "id",
    "order_id",
    "buyer_id",
    "paid_at",
    "origin_province",
    "origin_city",
    "dest_province",
    "dest_city",
    "dest_district",
    "dest_address",
    "items_weight_kg",
    "active",
    "created_at",
    "updated_at",
    "next_check_at",
)
ITEM_COLS = ("id", "order_pk", "line_no", "sku", "name", "qty", "unit_weight_kg")
SHIP_COLS = (
    "id",
    "order_pk",
    "courier",
    "tracking_number",
    "shipped_at",
    "status",
    "source",
    "provider_finished",
    "first_scan_at",
    "last_scan_at",
    "next_poll_at",
    "last_polled_at",
    "poll_count",
    "consecutive_failures",
    "created_at",
    "updated_at",
)


def buyer_rows(lo: Loader, count: int, at: datetime) -> Iterator[tuple[Any, ...]]:
    """``count`` buyers with distinct phones (every 97th opted out)."""
    stamp = lo.ts(at)
    for i in range(1, count + 1):
        opt_out = i % 97 == 0
        yield (
            i,
            f"13{i:09d}",
            _NAMES[i % len(_NAMES)],
            None,
            lo.flag(opt_out),
            stamp if opt_out else None,
            stamp,
            stamp,
        )


def order_row(
    lo: Loader,
    pk: int,
    prefix: str,
    buyers: int,
    paid: datetime,
    origin: Place,
    dest: Place,
    next_check_at: datetime | Literal["paid"] | None = "paid",
) -> tuple[Any, ...]:
    """The ``orders`` row of order ``pk`` (order id ``prefix`` + number).

    ``next_check_at`` is when detection looks at the order next (``None``: only new facts
    make it due); by default the order is due since payment, as an import leaves it.
    """
    district = dest.districts[pk % len(dest.districts)]
    stamp = lo.ts(paid)
    return (
        pk,
        f"{prefix}{pk:09d}",
        (pk - 1) % buyers + 1,
        stamp,
        origin.province,
        origin.city,
        dest.province,
        dest.city,
        district,
        f"{district}幸福路 {pk % 300 + 1} 号",
        1.0,
        lo.flag(True),
        stamp,
        stamp,
        stamp if next_check_at == "paid" else lo.ts(next_check_at),
    )


def item_row(pk: int) -> tuple[Any, ...]:
    """The one item line of order ``pk`` (1 kg)."""
    sku, name = _SKUS[pk % len(_SKUS)]
    return (pk, pk, 1, sku, name, 1, 1.0)


def _places(pk: int) -> tuple[Place, Place]:
    return ORIGINS[pk % len(ORIGINS)], PLACES[(pk * 7) % len(PLACES)]  # as live_set._place_ids


@dataclass
class PollSet:
    """What :func:`load_poll_set` wrote."""

    shipments: int
    fates: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def load_poll_set(url: str, n: int, start: datetime, shares: Shares) -> PollSet:
    """``n`` orders with one parcel each, shipped per their fate and due at ``start``."""
    lo = open_loader(url)
    fates: dict[str, int] = {}
    buyers = max(1, n // 2)
    try:
        lo.write("buyers", BUYER_COLS, buyer_rows(lo, buyers, start - timedelta(days=30)))
        plan: list[tuple[int, str, str, datetime]] = []
        for pk in range(1, n + 1):
            courier, number = number_for(pk)
            fate = fate_of(number, shares)
            fates[fate] = fates.get(fate, 0) + 1
            plan.append((pk, courier, number, shipped_at_for(fate, start)))

        def orders() -> Iterator[tuple[Any, ...]]:
            for pk, _, _, shipped in plan:
                origin, dest = _places(pk)
                yield order_row(lo, pk, "P", buyers, shipped - timedelta(hours=8), origin, dest)

        def shipments() -> Iterator[tuple[Any, ...]]:
            due = lo.ts(start - timedelta(hours=1))
            for pk, courier, number, shipped in plan:
                stamp = lo.ts(shipped)
                yield (
                    pk, pk, courier, number, stamp, "pending", None, lo.flag(False),
                    None, None, due, None, 0, 0, stamp, stamp,
                )  # fmt: skip

        lo.write("orders", ORDER_COLS, orders())
        lo.write("order_items", ITEM_COLS, (item_row(pk) for pk in range(1, n + 1)))
        lo.write("shipments", SHIP_COLS, shipments())
        lo.finish()
    except BaseException:
        lo.close()
        raise
    return PollSet(n, fates, dict(lo.rows_written))
