"""initial warehouse schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 08:12:43.675459
"""

from alembic import op
import sqlalchemy as sa


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_batches',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=512), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('rows_loaded', sa.BigInteger(), nullable=False),
    sa.Column('rows_quarantined', sa.BigInteger(), nullable=False),
    sa.Column('rows_duplicate', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('as_of', 'source', name=op.f('pk_ingest_batches'))
    )
    op.create_table('ingest_watermarks',
    sa.Column('source_table', sa.String(length=128), nullable=False),
    sa.Column('watermark_at', sa.DateTime(), nullable=False, comment='Updated-at of the last row loaded.'),
    sa.Column('watermark_key', sa.String(length=256), nullable=False, comment='JSON key of the last row loaded (ties).'),
    sa.Column('as_of', sa.Date(), nullable=False, comment='Business day of the run that moved it.'),
    sa.PrimaryKeyConstraint('source_table', name=op.f('pk_ingest_watermarks'))
    )
    op.create_table('landing_files',
    sa.Column('file_key', sa.String(length=512), nullable=False, comment='Path relative to the landing root.'),
    sa.Column('checksum', sa.String(length=64), nullable=False, comment="SHA-256 of the file's bytes."),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False, comment='loaded | failed'),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('as_of', sa.Date(), nullable=False, comment='Business day of the run that read it.'),
    sa.PrimaryKeyConstraint('file_key', 'checksum', name=op.f('pk_landing_files'))
    )
    op.create_table('quarantined_rows',
    sa.Column('quarantine_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=512), nullable=False, comment='file:<key> or db:<table>'),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('row_number', sa.BigInteger(), nullable=True, comment='1-based data row in the file; null for database rows.'),
    sa.Column('record_key', sa.String(length=256), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('record', sa.Text(), nullable=False, comment='The rejected row as JSON, as it arrived.'),
    sa.PrimaryKeyConstraint('quarantine_id', name=op.f('pk_quarantined_rows'))
    )
    with op.batch_alter_table('quarantined_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantined_rows_as_of_source'), ['as_of', 'source'], unique=False)

    op.create_table('stg_app_events',
    sa.Column('event_id', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('event_type', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('platform', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('occurred_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_stg_app_events'))
    )
    with op.batch_alter_table('stg_app_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_app_events_customer_id'), ['customer_id'], unique=False)

    op.create_table('stg_application_status_changes',
    sa.Column('change_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('application_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('changed_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('change_id', name=op.f('pk_stg_application_status_changes'))
    )
    with op.batch_alter_table('stg_application_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_application_status_changes_application_id'), ['application_id'], unique=False)

    op.create_table('stg_customer_contacts',
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('channel', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('address', sa.String(length=256), autoincrement=False, nullable=False, comment='Phone, e-mail or push token (personal data).'),
    sa.Column('is_consented', sa.Boolean(), autoincrement=False, nullable=False),
    sa.Column('updated_at', sa.DateTime(), autoincrement=False, nullable=False, comment='Last change in the source system.'),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('customer_id', 'channel', name=op.f('pk_stg_customer_contacts'))
    )
    with op.batch_alter_table('stg_customer_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_customer_contacts_customer_id'), ['customer_id'], unique=False)

    op.create_table('stg_customers',
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False, comment='Master-system customer id.'),
    sa.Column('registered_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('birth_date', sa.Date(), autoincrement=False, nullable=True),
    sa.Column('signup_channel', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('is_technical', sa.Boolean(), autoincrement=False, nullable=False, comment='Internal account, never contacted.'),
    sa.Column('updated_at', sa.DateTime(), autoincrement=False, nullable=False, comment='Last change in the source system.'),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_stg_customers'))
    )
    op.create_table('stg_loan_applications',
    sa.Column('application_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('created_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('requested_amount_minor', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('updated_at', sa.DateTime(), autoincrement=False, nullable=False, comment='Last change in the source system.'),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('application_id', name=op.f('pk_stg_loan_applications'))
    )
    with op.batch_alter_table('stg_loan_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_loan_applications_customer_id'), ['customer_id'], unique=False)

    op.create_table('stg_loans',
    sa.Column('loan_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('application_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('issued_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('principal_minor', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('daily_rate_bp', sa.BigInteger(), autoincrement=False, nullable=False, comment='Daily interest rate in basis points.'),
    sa.Column('term_days', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('due_on', sa.Date(), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('closed_at', sa.DateTime(), autoincrement=False, nullable=True),
    sa.Column('updated_at', sa.DateTime(), autoincrement=False, nullable=False, comment='Last change in the source system.'),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('loan_id', name=op.f('pk_stg_loans'))
    )
    with op.batch_alter_table('stg_loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_loans_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stg_loans_customer_id'), ['customer_id'], unique=False)

    op.create_table('stg_message_events',
    sa.Column('event_id', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('message_id', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('channel', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('event_type', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('occurred_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('campaign_id', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('provider', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_stg_message_events'))
    )
    with op.batch_alter_table('stg_message_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_message_events_customer_id'), ['customer_id'], unique=False)

    op.create_table('stg_orders',
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('ordered_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('product_group', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('sales_channel', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('updated_at', sa.DateTime(), autoincrement=False, nullable=False, comment='Last change in the source system.'),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_stg_orders'))
    )
    with op.batch_alter_table('stg_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_orders_customer_id'), ['customer_id'], unique=False)

    op.create_table('stg_payments',
    sa.Column('payment_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('loan_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('paid_at', sa.DateTime(), autoincrement=False, nullable=False),
    sa.Column('payment_type', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('updated_at', sa.DateTime(), autoincrement=False, nullable=False, comment='Last change in the source system.'),
    sa.Column('ingested_on', sa.Date(), nullable=False, comment='Business day of the load that wrote the row.'),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_stg_payments'))
    )
    with op.batch_alter_table('stg_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stg_payments_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stg_payments_loan_id'), ['loan_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('stg_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_payments_loan_id'))
        batch_op.drop_index(batch_op.f('ix_stg_payments_customer_id'))

    op.drop_table('stg_payments')
    with op.batch_alter_table('stg_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_orders_customer_id'))

    op.drop_table('stg_orders')
    with op.batch_alter_table('stg_message_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_message_events_customer_id'))

    op.drop_table('stg_message_events')
    with op.batch_alter_table('stg_loans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_loans_customer_id'))
        batch_op.drop_index(batch_op.f('ix_stg_loans_application_id'))

    op.drop_table('stg_loans')
    with op.batch_alter_table('stg_loan_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_loan_applications_customer_id'))

    op.drop_table('stg_loan_applications')
    op.drop_table('stg_customers')
    with op.batch_alter_table('stg_customer_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_customer_contacts_customer_id'))

    op.drop_table('stg_customer_contacts')
    with op.batch_alter_table('stg_application_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_application_status_changes_application_id'))

    op.drop_table('stg_application_status_changes')
    with op.batch_alter_table('stg_app_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stg_app_events_customer_id'))

    op.drop_table('stg_app_events')
    with op.batch_alter_table('quarantined_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantined_rows_as_of_source'))

    op.drop_table('quarantined_rows')
    op.drop_table('landing_files')
    op.drop_table('ingest_watermarks')
    op.drop_table('ingest_batches')
