"""the daily report's rollups, the triggers that journal what they must re-read, an index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:00:00.000000

The carrier scorecard and the trend charts read a million tickets and parcels in seconds;
these tables let the report read a few thousand rows instead (``tracker/report/rollup.py``):

* ``report_parcels``: per parcel with a transit start, what it adds to the scorecard at
  the rollups' reference instant (start day, lane, deadline under the policy, delivery,
  its tickets' kinds);
* ``report_rollup`` / ``report_transit``: those summed per start day and group (and
  deadline slot for parcels still pending), and delivered parcels per whole transit hour;
* ``report_ticket_hours``: tickets opened and resolved per UTC hour and kind;
* ``report_rollup_state`` / ``report_rollup_days``: the reference instant, timezone and
  the allowance table each start day was computed with, so a report only trusts rows
  computed as it would compute them;
* ``report_dirty_parcels`` / ``report_dirty_hours``: journals filled by triggers on
  ``shipments``, ``orders`` and ``tickets`` whenever something a rollup depends on changes,
  whoever writes it. The report job folds them into the rollups; a report reads the
  parcels and hours still listed from the base tables, so it stays exact in between.

The triggers write nothing until the rollups are first built (no state row), so this
revision costs nothing until the daily report runs. The upgrade itself builds nothing:
the first report after it rebuilds the rollups (about 20 s per million parcels on
PostgreSQL) and reads the base tables until then. Four indexes serve the rest
of the report from indexes alone: open tickets of one kind by age (the action list),
resolved tickets by resolution time (tickets open at a past window's end), notices by
status and time with their buyer; and queued alerts by attempts.
"""

import sqlalchemy as sa
from alembic import op

import tracker.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_KIND_SLOTS = 12
_OPEN = "status != 'resolved'"
_RESOLVED = "status = 'resolved'"
_QUEUED = "status = 'queued'"
_DUE = "due_slot > 0"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = tracker.store.types.UTCDateTime(timezone=True)

# What a parcel's scorecard row depends on, per table (IS DISTINCT FROM: nulls compare).
_SHIPMENT_CHANGED = (
    "coalesce(OLD.shipped_at, OLD.first_scan_at) IS DISTINCT FROM "
    "coalesce(NEW.shipped_at, NEW.first_scan_at)"
    " OR OLD.delivered_at IS DISTINCT FROM NEW.delivered_at"
    " OR OLD.courier IS DISTINCT FROM NEW.courier"
    " OR OLD.order_pk IS DISTINCT FROM NEW.order_pk"
    " OR (OLD.status IN ('returning', 'returned'))"
    " IS DISTINCT FROM (NEW.status IN ('returning', 'returned'))"
)
_ORDER_CHANGED = " OR ".join(
    f"OLD.{c} IS DISTINCT FROM NEW.{c}"
    for c in ("origin_province", "origin_city", "dest_province", "dest_city")
)
_TICKET_PARCEL = (
    "OLD.shipment_id IS DISTINCT FROM NEW.shipment_id OR OLD.kind IS DISTINCT FROM NEW.kind"
    " OR (OLD.status = 'resolved') IS DISTINCT FROM (NEW.status = 'resolved')"
)
_TICKET_OPENED = (
    "OLD.opened_at IS DISTINCT FROM NEW.opened_at OR OLD.kind IS DISTINCT FROM NEW.kind"
)
_TICKET_RESOLVED = (
    "OLD.resolved_at IS DISTINCT FROM NEW.resolved_at OR OLD.kind IS DISTINCT FROM NEW.kind"
)
_SHIPMENT_COLUMNS = "shipped_at, first_scan_at, delivered_at, status, courier, order_pk"
_ORDER_COLUMNS = "origin_province, origin_city, dest_province, dest_city"
_TICKET_COLUMNS = "shipment_id, kind, status, opened_at, resolved_at"
_BUILT = "EXISTS (SELECT 1 FROM report_rollup_state)"

