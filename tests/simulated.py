"""A simulated company for tests, and day-by-day ingestion without Prefect (fast)."""

from __future__ import annotations

from datetime import date, timedelta

from crm.core.contracts import SOURCE_ENTITIES
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import get_settings, make_engine, source_engine, warehouse_engine
from crm.core.storage import open_store
from crm.ingest import list_landing_files, load_landing_file, pull_source_table

START = date(2026, 1, 1)


def simulate_company(
    source_url: str, landing_url: str, *, customers: int = 300, days: int = 12, faults=None, seed: int = 7
):
    """Write a small simulated company into the source database and the landing zone."""
    from crm.simulator import simulate

    return simulate(
        make_engine(source_url),
        open_store(landing_url),
        customers=customers,
        days=days,
        seed=seed,
        start=START,
        faults=faults,
    )


def ingest_days(first: date, last: date, *, bulk: bool | None = None) -> None:
    """Ingest every day from `first` to `last` one by one with the crm functions, like nightly runs would
    (`bulk`: write as an initial load does, default: when its indexes are set aside)."""
    settings = get_settings()
    warehouse, source = warehouse_engine(settings), source_engine(settings)
    upgrade_warehouse(warehouse)
    zone = open_store(settings.landing)
    day = first
    while day <= last:
        for entity in SOURCE_ENTITIES:
            pull_source_table(source, warehouse, entity, day, chunk_rows=settings.source_chunk_rows, bulk=bulk)
        files, _ = list_landing_files(zone, day)
        for landing_file in files:
            load_landing_file(zone, warehouse, landing_file, day, bulk=bulk)
        day += timedelta(days=1)
