"""Helpers for end-to-end flow tests: a simulated company and snapshots of the warehouse."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
from sqlalchemy import select

from crm.core.settings import make_engine
from crm.core.storage import open_store
from models.ingest import ingest_batches
from models.warehouse import metadata
from tests.simulated import START, simulate_company  # noqa: F401 - re-exported for the flow tests


@pytest.fixture(autouse=True)
def _prefect(prefect_server):
    """Every flow test runs against the session's Prefect test server."""
    yield


def warehouse_snapshot(url: str) -> dict[str, pd.DataFrame]:
    """Every warehouse table's rows, in key order (quarantine without its surrogate id)."""
    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if c.name != "quarantine_id"]
            order = [c for c in table.primary_key.columns if c.name != "quarantine_id"] or columns
            frame = pd.DataFrame(
                conn.execute(select(*columns).order_by(*order, *columns)).all(), columns=[c.name for c in columns]
            )
            out[table.name] = frame.reset_index(drop=True)
    return out


def batches(url: str, as_of: date | None = None) -> pd.DataFrame:
    """The ingest_batches rows (of one day, or all)."""
    stmt = select(ingest_batches)
    if as_of:
        stmt = stmt.where(ingest_batches.c.as_of == as_of)
    with make_engine(url).connect() as conn:
        return pd.DataFrame(conn.execute(stmt).mappings().all())


def count_file_records(landing_url: str, key: str) -> int:
    """Data rows in a landing file, counted independently of the loader (non-blank lines, CSV minus header)."""
    import gzip

    data = open_store(landing_url).read_bytes(key)
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    lines = [line for line in data.decode("utf-8-sig").splitlines() if line.strip()]
    return len(lines) - 1 if ".csv" in key else len(lines)


@pytest.fixture
def logs_to_the_api():
    """Runs' logs shipped to the test server, for a test that reads them back (`tests/conftest.py` leaves it off)."""
    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}):
        yield
