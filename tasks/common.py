"""Tasks and helpers every flow shares: the business date of a run and the warehouse schema."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.runtime import flow_run

from crm.core.dates import business_day_before
from crm.core.migrations import current_revision, upgrade_warehouse
from crm.core.settings import get_settings, warehouse_engine


def resolve_as_of(as_of: date | None) -> date:
    """`as_of`, or for a scheduled run the day before its scheduled start (never the wall clock)."""
    if as_of is not None:
        return as_of
    if flow_run.id is None:  # outside a flow run Prefect would answer with the wall clock
        raise ValueError("as_of is required outside a scheduled flow run")
    return business_day_before(flow_run.scheduled_start_time, get_settings().business_timezone)


@task(name="migrate-warehouse", task_run_name="migrate warehouse schema", retries=1, retry_delay_seconds=5)
def migrate_warehouse() -> str | None:
    """Bring the warehouse schema to the newest Alembic revision; return that revision."""
    engine = warehouse_engine()
    upgrade_warehouse(engine)
    return current_revision(engine)
