"""Helpers for landing-file tests against a real warehouse: known customers, and one run over the zone."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Engine, select

from crm.core.contracts import CUSTOMERS
from crm.core.db import write_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.core.storage import ObjectStore
from crm.ingest import list_landing_files, load_known_ids, load_landing_files, record_misplaced_files, validate_frame
from models.ingest import ingest_batches, landing_files, quarantined_rows, staging


def warehouse_with_customers(url: str, customer_ids: list[int]) -> Engine:
    """A migrated warehouse that knows these customers (what landing rows may reference)."""
    engine = make_engine(url)
    upgrade_warehouse(engine)
    frame = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "registered_at": ["2025-06-01T00:00:00"] * len(customer_ids),
            "birth_date": [None] * len(customer_ids),
            "signup_channel": ["online"] * len(customer_ids),
            "is_technical": [False] * len(customer_ids),
            "updated_at": ["2025-06-01T00:00:00"] * len(customer_ids),
        }
    )
    valid = validate_frame(frame, CUSTOMERS, as_of=date(2025, 6, 1)).valid
    with engine.begin() as conn:
        write_frame(
            conn, staging["customers"], valid.assign(ingested_on=pd.Timestamp("2025-06-01")), on_conflict="update"
        )
    return engine


def load_zone(zone: ObjectStore, engine: Engine, as_of: date, *, bulk: bool | None = None) -> dict[str, dict]:
    """What one ingestion run does with the landing zone (without Prefect): counts per source
    (`bulk`: write as an initial load does, default: when its indexes are set aside)."""
    files, misplaced = list_landing_files(zone, as_of)
    out = {c.source: c.as_row() for c in record_misplaced_files(zone, engine, misplaced, as_of)}
    by_entity: dict[str, list] = {}
    for landing_file in files:
        by_entity.setdefault(landing_file.entity.name, []).append(landing_file)
    for group in by_entity.values():  # as the loading task: one entity's files, written behind their reading
        with engine.connect() as conn:
            known = load_known_ids(conn, group[0].entity)
        for counts in load_landing_files(zone, engine, group, as_of, known, bulk=bulk):
            out[counts.source] = counts.as_row()
    return out


def rows(engine: Engine, table, *where) -> pd.DataFrame:
    """A table's rows (optionally filtered) as a frame."""
    with engine.connect() as conn:
        result = conn.execute(select(table).where(*where))
        return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))


def manifest(engine: Engine) -> pd.DataFrame:
    """`landing_files`, by key."""
    return rows(engine, landing_files).sort_values("file_key", ignore_index=True)


def quarantine(engine: Engine, source: str) -> pd.DataFrame:
    """Quarantined rows of one source, by row number."""
    return rows(engine, quarantined_rows, quarantined_rows.c.source == source).sort_values(
        "row_number", ignore_index=True
    )


def batch(engine: Engine, source: str) -> dict:
    """The ingest_batches counts of one source (summed over days)."""
    frame = rows(engine, ingest_batches, ingest_batches.c.source == source)
    return {k: int(frame[k].sum()) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")}
