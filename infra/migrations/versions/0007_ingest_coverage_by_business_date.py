"""ingest coverage by business date, and the business date of quarantined rows

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_coverage",
        sa.Column("business_date", sa.Date(), nullable=False, comment="A landing file's date, or the day of a source change."),
        sa.Column("source", sa.String(length=512), nullable=False, comment="file:<key> or db:<table>"),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("rows_duplicate", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", "source"),
    )
    # Loads made before this revision: their run's day is the best business date known.
    op.execute(
        "INSERT INTO ingest_coverage (business_date, source, entity, rows_read, rows_loaded, rows_quarantined, "
        "rows_duplicate) SELECT as_of, source, entity, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "FROM ingest_batches"
    )
    with op.batch_alter_table("quarantined_rows") as batch:
        batch.add_column(
            sa.Column(
                "business_date",
                sa.Date(),
                nullable=True,
                comment="The day the row belongs to: its file's date, or its source change's day.",
            )
        )
    op.execute("UPDATE quarantined_rows SET business_date = as_of WHERE business_date IS NULL")
    with op.batch_alter_table("quarantined_rows") as batch:
        batch.alter_column("business_date", existing_type=sa.Date(), nullable=False)
        batch.create_index(
            batch.f("ix_quarantined_rows_business_date_source"), ["business_date", "source"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantined_rows") as batch:
        batch.drop_index(batch.f("ix_quarantined_rows_business_date_source"))
        batch.drop_column("business_date")
    op.drop_table("ingest_coverage")
