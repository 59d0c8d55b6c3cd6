"""segment_memberships loses its `valid_to` index

Nearly every membership row is open (valid_to null: 96% at 1M customers after a few nights), so no
query reads through that index (open memberships are read by customer, the snapshot scans), while
every interval opened or closed each night paid one more B-tree insert for it (and on PostgreSQL
one more index entry per closing update).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: SQLite drops an index in place (a batch could copy the table).
    op.drop_index("ix_segment_memberships_valid_to", table_name="segment_memberships")


def downgrade() -> None:
    op.create_index("ix_segment_memberships_valid_to", "segment_memberships", ["valid_to"], unique=False)
