"""a backfill's completed days, so it resumes where it stopped

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backfill_days",
        sa.Column(
            "backfill", sa.String(length=256), nullable=False, comment="job:start..end[:steps] (the backfill's identity)."
        ),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False, comment="The day's final state (Completed, GateClosed, ...)."),
        sa.Column("run_id", sa.String(length=64), nullable=True, comment="Its flow run, to open in the Prefect UI."),
        sa.PrimaryKeyConstraint("backfill", "as_of"),
    )


def downgrade() -> None:
    op.drop_table("backfill_days")
