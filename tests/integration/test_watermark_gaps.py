"""Source rows with no updated time are reported on every pull, not skipped silently forever."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import func, select, update

from crm.core.contracts import CUSTOMERS
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.ingest import pull_source_table
from crm.ingest.reports import ingest_summary_markdown
from models import source as src
from models.ingest import staging
from tests.simulated import START, simulate_company


def test_rows_without_updated_at_are_counted_reported_and_loaded_once_they_get_one(backend):
    simulate_company(backend.source_url, backend.landing_url, customers=60, days=3)
    source, warehouse = make_engine(backend.source_url), make_engine(backend.warehouse_url)
    upgrade_warehouse(warehouse)
    customers = src.tables["customers"]
    with source.begin() as conn:
        hidden = [
            r[0] for r in conn.execute(select(customers.c.customer_id).order_by(customers.c.customer_id).limit(3))
        ]
        conn.execute(update(customers).where(customers.c.customer_id.in_(hidden)).values(updated_at=None))
    day = START.replace(day=3)

    counts = pull_source_table(source, warehouse, CUSTOMERS, day)

    assert counts.rows_without_watermark == 3
    with warehouse.connect() as conn:
        loaded = conn.execute(select(func.count()).select_from(staging["customers"])).scalar_one()
        assert (
            loaded == counts.rows_loaded
            and not conn.execute(
                select(staging["customers"].c.customer_id).where(staging["customers"].c.customer_id.in_(hidden))
            ).all()
        )
    summary = ingest_summary_markdown(day, pd.DataFrame([counts.as_row()]), pd.DataFrame())
    assert "customers: **3** rows with no updated time are never pulled" in summary

    with source.begin() as conn:  # the back end stamps them the next morning: the next night loads them
        conn.execute(
            update(customers).where(customers.c.customer_id.in_(hidden)).values(updated_at=datetime(2026, 1, 4, 9))
        )
    again = pull_source_table(source, warehouse, CUSTOMERS, day.replace(day=4))
    assert again.rows_without_watermark == 0 and again.rows_loaded == 3
