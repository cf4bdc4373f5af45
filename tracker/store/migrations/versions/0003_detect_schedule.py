"""what the periodic detection pass starts from: each order's next check, and parcel clocks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:00:00.000000

``orders.next_check_at`` is the first moment a time-based rule could change its verdict
for the order (``tracker.domain.rules_schedule``); detection stores it for every order it
looks at, imports set it to "due now". The periodic pass reads only active orders whose
moment has come, through a partial index, instead of every active order. Orders that were
active before this revision are due at once (their next check is their payment time), so
the first pass after the upgrade looks at each once and schedules it.

The stalled and lost rules fire on parcels whose last scan is old for their status;
``shipments (status, last_scan_at, order_pk)`` (PostgreSQL: ``INCLUDE (id)``) lets the
database list those few and their orders from the index alone. ``tickets
(order_pk)`` serves detection's read of each order's tickets (and order deletes).

Index builds take a write lock on their table; on a large PostgreSQL database run
``tracker db upgrade`` in a quiet hour.
"""

import sqlalchemy as sa
from alembic import op

import tracker.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_shipments_status_last_scan",
        "shipments",
        ["status", "last_scan_at", "order_pk"],
        unique=False,
        postgresql_include=["id"],
    )
    # detection reads every looked-at order's tickets: without this, a scan of all tickets
    op.create_index("ix_tickets_order_pk", "tickets", ["order_pk"], unique=False)
    op.add_column(
        "orders",
        sa.Column("next_check_at", tracker.store.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute("UPDATE orders SET next_check_at = paid_at WHERE active")
    # the predicate is spelled as each backend renders ``orders.c.active.is_(True)``'s
    # equivalent in the pass's query, so the planner can prove the index applies
    op.create_index(
        "ix_orders_next_check_active",
        "orders",
        ["next_check_at", "id"],
        unique=False,
        sqlite_where=sa.text("active = 1"),
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_next_check_active", table_name="orders")
    op.drop_index("ix_tickets_order_pk", table_name="tickets")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("next_check_at")
    op.drop_index("ix_shipments_status_last_scan", table_name="shipments")
