"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` must match it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from tracker.store.types import UTCDateTime

__all__ = [
    "alerts",
    "buyers",
    "metadata",
    "notices",
    "order_items",
    "orders",
    "report_dirty_hours",
    "report_dirty_parcels",
    "report_parcels",
    "report_rollup",
    "report_rollup_days",
    "report_rollup_state",
    "report_ticket_hours",
    "report_transit",
    "reports",
    "runtime_state",
    "shipments",
    "ticket_log",
    "tickets",
    "tracking_events",
]

# Named constraints so migrations and batch ALTERs work alike on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity columns.
Id = BigInteger().with_variant(Integer(), "sqlite")

buyers = Table(
    "buyers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("phone", String(20), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("chat_id", String(200)),
    Column("opt_out", Boolean, nullable=False, default=False),
    Column("opt_out_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False, unique=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    Column("paid_at", UTCDateTime(), nullable=False),
    Column("ship_by", UTCDateTime()),
    Column("deliver_by", UTCDateTime()),
    Column("origin_province", String(40), nullable=False),
    Column("origin_city", String(40), nullable=False),
    Column("dest_province", String(40), nullable=False),
    Column("dest_city", String(40), nullable=False),
    Column("dest_district", String(40)),
    Column("dest_address", String(300)),
    Column("items_weight_kg", Float),
    # False once every parcel is finished and no ticket is open: the periodic pass skips it.
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # When a time-based rule may next change its verdict (migration 0003): the periodic
    # pass reads only active orders whose moment has come (tracker.domain.rules_schedule).
    Column("next_check_at", UTCDateTime()),
    Index("ix_orders_active_id", "active", "id"),
    Index(
        "ix_orders_next_check_active",
        "next_check_at",
        "id",
        sqlite_where=text("active = 1"),
        postgresql_where=text("active"),
    ),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_pk", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_weight_kg", Float),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_pk", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("courier", String(20), nullable=False),
    Column("tracking_number", String(40), nullable=False),
    Column("shipped_at", UTCDateTime()),
    Column("status", String(20), nullable=False, default="pending"),
    Column("source", String(40)),
    Column("weight_kg", Float),
    Column("weight_source", String(20)),
    Column("provider_finished", Boolean, nullable=False, default=False),
    Column("first_scan_at", UTCDateTime()),
    Column("last_scan_at", UTCDateTime()),
    Column("delivered_at", UTCDateTime()),
    Column("next_poll_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),
    Column("claimed_by", String(80)),
    Column("last_polled_at", UTCDateTime()),
    Column("poll_count", Integer, nullable=False, default=0),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("error_kind", String(30)),
    Column("error_message", Text),
    Column("error_excerpt", Text),
    Column("error_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("order_pk", "tracking_number", name="uq_shipments_order_tracking"),
    Index("ix_shipments_tracking_number", "tracking_number"),
    Index("ix_shipments_next_poll_at", "next_poll_at"),
)

tracking_events = Table(
    "tracking_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shipment_id", ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("raw_code", String(60), nullable=False),
    Column("text", Text, nullable=False),
    Column("problem", String(20)),
    Column("country", String(40)),
    Column("province", String(40)),
    Column("city", String(40)),
    Column("district", String(40)),
    # sha1 of time|raw_code|text: the dedupe identity without indexing long texts
    Column("dedupe_key", String(40), nullable=False),
    Column("source", String(40)),
    Column("ingested_at", UTCDateTime(), nullable=False),
    UniqueConstraint("shipment_id", "dedupe_key", name="uq_tracking_events_dedupe"),
    Index("ix_tracking_events_shipment_time", "shipment_id", "time"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_pk", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("shipment_id", ForeignKey("shipments.id", ondelete="SET NULL")),
    Column("courier", String(20)),
    Column("tracking_number", String(40)),
    Column("kind", String(30), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("status", String(15), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("resolution", Text),
    Column("note", Text),
    Column("evidence", JSON, nullable=False),
    Column("suggested_action", Text, nullable=False),
    Column("detections", Integer, nullable=False, default=1),
    # Set when an agent resolves by hand: the same kind is not reopened for this order
    # until its condition has cleared once (no second notice to the buyer).
    Column("reopen_blocked", Boolean, nullable=False, default=False),
    # One open (not resolved) ticket per order and kind, enforced by the database.
    Index(
        "uq_tickets_open_order_kind",
        "order_pk",
        "kind",
        unique=True,
        sqlite_where=text("status != 'resolved'"),
        postgresql_where=text("status != 'resolved'"),
    ),
    Index("ix_tickets_status_kind", "status", "kind"),
    # kind too: the daily report counts tickets per day and kind from the index alone
    Index("ix_tickets_opened_at", "opened_at", "kind"),
)

ticket_log = Table(
    "ticket_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("action", String(20), nullable=False),
    Column("severity", String(10)),
    Column("note", Text),
    Column("actor", String(80)),
)

notices = Table(
    "notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("order_pk", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    Column("channel", String(10), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("template", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("status", String(12), nullable=False),
    Column("scheduled_for", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_until", UTCDateTime()),
    Column("claimed_by", String(80)),
    Column("reason", Text),
    Column("provider", String(30)),
    Column("provider_message_id", String(120)),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_notices_status_scheduled", "status", "scheduled_for"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("event_type", String(30), nullable=False),
    Column("endpoint", String(60), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("claimed_until", UTCDateTime()),
    Column("claimed_by", String(80)),
    Column("sent_at", UTCDateTime()),
    Column("reason", Text),
    Column("response_status", Integer),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_alerts_status_next", "status", "next_attempt_at"),
)

runtime_state = Table(
    "runtime_state",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Stored reports (migration 0002): one row per kind and report date, with every rendered form.
reports = Table(
    "reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("report_date", Date, nullable=False),
    Column("generated_at", UTCDateTime(), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("content_json", Text, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("content_csv", Text, nullable=False),
    # stored | delivering | delivered | partial | failed
    Column("status", String(12), nullable=False),
    Column("delivery", JSON),
    Column("delivered_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("kind", "report_date", name="uq_reports_kind_report_date"),
)

# Indexes the daily report's aggregate queries need (migration 0002; see tracker/report).
_OPEN = "status != 'resolved'"
Index(
    "ix_tickets_open_opened_at",
    tickets.c.opened_at,
    tickets.c.kind,
    tickets.c.severity,
    sqlite_where=text(_OPEN),
    postgresql_where=text(_OPEN),
)
Index("ix_tickets_resolved_at", tickets.c.resolved_at)
Index("ix_tickets_shipment_id", tickets.c.shipment_id)
Index("ix_ticket_log_at", ticket_log.c.at, ticket_log.c.action, ticket_log.c.ticket_id)
Index("ix_notices_status_sent_at", notices.c.status, notices.c.sent_at)
Index("ix_shipments_shipped_at", shipments.c.shipped_at)
Index(
    "ix_shipments_first_scan_unshipped",
    shipments.c.first_scan_at,
    sqlite_where=text("shipped_at IS NULL"),
    postgresql_where=text("shipped_at IS NULL"),
)
Index("ix_shipments_source_last_polled", shipments.c.source, shipments.c.last_polled_at)
# What the periodic detection pass starts from (migration 0003; see tracker/service/detect).
# covering: the silent-parcel query (status, last_scan_at) -> (id, order_pk) reads no heap
# (SQLite indexes carry the rowid, which is id; PostgreSQL needs it included)
Index(
    "ix_shipments_status_last_scan",
    shipments.c.status,
    shipments.c.last_scan_at,
    shipments.c.order_pk,
    postgresql_include=["id"],
)
# Detection reads each order's tickets (migration 0003); deleting an order cascades here too.
Index("ix_tickets_order_pk", tickets.c.order_pk)
Index(
    "ix_shipments_source_failing",
    shipments.c.source,
    sqlite_where=text("error_kind IS NOT NULL"),
    postgresql_where=text("error_kind IS NOT NULL"),
)

# The daily report's rollups (migration 0004; see tracker/report/rollup.py). Triggers on
# shipments, orders and tickets append the parcels and hours they touch to the two
# ``report_dirty_*`` journals; the report job folds those into the rollups, and a report
# reads rollups plus whatever is still in the journals, so it is exact either way.
REPORT_KIND_SLOTS = 12
report_rollup_state = Table(
    "report_rollup_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("utc_offset_s", Integer, nullable=False),
    Column("kinds", String(400), nullable=False),
    # False while a rebuild runs: reports read the base tables until it is True
    Column("ready", Boolean, nullable=False),
    # the instant the rollups' counts hold at (a report window's end), and the time of
    # day (seconds after local midnight) that deadline slots start at
    Column("reference_at", UTCDateTime(), nullable=False),
    Column("anchor_s", Integer, nullable=False),
    Column("built_at", UTCDateTime(), nullable=False),
    Column("refreshed_at", UTCDateTime(), nullable=False),
)
# The allowance table each start day's deadlines were computed with (its digest).
report_rollup_days = Table(
    "report_rollup_days",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("signature", String(40), nullable=False),
)
# One row per parcel with a transit start: what it adds to the scorecard at reference_at.
report_parcels = Table(
    "report_parcels",
    metadata,
    Column("shipment_id", Id, primary_key=True, autoincrement=False),
    Column("day", Integer, nullable=False),
    Column("courier", String(20), nullable=False),
    Column("lane", SmallInteger, nullable=False),
    Column("dest_province", String(40), nullable=False),
    Column("back", Boolean, nullable=False),
    Column("delivered_s", Float),
    Column("deadline_s", Float),
    Column("due_slot", Integer, nullable=False),
    Column("hours", Integer),
    Column("kinds", Integer, nullable=False),
    Column("ticketed", Boolean, nullable=False),
    Column("open_tickets", Integer, nullable=False),
    Index(
        "ix_report_parcels_due_slot",
        "due_slot",
        "deadline_s",
        sqlite_where=text("due_slot > 0"),
        postgresql_where=text("due_slot > 0"),
    ),
    Index(
        "ix_report_parcels_delivered_s",
        "delivered_s",
        sqlite_where=text("delivered_s IS NOT NULL"),
        postgresql_where=text("delivered_s IS NOT NULL"),
    ),
)
# report_parcels summed per start day, group and (pending parcels only) deadline slot.
report_rollup = Table(
    "report_rollup",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("courier", String(20), primary_key=True),
    Column("lane", SmallInteger, primary_key=True, autoincrement=False),
    Column("dest_province", String(40), primary_key=True),
    Column("due_slot", Integer, primary_key=True, autoincrement=False),
    Column("parcels", Integer, nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("on_time", Integer, nullable=False),
    Column("late", Integer, nullable=False),
    Column("pending", Integer, nullable=False),
    Column("ticketed", Integer, nullable=False),
    Column("open_tickets", Integer, nullable=False),
    *(Column(f"kind_{i}", Integer, nullable=False) for i in range(REPORT_KIND_SLOTS)),
)
# Delivered parcels per start day, courier, lane and whole transit hours (percentiles).
report_transit = Table(
    "report_transit",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("courier", String(20), primary_key=True),
    Column("lane", SmallInteger, primary_key=True, autoincrement=False),
    Column("hours", Integer, primary_key=True, autoincrement=False),
    Column("parcels", Integer, nullable=False),
)
# Tickets opened and resolved per UTC hour (epoch hours) and kind (the trend charts).
report_ticket_hours = Table(
    "report_ticket_hours",
    metadata,
    Column("hour", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(30), primary_key=True),
    Column("opened", Integer, nullable=False),
    Column("resolved", Integer, nullable=False),
)
report_dirty_parcels = Table(
    "report_dirty_parcels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shipment_id", BigInteger, nullable=False),
)
report_dirty_hours = Table(
    "report_dirty_hours",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
)
# The action list walks the open tickets of one kind oldest first; tickets resolved after
# a report's window were open in it, and the report reads them from this index alone;
# so are the buyers notified in the window, and the alerts being retried (migration 0004).
# (status is listed too so that SQLite, which checks the predicate on the row, can still
# answer from the index alone)
Index(
    "ix_tickets_open_kind_opened_at",
    tickets.c.kind,
    tickets.c.opened_at,
    tickets.c.id,
    tickets.c.severity,
    tickets.c.status,
    sqlite_where=text(_OPEN),
    postgresql_where=text(_OPEN),
)
Index(
    "ix_tickets_resolved_open_before",
    tickets.c.resolved_at,
    tickets.c.opened_at,
    tickets.c.kind,
    tickets.c.severity,
    tickets.c.id,
    tickets.c.status,
    sqlite_where=text("status = 'resolved'"),
    postgresql_where=text("status = 'resolved'"),
)
Index("ix_notices_status_sent_buyer", notices.c.status, notices.c.sent_at, notices.c.buyer_id)
Index(
    "ix_alerts_queued_attempts",
    alerts.c.attempts,
    sqlite_where=text("status = 'queued'"),
    postgresql_where=text("status = 'queued'"),
)
