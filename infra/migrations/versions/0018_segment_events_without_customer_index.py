"""segment_events loses its `customer_id` index

Every reader of the events goes by day (the primary key starts with `as_of`): campaigns' "entered
pre-churn today", the reports' transition matrix, the sizes. The `customer_id` index served none of
them and doubled the cost of writing a night's events (1M customers, PostgreSQL: 1.37 s of server
time for 248k events, 1.4 M blocks touched, about half of them in that index).

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: SQLite drops an index in place (a batch could copy the table).
    op.drop_index("ix_segment_events_customer_id", table_name="segment_events")


def downgrade() -> None:
    op.create_index("ix_segment_events_customer_id", "segment_events", ["customer_id"], unique=False)
