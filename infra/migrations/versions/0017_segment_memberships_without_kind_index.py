"""segment_memberships loses its `(kind, segment, valid_from)` index and gets room for in-page updates on PostgreSQL

No query reads memberships by kind and segment: the snapshot and the open memberships are read by
customer (the primary key) or scanned whole, the sizes come from `segment_sizes` and the events.
Every interval opened each night paid one more B-tree insert for it.

On PostgreSQL `segment_memberships` keeps 10% of each page free (fillfactor 90): a night closes
intervals in place (`valid_to`, in no index), and an update that finds room in its page is a HOT
update (no new entry in the primary key, fewer pages dirtied and logged), where a full page moves
the row and adds an index entry (200k, one night's 16.9k closed intervals: HOT 6.0k -> 14-16k,
index blocks touched 296k -> 139-145k). It applies to pages written from now on (a first full run,
or a table rewrite). `segment_aggregates` was tried too: no measured change (2.8-6.0k HOT of its
12.8k updated rows with or without), so it stays packed.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: SQLite drops an index in place (a batch could copy the table).
    op.drop_index("ix_segment_memberships_kind_segment_valid_from", table_name="segment_memberships")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE segment_memberships SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE segment_memberships RESET (fillfactor)")
    op.create_index(
        "ix_segment_memberships_kind_segment_valid_from",
        "segment_memberships",
        ["kind", "segment", "valid_from"],
        unique=False,
    )
