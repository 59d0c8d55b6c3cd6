"""the ledger's cause column lists `loan_payment` (a redemption paying part of a loan repayment)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BEFORE = "order | order_promotion | interest_payment | signup | birthday | lot | entry | rule"
AFTER = "order | order_promotion | interest_payment | loan_payment | signup | birthday | lot | entry | rule"


def _comment(comment: str, existing: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite keeps no column comments
        return
    op.alter_column(
        "loyalty_ledger",
        "source_kind",
        existing_type=sa.String(length=32),
        existing_nullable=False,
        comment=comment,
        existing_comment=existing,
    )


def upgrade() -> None:
    _comment(AFTER, BEFORE)


def downgrade() -> None:
    _comment(BEFORE, AFTER)
