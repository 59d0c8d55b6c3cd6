"""segments know who a campaign purged out of the active base: `segment_aggregates.is_purged`

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segment_aggregates") as batch:
        batch.add_column(
            sa.Column(
                "is_purged",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
                comment="Out of the active base (purged, not restored) at the end of the day before computed_on.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("segment_aggregates") as batch:
        batch.drop_column("is_purged")
