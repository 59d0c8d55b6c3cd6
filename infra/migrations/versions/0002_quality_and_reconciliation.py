"""quality and reconciliation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 08:28:08.757079
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('day_verdicts',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('check_name', sa.String(length=32), nullable=False, comment='quality | reconciliation'),
    sa.Column('fit_for_sending', sa.Boolean(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False, comment='Why, in one paragraph a CRM manager can read.'),
    sa.PrimaryKeyConstraint('as_of', 'check_name', name=op.f('pk_day_verdicts'))
    )
    op.create_table('quality_results',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('suite', sa.String(length=128), nullable=False),
    sa.Column('expectation', sa.String(length=256), nullable=False, comment='Stable id: type and arguments.'),
    sa.Column('column_name', sa.String(length=128), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=False, comment='critical | warning'),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('element_count', sa.BigInteger(), nullable=True),
    sa.Column('unexpected_count', sa.BigInteger(), nullable=True),
    sa.Column('unexpected_examples', sa.Text(), nullable=True, comment='A few offending values, contacts masked (JSON).'),
    sa.PrimaryKeyConstraint('as_of', 'suite', 'expectation', name=op.f('pk_quality_results'))
    )
    op.create_table('reconciliation_mismatches',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=256), nullable=False, comment='The key as JSON.'),
    sa.Column('kind', sa.String(length=32), nullable=False, comment='missing | extra | different_status | different_amount'),
    sa.Column('source_value', sa.String(length=256), nullable=True),
    sa.Column('warehouse_value', sa.String(length=256), nullable=True),
    sa.PrimaryKeyConstraint('as_of', 'entity', 'record_id', 'kind', name=op.f('pk_reconciliation_mismatches'))
    )
    op.create_table('reconciliation_results',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False, comment='e.g. rows, rows[status=repaid], sum(amount_minor)'),
    sa.Column('scope', sa.String(length=16), nullable=False, comment='day | cumulative'),
    sa.Column('source_value', sa.BigInteger(), nullable=False),
    sa.Column('warehouse_value', sa.BigInteger(), nullable=False),
    sa.Column('divergence', sa.Float(), nullable=False, comment='|source - warehouse| / max(|source|, 1)'),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('as_of', 'entity', 'metric', 'scope', name=op.f('pk_reconciliation_results'))
    )


def downgrade() -> None:
    op.drop_table('reconciliation_results')
    op.drop_table('reconciliation_mismatches')
    op.drop_table('quality_results')
    op.drop_table('day_verdicts')
