"""the landing manifest keeps the store's version of a file (mtime or ETag): an unchanged file is not read again

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("landing_files") as batch:
        batch.add_column(
            sa.Column(
                "version",
                sa.String(length=160),
                nullable=True,
                comment="The store's version of the bytes read (mtime or ETag): while it stands, "
                "the file is not read again.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("landing_files") as batch:
        batch.drop_column("version")
