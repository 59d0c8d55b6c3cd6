"""segment_memberships loses its `(kind, segment, valid_from)` index; room for in-page updates on PostgreSQL

No query reads memberships by kind and segment: the snapshot and the open memberships are read by
customer (the primary key) or scanned whole, the sizes come from `segment_sizes` and the events.
Every interval opened each night paid one more B-tree insert for it.

On PostgreSQL `segment_memberships` and `segment_aggregates` keep 10% of each page free
(fillfactor 90): a night closes intervals (`valid_to`, in no index) and rewrites aggregate rows in
place, and an update that finds room in its page is a HOT update (no new entry in any index, fewer
pages dirtied and logged), where a full page moves the row and adds an entry to every index. It
applies to pages written from now on (a first full run, or a table rewrite).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FILLFACTOR_TABLES = ("segment_memberships", "segment_aggregates")


def upgrade() -> None:
    # Not batch mode: SQLite drops an index in place (a batch could copy the table).
    op.drop_index("ix_segment_memberships_kind_segment_valid_from", table_name="segment_memberships")
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTOR_TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTOR_TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.create_index(
        "ix_segment_memberships_kind_segment_valid_from",
        "segment_memberships",
        ["kind", "segment", "valid_from"],
        unique=False,
    )
