"""stored reports and the indexes the daily report's aggregate queries need

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000

Index builds take a write lock on their table; on a large PostgreSQL database run
``tracker db upgrade`` in a quiet hour (a million tickets index in a few seconds).
"""

import sqlalchemy as sa
from alembic import op

import tracker.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OPEN = "status != 'resolved'"
_UNSHIPPED = "shipped_at IS NULL"
_FAILING = "error_kind IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("generated_at", tracker.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_start", tracker.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", tracker.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("content_csv", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("delivery", sa.JSON(), nullable=True),
        sa.Column("delivered_at", tracker.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", tracker.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("kind", "report_date", name="uq_reports_kind_report_date"),
    )
    op.create_index(
        "ix_tickets_open_opened_at",
        "tickets",
        ["opened_at", "kind", "severity"],
        unique=False,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    # (opened_at) -> (opened_at, kind): the report's per-day, per-kind counts need no heap
    op.drop_index("ix_tickets_opened_at", table_name="tickets")
    op.create_index("ix_tickets_opened_at", "tickets", ["opened_at", "kind"], unique=False)
    op.create_index("ix_tickets_resolved_at", "tickets", ["resolved_at"], unique=False)
    op.create_index("ix_tickets_shipment_id", "tickets", ["shipment_id"], unique=False)
    op.create_index("ix_ticket_log_at", "ticket_log", ["at", "action", "ticket_id"], unique=False)
    op.create_index("ix_notices_status_sent_at", "notices", ["status", "sent_at"], unique=False)
    op.create_index("ix_shipments_shipped_at", "shipments", ["shipped_at"], unique=False)
    op.create_index(
        "ix_shipments_first_scan_unshipped",
        "shipments",
        ["first_scan_at"],
        unique=False,
        sqlite_where=sa.text(_UNSHIPPED),
        postgresql_where=sa.text(_UNSHIPPED),
    )
    op.create_index(
        "ix_shipments_source_last_polled",
        "shipments",
        ["source", "last_polled_at"],
        unique=False,
    )
    op.create_index(
        "ix_shipments_source_failing",
        "shipments",
        ["source"],
        unique=False,
        sqlite_where=sa.text(_FAILING),
        postgresql_where=sa.text(_FAILING),
    )


def downgrade() -> None:
    op.drop_index("ix_shipments_source_failing", table_name="shipments")
    op.drop_index("ix_shipments_source_last_polled", table_name="shipments")
    op.drop_index("ix_shipments_first_scan_unshipped", table_name="shipments")
    op.drop_index("ix_shipments_shipped_at", table_name="shipments")
    op.drop_index("ix_notices_status_sent_at", table_name="notices")
    op.drop_index("ix_ticket_log_at", table_name="ticket_log")
    op.drop_index("ix_tickets_shipment_id", table_name="tickets")
    op.drop_index("ix_tickets_resolved_at", table_name="tickets")
    op.drop_index("ix_tickets_opened_at", table_name="tickets")
    op.create_index("ix_tickets_opened_at", "tickets", ["opened_at"], unique=False)
    op.drop_index("ix_tickets_open_opened_at", table_name="tickets")
    op.drop_table("reports")
