"""free room on every shipments page so a poller's claim is a HOT update (PostgreSQL)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:00:00.000000

A claim only writes ``claimed_until`` and ``claimed_by``, which no index holds, so
PostgreSQL can write the new row version on the same page without touching the ten
indexes of ``shipments`` (a heap-only tuple) -- but only when the page has room. Pages
filled by a bulk load or by inserts at the default fillfactor (100) have none, so every
claim wrote ten index entries. A fillfactor of 80 keeps a fifth of each page free for the
claim's and the save's new versions; page pruning reclaims the dead ones later.

``ALTER TABLE ... SET (fillfactor)`` only changes how pages are filled from now on: an
existing database keeps its full pages until its rows move (each non-HOT update writes
the new version where there is room, so a regularly polled table converges by itself), or
at once with ``VACUUM FULL shipments`` (rewrites the table under an exclusive lock) in a
quiet hour. SQLite has no fillfactor: nothing changes there.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE shipments SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE shipments RESET (fillfactor)")
