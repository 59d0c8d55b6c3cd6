"""the outbox's send window closes when the customer's quiet hours begin again (outbox.not_after)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "not_after",
                sa.DateTime(),
                nullable=True,
                comment="Quiet hours: not sent from this time on (business time zone), "
                "when the customer's quiet hours begin again.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("not_after")
