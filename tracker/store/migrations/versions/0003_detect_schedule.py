"""what the periodic detection pass starts from: parcels by status and last scan

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:00:00.000000

The stalled and lost rules fire on parcels whose last scan is old for their status; the
index lets the pass ask the database for those few instead of reading every active order.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_shipments_status_last_scan", "shipments", ["status", "last_scan_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_shipments_status_last_scan", table_name="shipments")
