"""Tasks that look after the warehouse itself."""

from __future__ import annotations

from prefect import task

from crm.migrations import current_revision, upgrade_warehouse
from crm.settings import warehouse_engine


@task(name="migrate-warehouse", retries=1, retry_delay_seconds=5)
def migrate_warehouse() -> str | None:
    """Bring the warehouse schema to the newest Alembic revision; return that revision."""
    engine = warehouse_engine()
    upgrade_warehouse(engine)
    return current_revision(engine)
