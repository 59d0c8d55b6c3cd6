"""Keep each expectation's rule in quality_results.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quality_results") as batch:
        batch.add_column(sa.Column("rule", sa.String(64), nullable=True, comment="The rule the expectation checks (see expectations/README.md)."))
    # Rows stored before this revision carry the rule inside their expectation id: `type(..., rule=<rule>)`.
    op.execute("UPDATE quality_results SET rule = 'unknown' WHERE rule IS NULL")
    with op.batch_alter_table("quality_results") as batch:
        batch.alter_column("rule", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("quality_results") as batch:
        batch.drop_column("rule")