_PG_FUNCTIONS = (
    f"""
CREATE FUNCTION report_mark_shipment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT {_BUILT} THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO report_dirty_parcels (shipment_id) VALUES (OLD.id);
    ELSE
        INSERT INTO report_dirty_parcels (shipment_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION report_mark_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {_BUILT} THEN
        INSERT INTO report_dirty_parcels (shipment_id)
        SELECT id FROM shipments WHERE order_pk = NEW.id;
    END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION report_mark_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT {_BUILT} THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO report_dirty_parcels (shipment_id)
        SELECT NEW.shipment_id WHERE NEW.shipment_id IS NOT NULL;
        INSERT INTO report_dirty_hours (at)
        SELECT a FROM (VALUES (NEW.opened_at), (NEW.resolved_at)) AS v (a) WHERE a IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO report_dirty_parcels (shipment_id)
        SELECT OLD.shipment_id WHERE OLD.shipment_id IS NOT NULL;
        INSERT INTO report_dirty_hours (at)
        SELECT a FROM (VALUES (OLD.opened_at), (OLD.resolved_at)) AS v (a) WHERE a IS NOT NULL;
    ELSE
        IF {_TICKET_PARCEL} THEN
            INSERT INTO report_dirty_parcels (shipment_id)
            SELECT s FROM (VALUES (OLD.shipment_id), (NEW.shipment_id)) AS v (s)
            WHERE s IS NOT NULL;
        END IF;
        IF {_TICKET_OPENED} THEN
            INSERT INTO report_dirty_hours (at) VALUES (OLD.opened_at), (NEW.opened_at);
        END IF;
        IF {_TICKET_RESOLVED} THEN
            INSERT INTO report_dirty_hours (at)
            SELECT a FROM (VALUES (OLD.resolved_at), (NEW.resolved_at)) AS v (a)
            WHERE a IS NOT NULL;
        END IF;
    END IF;
    RETURN NULL;
END $$""",
)
_PG_TRIGGERS = (
    "CREATE TRIGGER report_shipments_inserted AFTER INSERT ON shipments FOR EACH ROW"
    " WHEN (NEW.shipped_at IS NOT NULL OR NEW.first_scan_at IS NOT NULL)"
    " EXECUTE FUNCTION report_mark_shipment()",
    "CREATE TRIGGER report_shipments_deleted AFTER DELETE ON shipments FOR EACH ROW"
    " WHEN (OLD.shipped_at IS NOT NULL OR OLD.first_scan_at IS NOT NULL)"
    " EXECUTE FUNCTION report_mark_shipment()",
    f"CREATE TRIGGER report_shipments_updated AFTER UPDATE OF {_SHIPMENT_COLUMNS} ON shipments"
    f" FOR EACH ROW WHEN ({_SHIPMENT_CHANGED}) EXECUTE FUNCTION report_mark_shipment()",
    f"CREATE TRIGGER report_orders_updated AFTER UPDATE OF {_ORDER_COLUMNS} ON orders"
    f" FOR EACH ROW WHEN ({_ORDER_CHANGED}) EXECUTE FUNCTION report_mark_order()",
    "CREATE TRIGGER report_tickets_written AFTER INSERT OR DELETE ON tickets FOR EACH ROW"
    " EXECUTE FUNCTION report_mark_ticket()",
    f"CREATE TRIGGER report_tickets_updated AFTER UPDATE OF {_TICKET_COLUMNS} ON tickets"
    f" FOR EACH ROW WHEN ({_TICKET_PARCEL} OR {_TICKET_OPENED} OR {_TICKET_RESOLVED})"
    " EXECUTE FUNCTION report_mark_ticket()",
)


def _sqlite(condition: str) -> str:
    """The PostgreSQL condition in SQLite's words (``IS NOT`` compares nulls too)."""
    return condition.replace("IS DISTINCT FROM", "IS NOT")


