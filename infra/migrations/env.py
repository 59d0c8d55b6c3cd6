"""Alembic environment: migrates the warehouse at CRM_WAREHOUSE_URL (or a connection handed in)."""

from alembic import context

from crm.core.settings import warehouse_engine
from models.warehouse import metadata

config = context.config


def run_migrations() -> None:
    """Run migrations on the connection given by `crm.migrations`, or on the configured warehouse."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with warehouse_engine().connect() as connection:
        _run(connection)
        connection.commit()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