_MARK = "INSERT INTO report_dirty_parcels (shipment_id)"
_HOUR = "INSERT INTO report_dirty_hours (at)"
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER report_shipments_inserted AFTER INSERT ON shipments FOR EACH ROW"
    f" WHEN (NEW.shipped_at IS NOT NULL OR NEW.first_scan_at IS NOT NULL) AND {_BUILT}"
    f" BEGIN {_MARK} VALUES (NEW.id); END",
    "CREATE TRIGGER report_shipments_deleted AFTER DELETE ON shipments FOR EACH ROW"
    f" WHEN (OLD.shipped_at IS NOT NULL OR OLD.first_scan_at IS NOT NULL) AND {_BUILT}"
    f" BEGIN {_MARK} VALUES (OLD.id); END",
    f"CREATE TRIGGER report_shipments_updated AFTER UPDATE OF {_SHIPMENT_COLUMNS} ON shipments"
    f" FOR EACH ROW WHEN ({_sqlite(_SHIPMENT_CHANGED)}) AND {_BUILT}"
    f" BEGIN {_MARK} VALUES (NEW.id); END",
    f"CREATE TRIGGER report_orders_updated AFTER UPDATE OF {_ORDER_COLUMNS} ON orders"
    f" FOR EACH ROW WHEN ({_sqlite(_ORDER_CHANGED)}) AND {_BUILT}"
    f" BEGIN {_MARK} SELECT id FROM shipments WHERE order_pk = NEW.id; END",
    f"CREATE TRIGGER report_tickets_inserted AFTER INSERT ON tickets FOR EACH ROW WHEN {_BUILT}"
    f" BEGIN {_MARK} SELECT NEW.shipment_id WHERE NEW.shipment_id IS NOT NULL;"
    f" {_HOUR} VALUES (NEW.opened_at);"
    f" {_HOUR} SELECT NEW.resolved_at WHERE NEW.resolved_at IS NOT NULL; END",
    f"CREATE TRIGGER report_tickets_deleted AFTER DELETE ON tickets FOR EACH ROW WHEN {_BUILT}"
    f" BEGIN {_MARK} SELECT OLD.shipment_id WHERE OLD.shipment_id IS NOT NULL;"
    f" {_HOUR} VALUES (OLD.opened_at);"
    f" {_HOUR} SELECT OLD.resolved_at WHERE OLD.resolved_at IS NOT NULL; END",
    f"CREATE TRIGGER report_tickets_updated AFTER UPDATE OF {_TICKET_COLUMNS} ON tickets"
    f" FOR EACH ROW WHEN ({_sqlite(_TICKET_PARCEL)} OR {_sqlite(_TICKET_OPENED)}"
    f" OR {_sqlite(_TICKET_RESOLVED)}) AND {_BUILT} BEGIN"
    f" {_MARK} SELECT OLD.shipment_id"
    f" WHERE OLD.shipment_id IS NOT NULL AND ({_sqlite(_TICKET_PARCEL)});"
    f" {_MARK} SELECT NEW.shipment_id"
    f" WHERE NEW.shipment_id IS NOT NULL AND ({_sqlite(_TICKET_PARCEL)});"
    f" {_HOUR} SELECT OLD.opened_at WHERE {_sqlite(_TICKET_OPENED)};"
    f" {_HOUR} SELECT NEW.opened_at WHERE {_sqlite(_TICKET_OPENED)};"
    f" {_HOUR} SELECT OLD.resolved_at"
    f" WHERE OLD.resolved_at IS NOT NULL AND ({_sqlite(_TICKET_RESOLVED)});"
    f" {_HOUR} SELECT NEW.resolved_at"
    f" WHERE NEW.resolved_at IS NOT NULL AND ({_sqlite(_TICKET_RESOLVED)}); END",
)
_TRIGGERS = (
    ("report_shipments_inserted", "shipments"),
    ("report_shipments_deleted", "shipments"),
    ("report_shipments_updated", "shipments"),
    ("report_orders_updated", "orders"),
    ("report_tickets_written", "tickets"),
    ("report_tickets_inserted", "tickets"),
    ("report_tickets_deleted", "tickets"),
    ("report_tickets_updated", "tickets"),
)
_FUNCTIONS = ("report_mark_shipment", "report_mark_order", "report_mark_ticket")


def upgrade() -> None:
    op.create_table(
        "report_rollup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("utc_offset_s", sa.Integer(), nullable=False),
        sa.Column("kinds", sa.String(length=400), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("reference_at", _TS, nullable=False),
        sa.Column("anchor_s", sa.Integer(), nullable=False),
        sa.Column("built_at", _TS, nullable=False),
        sa.Column("refreshed_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollup_state")),
    )
    op.create_table(
        "report_rollup_days",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("signature", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_rollup_days")),
    )
    op.create_table(
        "report_parcels",
        sa.Column("shipment_id", _ID, autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("courier", sa.String(length=20), nullable=False),
        sa.Column("lane", sa.SmallInteger(), nullable=False),
        sa.Column("dest_province", sa.String(length=40), nullable=False),
        sa.Column("back", sa.Boolean(), nullable=False),
        sa.Column("delivered_s", sa.Float(), nullable=True),
        sa.Column("deadline_s", sa.Float(), nullable=True),
        sa.Column("due_slot", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=True),
        sa.Column("kinds", sa.Integer(), nullable=False),
        sa.Column("ticketed", sa.Boolean(), nullable=False),
        sa.Column("open_tickets", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shipment_id", name=op.f("pk_report_parcels")),
    )
    op.create_index(
        "ix_report_parcels_due_slot",
        "report_parcels",
        ["due_slot", "deadline_s"],
        unique=False,
        sqlite_where=sa.text(_DUE),
        postgresql_where=sa.text(_DUE),
    )
    op.create_index(
        "ix_report_parcels_delivered_s",
        "report_parcels",
        ["delivered_s"],
        unique=False,
        sqlite_where=sa.text("delivered_s IS NOT NULL"),
        postgresql_where=sa.text("delivered_s IS NOT NULL"),
    )
    op.create_table(
        "report_rollup",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("courier", sa.String(length=20), nullable=False),
        sa.Column("lane", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("dest_province", sa.String(length=40), nullable=False),
        sa.Column("due_slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("parcels", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("ticketed", sa.Integer(), nullable=False),
        sa.Column("open_tickets", sa.Integer(), nullable=False),
        *(sa.Column(f"kind_{i}", sa.Integer(), nullable=False) for i in range(_KIND_SLOTS)),
        sa.PrimaryKeyConstraint(
            "day", "courier", "lane", "dest_province", "due_slot", name=op.f("pk_report_rollup")
        ),
    )
    op.create_table(
        "report_transit",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("courier", sa.String(length=20), nullable=False),
        sa.Column("lane", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("hours", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("parcels", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "courier", "lane", "hours", name=op.f("pk_report_transit")),
    )
    op.create_table(
        "report_ticket_hours",
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "kind", name=op.f("pk_report_ticket_hours")),
    )
    op.create_table(
        "report_dirty_parcels",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("shipment_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_dirty_parcels")),
    )
    op.create_table(
        "report_dirty_hours",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_dirty_hours")),
    )
    op.create_index(
        "ix_tickets_open_kind_opened_at",
        "tickets",
        ["kind", "opened_at", "id", "severity", "status"],
        unique=False,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_tickets_resolved_open_before",
        "tickets",
        ["resolved_at", "opened_at", "kind", "severity", "id", "status"],
        unique=False,
        sqlite_where=sa.text(_RESOLVED),
        postgresql_where=sa.text(_RESOLVED),
    )
    op.create_index(
        "ix_notices_status_sent_buyer",
        "notices",
        ["status", "sent_at", "buyer_id"],
        unique=False,
    )
    op.create_index(
        "ix_alerts_queued_attempts",
        "alerts",
        ["attempts"],
        unique=False,
        sqlite_where=sa.text(_QUEUED),
        postgresql_where=sa.text(_QUEUED),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*_PG_FUNCTIONS, *_PG_TRIGGERS):
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgresql else ""))
    if postgresql:
        for function in _FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_index("ix_alerts_queued_attempts", table_name="alerts")
    op.drop_index("ix_notices_status_sent_buyer", table_name="notices")
    op.drop_index("ix_tickets_resolved_open_before", table_name="tickets")
    op.drop_index("ix_tickets_open_kind_opened_at", table_name="tickets")
    for table in (
        "report_dirty_hours",
        "report_dirty_parcels",
        "report_ticket_hours",
        "report_transit",
        "report_rollup",
    ):
        op.drop_table(table)
    op.drop_index("ix_report_parcels_delivered_s", table_name="report_parcels")
    op.drop_index("ix_report_parcels_due_slot", table_name="report_parcels")
    op.drop_table("report_parcels")
    op.drop_table("report_rollup_days")
    op.drop_table("report_rollup_state")
